"""Measures of what the codes learned.

* :func:`matched_accuracy`: accuracy of a categorical code against labels after matching
  categories to labels one-to-one (Hungarian algorithm, ``scipy.optimize.linear_sum_assignment``).
  Category k is *not* expected to be digit k: the code is unsupervised.
* :func:`nmi`: normalised mutual information (arithmetic normalisation, as scikit-learn's default).
* :func:`evaluate_model`: both for every categorical code on labelled data, and the Monte Carlo
  L_I per code on fresh samples.
"""

from __future__ import annotations

import numpy as np
import torch

from .codes import CodeSet
from .losses import mi_lower_bound
from .model import eval_mode


def contingency(pred: np.ndarray, labels: np.ndarray, k: int | None = None, m: int | None = None) -> np.ndarray:
    pred, labels = np.asarray(pred, dtype=np.int64), np.asarray(labels, dtype=np.int64)
    k = int(pred.max()) + 1 if k is None else k
    m = int(labels.max()) + 1 if m is None else m
    c = np.zeros((k, m), dtype=np.int64)
    np.add.at(c, (pred, labels), 1)
    return c


def matched_accuracy(pred, labels, k: int | None = None) -> float:
    """Best one-to-one matching of categories to labels; unmatched categories count as wrong."""
    from scipy.optimize import linear_sum_assignment

    c = contingency(pred, labels, k)
    rows, cols = linear_sum_assignment(c, maximize=True)
    return float(c[rows, cols].sum() / max(1, c.sum()))


def nmi(pred, labels) -> float:
    c = contingency(pred, labels).astype(np.float64)
    n = c.sum()
    if n == 0:
        return 0.0
    pxy = c / n
    px, py = pxy.sum(1), pxy.sum(0)
    nz = pxy > 0
    mi = float((pxy[nz] * np.log(pxy[nz] / np.outer(px, py)[nz])).sum())
    hx = -float((px[px > 0] * np.log(px[px > 0])).sum())
    hy = -float((py[py > 0] * np.log(py[py > 0])).sum())
    if hx == 0 and hy == 0:
        return 1.0
    denom = 0.5 * (hx + hy)
    return max(0.0, mi / denom) if denom > 0 else 0.0


def labelled_subset(images: torch.Tensor, labels: torch.Tensor, n: int, seed: int = 0
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` labelled images drawn without replacement by a fixed seed (all of them, in a shuffled
    order, when ``n`` is at least their number): data sets stored by class, as the offline MNIST
    sample is, would otherwise be measured on one class only."""
    idx = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:n]
    return images[idx.to(images.device)], labels[idx.to(labels.device)]


@torch.no_grad()
def encode_batches(model, images: torch.Tensor, batch_size: int = 500) -> dict[str, dict[str, torch.Tensor]]:
    with eval_mode(model):
        outs = [model.encode(images[i:i + batch_size].to(model.device)) for i in range(0, len(images), batch_size)]
    return {name: {p: torch.cat([o[name][p] for o in outs]).cpu() for p in outs[0][name]} for name in outs[0]}


@torch.no_grad()
def mi_estimate(model, n: int = 5000, seed: int = 1234, batch_size: int = 500) -> dict[str, float]:
    """Monte Carlo L_I per code (nats) on ``n`` fresh samples, with the model in eval mode."""
    codes: CodeSet = model.codes
    g = torch.Generator().manual_seed(seed)
    tot = {name: 0.0 for name in codes.names}
    done = 0
    with eval_mode(model):
        while done < n:
            b = min(batch_size, n - done)
            noise = model.sample_noise(b, g)
            values = model.sample_codes(b, g)
            x = model.generate(noise, values).float()
            li = mi_lower_bound(codes, model.encode(x), values)
            for name in tot:
                tot[name] += float(li[name]) * b
            done += b
    return {name: v / n for name, v in tot.items()}


def evaluate_model(model, images: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                   n_mi: int = 5000) -> dict:
    """``{"mi": {code: L_I}, "entropy": {...}, "codes": {code: {"accuracy", "nmi", "confusion"}},
    "code_accuracy": best categorical accuracy}`` (the last two only with labels)."""
    codes: CodeSet = model.codes
    out: dict = {"mi": mi_estimate(model, n_mi) if len(codes) else {}, "entropy": codes.entropy()}
    if images is not None and labels is not None and any(s.discrete for _, s in codes):
        params = encode_batches(model, images)
        lab = labels.cpu().numpy()
        per = {}
        for name, spec in codes:
            if not spec.discrete:
                continue
            pred = spec.point_estimate(params[name]).numpy()
            per[name] = {"accuracy": matched_accuracy(pred, lab, spec.input_dim), "nmi": nmi(pred, lab),
                         # rows: categories, columns: labels; shows which labels merge or split
                         "confusion": contingency(pred, lab, spec.input_dim, int(lab.max()) + 1).tolist()}
        out["codes"] = per
        best = max(per, key=lambda n: per[n]["accuracy"])
        out["code_accuracy"] = per[best]["accuracy"]
        out["code_accuracy_code"] = best
        out["n_eval_images"] = int(len(images))
    return out
