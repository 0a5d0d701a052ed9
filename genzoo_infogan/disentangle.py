"""Disentanglement against ground truth: MIG, the FactorVAE score and DCI disentanglement.

All three read a representation through an ``encode`` callable, ``images (n, C, H, W) float in
[0, 1] -> codes (n, d)`` (code *means*, one column per code dimension), and draw their images from
:class:`~genzoo_infogan.sprites.Sprites`, whose five factors are known. Nothing here needs
scikit-learn: numpy, scipy and torch only.

* **MIG**, the mutual information gap (Chen, Li, Grosse & Duvenaud 2018, "Isolating Sources of
  Disentanglement in Variational Autoencoders"): each code dimension is discretised into 20
  equal-width bins over its observed range (as disentanglement_lib does), the plug-in mutual
  information ``I(z_i; v_k)`` is computed for every code/factor pair, and for each factor the gap
  between its two most informative codes is divided by the factor's entropy ``H(v_k)``. MIG is
  the mean gap over factors, in [0, 1].

* **FactorVAE score** (Kim & Mnih 2018, "Disentangling by Factorising"): each code dimension is
  divided by its standard deviation over a random sample; dimensions whose variance there is below
  ``prune_var`` (0.05, the paper's cut for collapsed dimensions) are pruned. One *vote*: pick a
  factor k at random, fix it at a random value, draw ``L`` (64) images with the other factors
  random, and take the code dimension of least (normalised) variance; the vote is that pair
  ``(argmin dimension, k)``. A majority-vote classifier (each dimension -> the factor it voted for
  most) is fit on training votes and its accuracy on fresh votes is the score. Chance is about one
  over the number of factors (1/5 here); a perfect representation scores 1.

* **DCI disentanglement** (Eastwood & Williams 2018, "A Framework for the Quantitative Evaluation
  of Disentangled Representations"): an importance matrix ``R[i, k]`` says how much code
  dimension i matters for predicting factor k. With ``P[i, k] = R[i, k] / sum_k R[i, k]``, code i
  scores ``D_i = 1 - H_K(P[i, :])`` (entropy in base K = number of factors) and the disentanglement
  is ``sum_i rho_i D_i`` with ``rho_i = sum_k R[i, k] / sum R``. Completeness is the same along
  factors; informativeness is reported as the regressors' held-out R^2.

  *Which regressor.* The paper uses lasso or random forests (disentanglement_lib uses gradient
  boosted trees). Here it is the **lasso** (coordinate descent on the Gram matrix, in numpy), with
  codes and targets standardised and ``R[i, k] = |beta_ik|``, the absolute standardised
  coefficient. The penalty defaults to ``alpha = 4 / sqrt(n_train)``: a code with no linear
  relation to a factor has an ordinary least-squares coefficient of standard error about
  ``1 / sqrt(n)`` in these units, so at four standard errors it is set exactly to zero with
  probability above 0.9999, while a dependence that explains more than about ``16 / n`` of a
  factor's variance survives (shrunk by ``alpha``). Without that threshold (ridge, or plain least squares) every pure-noise code
  gets a random, non-zero importance row and a representation that carries no information at all
  scores about 0.15 rather than 0; with it, such a representation has no importance anywhere and
  scores 0 by definition (it disentangles nothing). The categorical ``shape`` factor is regressed
  one-vs-rest (one standardised indicator per shape) and its importance is the mean over the
  three; the other factors are regressed on their values. Linear regressors only credit linear
  (monotone) relations: that is the lasso variant's known limitation, shared with the paper's.
  Read D with completeness and informativeness (:func:`dci` returns all three): D only asks
  whether each code is about *one* factor, so codes that all weakly track the same factor (an
  untrained Q tracking position, say) score a high D with a low completeness and R^2.

Call :func:`disentanglement_scores` for all three (one shared sample for MIG, DCI and the FactorVAE
normalisation), or the single metrics. An ``encode`` marked by :func:`reads_factors` receives the
integer factors ``(n, 5)`` instead of images: for oracle and control encoders in tests, no
rendering needed.

For a trained :class:`~genzoo_infogan.model.GenerativeModel`, :func:`model_code_encoder` turns Q
into an ``encode`` (categorical codes -> the argmax category as one float column, continuous codes
-> their mean), and :func:`sprites_metrics` is the evaluation hook: ``{"disentanglement": scores}``
when the data is the ``sprites`` dataset, else ``{}``.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch

from .model import eval_mode
from .sprites import FACTOR_NAMES, FACTOR_SIZES, Sprites

Encoder = Callable[[torch.Tensor], torch.Tensor]

CATEGORICAL_FACTORS = (0,)   # shape


# -- getting codes -----------------------------------------------------------------------------------
def reads_factors(fn: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[torch.Tensor], torch.Tensor]:
    """Mark ``fn`` as an encoder of integer factors ``(n, 5)`` rather than of images."""
    fn.reads_factors = True  # type: ignore[attr-defined]
    return fn


def represent(encode: Encoder, sprites: Sprites, factors: torch.Tensor, batch_size: int = 500) -> np.ndarray:
    """Codes ``(n, d)`` float64 for the images of ``factors`` (rendered in batches)."""
    if getattr(encode, "reads_factors", False):
        out = [encode(factors)]
    else:
        out = [encode(sprites.render(factors[i:i + batch_size])) for i in range(0, len(factors), batch_size)]
    arr = np.concatenate([np.asarray(torch.as_tensor(o).detach().cpu().double()) for o in out])
    return arr.reshape(len(factors), -1)


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed))


# -- MIG -------------------------------------------------------------------------------------------
def discretize(codes: np.ndarray, bins: int = 20) -> np.ndarray:
    """Each column into ``bins`` equal-width bins over its range (indices 0..bins-1)."""
    codes = np.asarray(codes, dtype=np.float64)
    out = np.zeros(codes.shape, dtype=np.int64)
    for i in range(codes.shape[1]):
        edges = np.histogram_bin_edges(codes[:, i], bins)
        out[:, i] = np.clip(np.digitize(codes[:, i], edges[1:-1]), 0, bins - 1)
    return out


def discrete_mutual_info(a: np.ndarray, b: np.ndarray) -> float:
    """Plug-in I(a; b) in nats for two integer arrays."""
    _, ai = np.unique(a, return_inverse=True)
    _, bi = np.unique(b, return_inverse=True)
    c = np.zeros((ai.max() + 1, bi.max() + 1))
    np.add.at(c, (ai, bi), 1)
    p = c / c.sum()
    pa, pb = p.sum(1, keepdims=True), p.sum(0, keepdims=True)
    nz = p > 0
    return float((p[nz] * np.log(p[nz] / (pa @ pb)[nz])).sum())


def discrete_entropy(a: np.ndarray) -> float:
    _, counts = np.unique(a, return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum())


def mig_from_codes(codes: np.ndarray, factors: np.ndarray, bins: int = 20) -> dict:
    """``{"mig", "per_factor", "mi"}`` for codes ``(n, d)`` and integer factors ``(n, F)``."""
    z = discretize(codes, bins)
    factors = np.asarray(factors)
    d, nf = z.shape[1], factors.shape[1]
    mi = np.array([[discrete_mutual_info(z[:, i], factors[:, k]) for k in range(nf)] for i in range(d)])
    h = np.array([discrete_entropy(factors[:, k]) for k in range(nf)])
    top = -np.sort(-mi, axis=0)
    second = top[1] if d > 1 else np.zeros(nf)
    gaps = np.where(h > 0, (top[0] - second) / np.where(h > 0, h, 1.0), 0.0)
    return {"mig": float(gaps.mean()), "per_factor": dict(zip(FACTOR_NAMES, gaps.tolist())),
            "mi": mi.tolist()}


def mig(encode: Encoder, sprites: Sprites, n: int = 10000, seed: int = 0, bins: int = 20,
        batch_size: int = 500) -> float:
    """MIG (Chen et al. 2018) on ``n`` random sprites."""
    factors = sprites.sample_factors(n, _generator(seed))
    return mig_from_codes(represent(encode, sprites, factors, batch_size), factors.numpy(), bins)["mig"]


# -- FactorVAE score --------------------------------------------------------------------------------
def _votes(encode: Encoder, sprites: Sprites, n_votes: int, L: int, std: np.ndarray, active: np.ndarray,
           gen: torch.Generator, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(argmin active dimension, fixed factor) for ``n_votes`` votes."""
    per_call = max(1, batch_size // L)
    dims, facs = [], []
    for start in range(0, n_votes, per_call):
        m = min(per_call, n_votes - start)
        ks = torch.randint(0, len(FACTOR_SIZES), (m,), generator=gen)
        blocks = []
        for k in ks.tolist():
            value = int(torch.randint(0, FACTOR_SIZES[k], (1,), generator=gen))
            blocks.append(sprites.sample_fixed(L, k, value, gen))
        z = represent(encode, sprites, torch.cat(blocks), batch_size=m * L)
        z = (z / std)[:, active].reshape(m, L, -1)
        dims.append(np.var(z, axis=1, ddof=1).argmin(axis=1))
        facs.append(ks.numpy())
    return np.concatenate(dims), np.concatenate(facs)


def factor_vae_from_std(encode: Encoder, sprites: Sprites, std: np.ndarray, seed: int = 0, L: int = 64,
                        n_train_votes: int = 800, n_eval_votes: int = 800, prune_var: float = 0.05,
                        batch_size: int = 512) -> dict:
    """The FactorVAE score given each dimension's standard deviation over the data."""
    std = np.asarray(std, dtype=np.float64)
    active = std ** 2 >= prune_var
    out = {"factor_vae": 0.0, "train_accuracy": 0.0, "active_dims": int(active.sum())}
    if not active.any():
        return out
    gen = _generator(seed)
    nf = len(FACTOR_SIZES)
    dims, facs = _votes(encode, sprites, n_train_votes, L, std, active, gen, batch_size)
    votes = np.zeros((int(active.sum()), nf), dtype=np.int64)
    np.add.at(votes, (dims, facs), 1)
    classifier = votes.argmax(axis=1)
    out["train_accuracy"] = float(votes.max(axis=1).sum() / max(1, votes.sum()))
    out["votes"] = votes.tolist()
    if n_eval_votes > 0:
        dims, facs = _votes(encode, sprites, n_eval_votes, L, std, active, gen, batch_size)
        out["factor_vae"] = float((classifier[dims] == facs).mean())
    else:
        out["factor_vae"] = out["train_accuracy"]
    return out


def factor_vae_score(encode: Encoder, sprites: Sprites, seed: int = 0, L: int = 64, n_variance: int = 10000,
                     n_train_votes: int = 800, n_eval_votes: int = 800, prune_var: float = 0.05,
                     batch_size: int = 512) -> float:
    """The FactorVAE score (Kim & Mnih 2018): accuracy of the majority-vote classifier on
    ``n_eval_votes`` fresh votes, each from ``L`` images with one factor fixed. The normalising
    standard deviations come from ``n_variance`` random images."""
    factors = sprites.sample_factors(n_variance, _generator(seed + 1_000_003))
    std = represent(encode, sprites, factors, batch_size).std(axis=0)
    return factor_vae_from_std(encode, sprites, std, seed, L, n_train_votes, n_eval_votes, prune_var,
                               batch_size)["factor_vae"]


# -- DCI -------------------------------------------------------------------------------------------
def lasso(x: np.ndarray, y: np.ndarray, alpha: float, max_sweeps: int = 1000, tol: float = 1e-9) -> np.ndarray:
    """Coefficients ``(d, T)`` minimising ``||y - x b||^2 / (2n) + alpha |b|_1`` for each of the
    ``T`` columns of ``y``: cyclic coordinate descent on the Gram matrix (no intercept: centre
    ``x`` and ``y`` first)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if y.ndim == 1:
        y = y[:, None]
    n, d = x.shape
    gram = x.T @ x / n
    xy = x.T @ y / n
    b = np.zeros((d, y.shape[1]))
    diag = np.diag(gram)
    for _ in range(max_sweeps):
        delta = 0.0
        for j in range(d):
            if diag[j] <= 0:
                continue
            rho = xy[j] - gram[j] @ b + diag[j] * b[j]
            new = np.sign(rho) * np.maximum(np.abs(rho) - alpha, 0.0) / diag[j]
            delta = max(delta, float(np.abs(new - b[j]).max()))
            b[j] = new
        if delta < tol:
            break
    return b


def _standardise(a: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    return (a - mean) / np.where(std > 0, std, 1.0)


def _targets(factors: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """Regression targets and, per target, its factor: one-vs-rest indicators for categorical
    factors, the (integer grid) value for the others (the values are affine in the indices)."""
    cols, owner = [], []
    for k in range(factors.shape[1]):
        if k in CATEGORICAL_FACTORS:
            for v in range(FACTOR_SIZES[k]):
                cols.append((factors[:, k] == v).astype(np.float64))
                owner.append(k)
        else:
            cols.append(factors[:, k].astype(np.float64))
            owner.append(k)
    return np.stack(cols, axis=1), owner


def _row_entropy(p: np.ndarray, base: int) -> np.ndarray:
    if base <= 1:
        return np.zeros(len(p))
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(p > 0, p * np.log(p), 0.0)
    return -t.sum(axis=1) / math.log(base)


def dci_from_importance(r: np.ndarray) -> dict:
    """Disentanglement and completeness (Eastwood & Williams 2018) of an importance matrix
    ``R[code, factor] >= 0``. Codes (factors) with no importance at all carry no weight; a matrix
    of zeros scores 0 on both."""
    r = np.abs(np.asarray(r, dtype=np.float64))
    total = r.sum()
    if total <= 0:
        return {"disentanglement": 0.0, "completeness": 0.0}
    rows, cols = r.sum(axis=1), r.sum(axis=0)
    p_rows = r[rows > 0] / rows[rows > 0, None]
    d = float(((1 - _row_entropy(p_rows, r.shape[1])) * rows[rows > 0] / total).sum())
    p_cols = (r[:, cols > 0] / cols[cols > 0]).T
    c = float(((1 - _row_entropy(p_cols, r.shape[0])) * cols[cols > 0] / total).sum())
    return {"disentanglement": d, "completeness": c}


def dci_from_codes(codes: np.ndarray, factors: np.ndarray, alpha: float | None = None,
                   test_fraction: float = 0.2) -> dict:
    """DCI with lasso importances for codes ``(n, d)`` and integer factors ``(n, 5)``:
    ``{"disentanglement", "completeness", "informativeness" (mean held-out R^2 over factors),
    "importance" (d x 5), "alpha"}``."""
    codes = np.asarray(codes, dtype=np.float64)
    factors = np.asarray(factors)
    n = len(codes)
    n_test = int(round(n * test_fraction)) if n >= 10 else 0
    n_train = n - n_test
    x_tr, x_te = codes[:n_train], codes[n_train:]
    y, owner = _targets(factors)
    y_tr, y_te = y[:n_train], y[n_train:]
    mx, sx = x_tr.mean(0), x_tr.std(0)
    my, sy = y_tr.mean(0), y_tr.std(0)
    alpha = 4.0 / math.sqrt(n_train) if alpha is None else float(alpha)
    live = sx > 1e-12 * max(1.0, float(np.abs(mx).max(initial=0.0)))   # constant codes predict nothing
    beta = np.zeros((codes.shape[1], y.shape[1]))
    if live.any():
        beta[live] = lasso(_standardise(x_tr, mx, sx)[:, live], _standardise(y_tr, my, sy), alpha)
    nf = factors.shape[1]
    owner_arr = np.array(owner)
    importance = np.stack([np.abs(beta[:, owner_arr == k]).mean(axis=1) for k in range(nf)], axis=1)
    out = dci_from_importance(importance)
    if n_test:
        pred = _standardise(x_te, mx, sx) @ beta
        yt = _standardise(y_te, my, sy)
        ss_res = ((yt - pred) ** 2).sum(0)
        ss_tot = ((yt - yt.mean(0)) ** 2).sum(0)
        r2 = 1 - ss_res / np.where(ss_tot > 0, ss_tot, 1.0)
        out["informativeness"] = float(np.mean([r2[owner_arr == k].mean() for k in range(nf)]))
    out["importance"] = importance.tolist()
    out["alpha"] = alpha
    return out


def dci(encode: Encoder, sprites: Sprites, n: int = 10000, seed: int = 0, alpha: float | None = None,
        batch_size: int = 500) -> dict:
    """DCI (Eastwood & Williams 2018) with lasso importances on ``n`` random sprites."""
    factors = sprites.sample_factors(n, _generator(seed))
    return dci_from_codes(represent(encode, sprites, factors, batch_size), factors.numpy(), alpha)


def dci_disentanglement(encode: Encoder, sprites: Sprites, n: int = 10000, seed: int = 0,
                        alpha: float | None = None, batch_size: int = 500) -> float:
    return dci(encode, sprites, n, seed, alpha, batch_size)["disentanglement"]


# -- all three --------------------------------------------------------------------------------------
def disentanglement_scores(encode: Encoder, sprites: Sprites, n: int = 10000, seed: int = 0, L: int = 64,
                           n_train_votes: int = 800, n_eval_votes: int = 800, prune_var: float = 0.05,
                           batch_size: int = 500) -> dict[str, float]:
    """``{"mig", "factor_vae", "dci_disentanglement"}``: MIG and DCI on one sample of ``n`` random
    sprites, which also gives the FactorVAE score its normalising standard deviations."""
    factors = sprites.sample_factors(n, _generator(seed))
    codes = represent(encode, sprites, factors, batch_size)
    f = factors.numpy()
    return {
        "mig": mig_from_codes(codes, f)["mig"],
        "factor_vae": factor_vae_from_std(encode, sprites, codes.std(axis=0), seed + 1, L, n_train_votes,
                                          n_eval_votes, prune_var, batch_size)["factor_vae"],
        "dci_disentanglement": dci_from_codes(codes, f)["disentanglement"],
    }


# -- models --------------------------------------------------------------------------------------
def model_code_encoder(model, batch_size: int = 500) -> Encoder:
    """``encode`` for a :class:`~genzoo_infogan.model.GenerativeModel`: one column per code of
    ``model.codes``, in order: Q's point estimate (a categorical code's argmax category as a float,
    a continuous code's mean), run in eval mode without gradients, ``batch_size`` images at a time."""

    @torch.no_grad()
    def encode(images: torch.Tensor) -> torch.Tensor:
        out = []
        with eval_mode(model):
            for i in range(0, len(images), batch_size):
                params = model.encode(images[i:i + batch_size].to(model.device))
                cols = [spec.point_estimate(params[name]).float().reshape(-1, 1) for name, spec in model.codes]
                out.append(torch.cat(cols, dim=1).cpu())
        return torch.cat(out) if out else torch.zeros((0, len(model.codes)))

    return encode


def sprites_metrics(model, data, **kwargs) -> dict:
    """The evaluation hook: ``{"disentanglement": disentanglement_scores(...)}`` for a model
    trained on the ``sprites`` dataset (at the data's image size), ``{}`` for any other data or a
    model without codes. ``kwargs`` go to :func:`disentanglement_scores`."""
    if getattr(data, "name", "") != "sprites" or not len(getattr(model, "codes", ())):
        return {}
    sprites = Sprites(int(data.image_shape[-1]))
    return {"disentanglement": disentanglement_scores(model_code_encoder(model), sprites, **kwargs)}
