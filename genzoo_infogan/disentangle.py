"""Disentanglement against ground truth: MIG, the FactorVAE score, DCI, and which code follows which factor.

Any data set whose images come from known factors can be scored. It declares them through one
small protocol, :class:`GroundTruth` (an object that ``ImageData.truth`` holds): the factors'
names and grid sizes, which of them are categorical, the image shape, a sampler of factor
combinations (each factor uniform over its grid), a sampler that holds one factor at a value and
draws the others, and a renderer ``factors -> images``. Factors are integer indices into each
factor's grid. :class:`~genzoo_infogan.sprites.Sprites` (dSprites) and the 3D scenes of
:mod:`~genzoo_infogan.render3d` (``heads3d``, ``chairs3d``) are such objects; this module imports
neither.

All metrics read a representation through an ``encode`` callable, ``images (n, C, H, W) float in
[0, 1] -> codes (n, d)`` (code *point estimates*, one column per code), and draw their images
from the ground truth.

* **MIG**, the mutual information gap (Chen, Li, Grosse & Duvenaud 2018, "Isolating Sources of
  Disentanglement in Variational Autoencoders"): each code dimension is discretised into 20
  equal-width bins over its observed range (as disentanglement_lib does), the plug-in mutual
  information ``I(z_i; v_k)`` is computed for every code/factor pair (``v_k`` the factor's grid
  index), and for each factor the gap between its two most informative codes is divided by the
  factor's entropy ``H(v_k)``. MIG is the mean gap over factors, in [0, 1].

* **FactorVAE score** (Kim & Mnih 2018, "Disentangling by Factorising"): each code dimension is
  divided by its standard deviation over a random sample; dimensions whose variance there is below
  ``prune_var`` (0.05, the paper's cut for collapsed dimensions) are pruned. One *vote*: pick a
  factor k at random, fix it at a random value, draw ``L`` (64) images with the other factors
  random, and take the code dimension of least (normalised) variance; the vote is that pair
  ``(argmin dimension, k)``. A majority-vote classifier (each dimension -> the factor it voted for
  most) is fit on training votes and its accuracy on fresh votes is the score. Chance is about one
  over the number of factors; a perfect representation scores 1.

* **DCI** (Eastwood & Williams 2018, "A Framework for the Quantitative Evaluation of Disentangled
  Representations"), computed as disentanglement_lib does (``evaluation/metrics/dci.py``): for
  each factor, scikit-learn's ``GradientBoostingClassifier`` (default settings: 100 stages of
  depth-3 trees; ``random_state`` fixed) is fit to predict the factor's grid index from the codes
  on a training split; the importance matrix ``R[i, k]`` is that classifier's
  ``feature_importances_`` for code i, and the *informativeness* is its accuracy on the held-out
  split (the mean over factors; chance is about one over the grid size). With ``P[i, k] = R[i, k]
  / sum_k R[i, k]``, code i scores ``D_i = 1 - H_K(P[i, :])`` (entropy in base K = number of
  factors) and the *disentanglement* is ``sum_i rho_i D_i`` with ``rho_i = sum_k R[i, k] / sum R``;
  *completeness* is the same along factors. A code that no tree ever splits on has no importance
  and no weight. Tree importances credit any relation, monotone or not, so the figures compare
  with published ones (disentanglement_lib uses 10,000 training and 5,000 test points; here 2,400
  and 600 by default, ``dci_points = 3000``, which keeps the fit to seconds: see
  docs/experiments/3d.md for timings). Read D with completeness and informativeness: D only asks
  whether each code is about *one* factor, so codes that all weakly track the same factor score a
  high D with a low completeness and informativeness.

* **Which code follows which factor** (:func:`code_factors`): the *normalised mutual
  information* of code i with factor k is ``NMI(z_i, v_k) = I(z_i; v_k) / H(v_k)``, with ``z_i``
  the code discretised into 20 equal-width bins over its observed range and ``v_k`` the factor's
  grid index, both mutual information and entropy the plug-in estimates on the sample (exactly the
  quantities MIG is made of). It is in [0, 1]: 0 when the code says nothing about the factor, 1
  when the code's bin determines the factor's value. A code's *factor* is the one it has the
  highest NMI with, so that a traversal of code c3 can be captioned "c3: azimuth (NMI 0.62)".

Call :func:`ground_truth_scores` for everything on one shared sample (MIG, DCI and the code
table on ``n`` random factor draws, which also give the FactorVAE score its normalising standard
deviations), :func:`disentanglement_scores` for the scores alone, or the single metrics. An
``encode`` marked by :func:`reads_factors` receives the integer factors ``(n, F)`` instead of
images: for oracle and control encoders in tests, no rendering needed.

For a trained :class:`~genzoo_infogan.model.GenerativeModel`, :func:`model_code_encoder` turns Q
into an ``encode`` (categorical codes -> the argmax category as one float column, continuous codes
-> their mean), and :func:`ground_truth_metrics` is the evaluation hook: ``{"disentanglement":
scores, "code_factors": table}`` when the data carries a :class:`GroundTruth` (``data.truth``) and
the model has codes, else ``{}``.
"""

from __future__ import annotations

import math
from typing import Callable, Protocol, Sequence, runtime_checkable

import numpy as np
import torch

from .model import eval_mode

Encoder = Callable[[torch.Tensor], torch.Tensor]


@runtime_checkable
class GroundTruth(Protocol):
    """What a data set with known generative factors declares (``ImageData.truth``).

    ``factor_names``, ``factor_sizes``: one entry per factor; factor k takes the integer values
    ``0 .. factor_sizes[k] - 1`` (indices into its grid). ``categorical``: the indices of the
    factors whose values are unordered categories (a shape, a chair style). ``image_shape``:
    ``(C, H, W)`` of the rendered images. An implementation may also offer
    ``factor_values(factors) -> (n, F) float64``, the physical values of the grid points.
    """

    factor_names: tuple[str, ...]
    factor_sizes: tuple[int, ...]
    categorical: tuple[int, ...]

    @property
    def image_shape(self) -> tuple[int, int, int]: ...

    def sample_factors(self, n: int, rng: torch.Generator | None = None) -> torch.Tensor:
        """``(n, F)`` int64: every factor uniform over its grid, independently."""
        ...

    def sample_fixed(self, n: int, factor_index: int, value: int,
                     rng: torch.Generator | None = None) -> torch.Tensor:
        """``(n, F)`` int64: factor ``factor_index`` held at ``value``, the others uniform."""
        ...

    def render(self, factors: torch.Tensor) -> torch.Tensor:
        """``(n, C, H, W)`` float32 images in [0, 1], a pure function of the factors."""
        ...


def check_truth(truth) -> GroundTruth:
    """``truth`` if it follows :class:`GroundTruth` (and its sizes match its names), else TypeError."""
    if not isinstance(truth, GroundTruth):
        missing = [a for a in ("factor_names", "factor_sizes", "categorical", "image_shape", "sample_factors",
                               "sample_fixed", "render") if not hasattr(truth, a)]
        raise TypeError(f"{type(truth).__name__} is not a GroundTruth: it lacks {', '.join(missing)}")
    if len(truth.factor_names) != len(truth.factor_sizes):
        raise TypeError(f"{truth!r}: {len(truth.factor_names)} factor names but {len(truth.factor_sizes)} sizes")
    return truth


# -- getting codes -----------------------------------------------------------------------------------
def reads_factors(fn: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[torch.Tensor], torch.Tensor]:
    """Mark ``fn`` as an encoder of integer factors ``(n, F)`` rather than of images."""
    fn.reads_factors = True  # type: ignore[attr-defined]
    return fn


def represent(encode: Encoder, truth: GroundTruth, factors: torch.Tensor, batch_size: int = 500) -> np.ndarray:
    """Codes ``(n, d)`` float64 for the images of ``factors`` (rendered in batches)."""
    if getattr(encode, "reads_factors", False):
        out = [encode(factors)]
    else:
        out = [encode(truth.render(factors[i:i + batch_size])) for i in range(0, len(factors), batch_size)]
    arr = np.concatenate([np.asarray(torch.as_tensor(o).detach().cpu().double()) for o in out])
    return arr.reshape(len(factors), -1)


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed))


# -- mutual information ------------------------------------------------------------------------------
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


def mutual_info_matrix(codes: np.ndarray, factors: np.ndarray, bins: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """``(mi, h)``: ``mi[i, k] = I(z_i; v_k)`` (nats) for codes discretised into ``bins`` bins and
    integer factors ``(n, F)``, and ``h[k] = H(v_k)``."""
    z = discretize(codes, bins)
    factors = np.asarray(factors)
    mi = np.array([[discrete_mutual_info(z[:, i], factors[:, k]) for k in range(factors.shape[1])]
                   for i in range(z.shape[1])]).reshape(z.shape[1], factors.shape[1])
    h = np.array([discrete_entropy(factors[:, k]) for k in range(factors.shape[1])])
    return mi, h


def normalised_mi(codes: np.ndarray, factors: np.ndarray, bins: int = 20) -> np.ndarray:
    """``(d, F)``: ``I(z_i; v_k) / H(v_k)`` (0 for a constant factor); see the module doc."""
    mi, h = mutual_info_matrix(codes, factors, bins)
    return np.where(h > 0, mi / np.where(h > 0, h, 1.0), 0.0)


def _names(names: Sequence[str] | None, n: int, prefix: str) -> list[str]:
    return list(names) if names is not None else [f"{prefix}{i}" for i in range(n)]


def code_factors(codes: np.ndarray, factors: np.ndarray, code_names: Sequence[str] | None = None,
                 factor_names: Sequence[str] | None = None, bins: int = 20) -> dict:
    """``{code: {"factor": best factor, "nmi": its NMI, "per_factor": {factor: NMI}}}``: for each
    code, the factor it tells most about, by normalised mutual information (module doc)."""
    nmi = normalised_mi(codes, factors, bins)
    cn = _names(code_names, nmi.shape[0], "z")
    fn = _names(factor_names, nmi.shape[1], "v")
    out = {}
    for i, name in enumerate(cn):
        k = int(np.argmax(nmi[i])) if nmi.shape[1] else 0
        out[name] = {"factor": fn[k], "nmi": float(nmi[i, k]),
                     "per_factor": {f: float(v) for f, v in zip(fn, nmi[i])}}
    return out


# -- MIG ---------------------------------------------------------------------------------------------
def mig_from_codes(codes: np.ndarray, factors: np.ndarray, bins: int = 20,
                   factor_names: Sequence[str] | None = None) -> dict:
    """``{"mig", "per_factor", "mi"}`` for codes ``(n, d)`` and integer factors ``(n, F)``;
    ``per_factor`` is keyed by ``factor_names`` (default ``v0, v1, ...``)."""
    mi, h = mutual_info_matrix(codes, factors, bins)
    d, nf = mi.shape
    top = -np.sort(-mi, axis=0)
    second = top[1] if d > 1 else np.zeros(nf)
    gaps = np.where(h > 0, (top[0] - second) / np.where(h > 0, h, 1.0), 0.0)
    return {"mig": float(gaps.mean()), "per_factor": dict(zip(_names(factor_names, nf, "v"), gaps.tolist())),
            "mi": mi.tolist()}


def mig(encode: Encoder, truth: GroundTruth, n: int = 10000, seed: int = 0, bins: int = 20,
        batch_size: int = 500) -> float:
    """MIG (Chen et al. 2018) on ``n`` random factor draws."""
    factors = truth.sample_factors(n, _generator(seed))
    return mig_from_codes(represent(encode, truth, factors, batch_size), factors.numpy(), bins)["mig"]


# -- FactorVAE score --------------------------------------------------------------------------------
def _votes(encode: Encoder, truth: GroundTruth, n_votes: int, L: int, std: np.ndarray, active: np.ndarray,
           gen: torch.Generator, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(argmin active dimension, fixed factor) for ``n_votes`` votes."""
    sizes = tuple(truth.factor_sizes)
    per_call = max(1, batch_size // L)
    dims, facs = [], []
    for start in range(0, n_votes, per_call):
        m = min(per_call, n_votes - start)
        ks = torch.randint(0, len(sizes), (m,), generator=gen)
        blocks = []
        for k in ks.tolist():
            value = int(torch.randint(0, sizes[k], (1,), generator=gen))
            blocks.append(truth.sample_fixed(L, k, value, gen))
        z = represent(encode, truth, torch.cat(blocks), batch_size=m * L)
        z = (z / std)[:, active].reshape(m, L, -1)
        dims.append(np.var(z, axis=1, ddof=1).argmin(axis=1))
        facs.append(ks.numpy())
    return np.concatenate(dims), np.concatenate(facs)


def factor_vae_from_std(encode: Encoder, truth: GroundTruth, std: np.ndarray, seed: int = 0, L: int = 64,
                        n_train_votes: int = 800, n_eval_votes: int = 800, prune_var: float = 0.05,
                        batch_size: int = 512) -> dict:
    """The FactorVAE score given each dimension's standard deviation over the data."""
    std = np.asarray(std, dtype=np.float64)
    active = std ** 2 >= prune_var
    out = {"factor_vae": 0.0, "train_accuracy": 0.0, "active_dims": int(active.sum())}
    if not active.any():
        return out
    gen = _generator(seed)
    nf = len(truth.factor_sizes)
    dims, facs = _votes(encode, truth, n_train_votes, L, std, active, gen, batch_size)
    votes = np.zeros((int(active.sum()), nf), dtype=np.int64)
    np.add.at(votes, (dims, facs), 1)
    classifier = votes.argmax(axis=1)
    out["train_accuracy"] = float(votes.max(axis=1).sum() / max(1, votes.sum()))
    out["votes"] = votes.tolist()
    if n_eval_votes > 0:
        dims, facs = _votes(encode, truth, n_eval_votes, L, std, active, gen, batch_size)
        out["factor_vae"] = float((classifier[dims] == facs).mean())
    else:
        out["factor_vae"] = out["train_accuracy"]
    return out


def factor_vae_score(encode: Encoder, truth: GroundTruth, seed: int = 0, L: int = 64, n_variance: int = 10000,
                     n_train_votes: int = 800, n_eval_votes: int = 800, prune_var: float = 0.05,
                     batch_size: int = 512) -> float:
    """The FactorVAE score (Kim & Mnih 2018): accuracy of the majority-vote classifier on
    ``n_eval_votes`` fresh votes, each from ``L`` images with one factor fixed. The normalising
    standard deviations come from ``n_variance`` random images."""
    factors = truth.sample_factors(n_variance, _generator(seed + 1_000_003))
    std = represent(encode, truth, factors, batch_size).std(axis=0)
    return factor_vae_from_std(encode, truth, std, seed, L, n_train_votes, n_eval_votes, prune_var,
                               batch_size)["factor_vae"]


# -- DCI -------------------------------------------------------------------------------------------
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


def dci_from_codes(codes: np.ndarray, factors: np.ndarray, test_fraction: float = 0.2, seed: int = 0,
                   n_estimators: int = 100) -> dict:
    """DCI with gradient-boosted-tree importances (as disentanglement_lib) for codes ``(n, d)``
    and integer factors ``(n, F)``; the first ``1 - test_fraction`` of the rows train, the rest
    test. ``{"disentanglement", "completeness", "informativeness" (mean test accuracy over
    factors), "informativeness_train", "importance" (d x F)}``. ``n_estimators``: boosting stages
    (100, scikit-learn's and disentanglement_lib's default; the fit costs one tree per class and
    stage, so fewer are for a quick look only)."""
    from sklearn.ensemble import GradientBoostingClassifier

    codes = np.asarray(codes, dtype=np.float64)
    factors = np.asarray(factors)
    n, d = codes.shape
    nf = factors.shape[1]
    n_test = int(round(n * test_fraction)) if n >= 10 else 0
    n_train = n - n_test
    x_tr, x_te = codes[:n_train], codes[n_train:]
    importance = np.zeros((d, nf))
    train_acc, test_acc = [], []
    for k in range(nf):
        y_tr, y_te = factors[:n_train, k], factors[n_train:, k]
        if len(np.unique(y_tr)) < 2:   # a constant factor: nothing to predict, no importance
            train_acc.append(1.0)
            test_acc.append(float(np.mean(y_te == y_tr[0])) if n_test else 1.0)
            continue
        model = GradientBoostingClassifier(n_estimators=int(n_estimators), random_state=seed)
        model.fit(x_tr, y_tr)
        importance[:, k] = np.abs(model.feature_importances_)
        train_acc.append(float(np.mean(model.predict(x_tr) == y_tr)))
        if n_test:
            test_acc.append(float(np.mean(model.predict(x_te) == y_te)))
    out = dci_from_importance(importance)
    out["informativeness_train"] = float(np.mean(train_acc))
    out["informativeness"] = float(np.mean(test_acc)) if test_acc else out["informativeness_train"]
    out["importance"] = importance.tolist()
    return out


def dci(encode: Encoder, truth: GroundTruth, n: int = 3000, seed: int = 0, batch_size: int = 500) -> dict:
    """DCI (Eastwood & Williams 2018) with gradient-boosted-tree importances on ``n`` random
    factor draws (80% to train the classifiers, 20% to test them)."""
    factors = truth.sample_factors(n, _generator(seed))
    return dci_from_codes(represent(encode, truth, factors, batch_size), factors.numpy(), seed=seed)


def dci_disentanglement(encode: Encoder, truth: GroundTruth, n: int = 3000, seed: int = 0,
                        batch_size: int = 500) -> float:
    return dci(encode, truth, n, seed, batch_size)["disentanglement"]


# -- everything on one sample --------------------------------------------------------------------------
def ground_truth_scores(encode: Encoder, truth: GroundTruth, code_names: Sequence[str] | None = None,
                        n: int = 10000, seed: int = 0, L: int = 64, n_train_votes: int = 800,
                        n_eval_votes: int = 800, prune_var: float = 0.05, dci_points: int = 3000,
                        dci_estimators: int = 100, bins: int = 20, batch_size: int = 500) -> dict:
    """``{"disentanglement": {"mig", "factor_vae", "dci_disentanglement", "dci_completeness",
    "dci_informativeness", "mig_per_factor"}, "code_factors": {code: {"factor", "nmi",
    "per_factor"}}}``. MIG and the code table use ``n`` random factor draws, DCI the first
    ``dci_points`` of them (with ``dci_estimators`` boosting stages), and the FactorVAE score their
    standard deviations and ``n_train_votes`` + ``n_eval_votes`` votes of ``L`` images each."""
    truth = check_truth(truth)
    names = list(truth.factor_names)
    factors = truth.sample_factors(n, _generator(seed))
    codes = represent(encode, truth, factors, batch_size)
    f = factors.numpy()
    m = mig_from_codes(codes, f, bins, names)
    fv = factor_vae_from_std(encode, truth, codes.std(axis=0), seed + 1, L, n_train_votes, n_eval_votes,
                             prune_var, batch_size)
    k = min(int(dci_points), len(codes))
    d = dci_from_codes(codes[:k], f[:k], seed=seed, n_estimators=dci_estimators)
    scores = {"mig": m["mig"], "factor_vae": fv["factor_vae"], "dci_disentanglement": d["disentanglement"],
              "dci_completeness": d["completeness"], "dci_informativeness": d["informativeness"],
              "mig_per_factor": m["per_factor"]}
    return {"disentanglement": scores, "code_factors": code_factors(codes, f, code_names, names, bins)}


def disentanglement_scores(encode: Encoder, truth: GroundTruth, **kwargs) -> dict:
    """The ``"disentanglement"`` part of :func:`ground_truth_scores` (same keyword arguments)."""
    return ground_truth_scores(encode, truth, **kwargs)["disentanglement"]


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


def ground_truth_metrics(model, data, **kwargs) -> dict:
    """The evaluation hook (``genzoo eval``, the engine's final evaluation): for data with known
    factors (``data.truth`` a :class:`GroundTruth`) and a model with codes,
    :func:`ground_truth_scores` of the model's Q, ``{"disentanglement": {...}, "code_factors":
    {...}}``; ``{}`` otherwise. ``kwargs`` go to :func:`ground_truth_scores`."""
    truth = getattr(data, "truth", None)
    if truth is None or not len(getattr(model, "codes", ())):
        return {}
    truth = check_truth(truth)
    if tuple(truth.image_shape) != tuple(model.image_shape):
        raise ValueError(f"the ground truth renders {tuple(truth.image_shape)} images, the model takes "
                         f"{tuple(model.image_shape)}")
    names = [name for name, _ in model.codes]
    return ground_truth_scores(model_code_encoder(model), truth, code_names=names, **kwargs)

