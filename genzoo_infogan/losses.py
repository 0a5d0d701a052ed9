"""Losses as plain functions of tensors.

The info (mutual-information) loss follows Chen et al. 2016: for codes c ~ p(c) and x = G(z, c),

    L_I(G, Q) = E[log Q(c|x)] + H(c)  <=  I(c; G(z, c)),

estimated per code by Monte Carlo over the batch, in nats. The loss added to a phase is
``-sum_i lambda_i * L_I_i``. L_I reaches its maximum H(c) when Q recovers c exactly (for a
categorical code: ln k); Q no better than the prior gives 0 for a categorical code.
"""

from __future__ import annotations

import functools
import math
from typing import Mapping

import torch
import torch.nn.functional as F

from .codes import CodeSet


def mi_lower_bound(codes: CodeSet, q_params: Mapping[str, Mapping[str, torch.Tensor]],
                   values: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Per code, the Monte Carlo estimate of L_I = mean log Q(c|x) + H(c), in nats."""
    log_q = codes.log_q(q_params, values)
    return {name: log_q[name].mean() + spec.entropy() for name, spec in codes}


def code_weights(codes: CodeSet, lambda_cat: float = 1.0, lambda_cont: float = 1.0,
                 overrides: Mapping[str, float] | None = None) -> dict[str, float]:
    """lambda_i per code: ``lambda_cat`` for discrete codes, ``lambda_cont`` for continuous ones."""
    overrides = dict(overrides or {})
    unknown = set(overrides) - set(codes.names)
    if unknown:
        raise ValueError(f"info weights name unknown code(s) {sorted(unknown)}; codes: {codes.names}")
    return {n: float(overrides.get(n, lambda_cat if s.discrete else lambda_cont)) for n, s in codes}


def info_loss(codes: CodeSet, q_params, values, weights: Mapping[str, float] | None = None
              ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``(-sum_i lambda_i * L_I_i, {code: L_I_i})``. Weights default to 1 for every code."""
    li = mi_lower_bound(codes, q_params, values)
    weights = weights or {n: 1.0 for n in codes.names}
    loss = -sum(weights[n] * li[n] for n in codes.names)
    return loss, li


def real_code_terms(codes: CodeSet, q_params: Mapping[str, Mapping[str, torch.Tensor]]
                    ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """For each categorical code, Q's posterior on a batch of *real* images, summarised as
    ``(balance gap, conditional entropy)`` in nats:

        balance gap          ln k - H(mean_x Q(c|x))     0 when the batch uses every category equally
        conditional entropy  mean_x H(Q(c|x))            0 when Q is certain of every image

    ``H(mean Q) - mean H(Q)`` is the mutual information between images and categories under Q
    (Krause et al. 2010; Hu et al. 2017, IMSAT), so adding ``balance + conditional`` to a loss
    maximises it. Continuous codes have no such term.
    """
    out = {}
    for name, spec in codes:
        if not spec.discrete:
            continue
        logq = F.log_softmax(q_params[name]["logits"].float(), dim=1)
        q = logq.exp()
        cond = -(q * logq).sum(dim=1).mean()
        m = q.mean(dim=0)
        marginal = -(m * torch.log(m.clamp_min(1e-12))).sum()
        out[name] = (math.log(q.shape[1]) - marginal, cond)
    return out


def invariance_terms(codes: CodeSet, q_params: Mapping[str, Mapping[str, torch.Tensor]],
                     q_aug: Mapping[str, Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """For each categorical code, ``mean_x KL(Q(c|x) || Q(c|T(x)))`` in nats, with Q(c|x) held
    fixed (no gradient): how much a transformation T of the real images moves Q's posterior. The
    self-augmented training term of IMSAT (Hu et al. 2017): with T a small rotation, scaling and
    shear, a categorical code that must ignore T cannot split a digit by slant or width.
    """
    return {name: posterior_kl(q_params[name]["logits"], q_aug[name]["logits"]).mean()
            for name, spec in codes if spec.discrete}


def posterior_kl(fixed_logits: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """Per image, ``KL(softmax(fixed_logits) || softmax(logits))`` in nats, with the first held
    fixed (no gradient): how far a categorical posterior moved."""
    logp = F.log_softmax(fixed_logits.float().detach(), dim=1)
    return (logp.exp() * (logp - F.log_softmax(logits.float(), dim=1))).sum(dim=1)


def gan_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """-E log D(x) - E log(1 - D(G(z))), with logits (numerically stable)."""
    real_logits, fake_logits = real_logits.float(), fake_logits.float()
    return (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
            + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))


def gan_g_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """The non-saturating generator loss -E log D(G(z))."""
    fake_logits = fake_logits.float()
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, 1)) summed over dimensions, averaged over the batch."""
    mu, logvar = mu.float(), logvar.float()
    return (0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)).sum(dim=1).mean()


def _centred_gaussian_gram(x: torch.Tensor) -> torch.Tensor:
    """H K H for a Gaussian kernel on the 1-D sample ``x``, bandwidth the median pairwise distance
    (held constant in the gradient)."""
    d2 = (x[:, None] - x[None, :]).pow(2)
    med = d2.detach()[~torch.eye(len(x), dtype=torch.bool, device=x.device)].median().clamp_min(1e-12)
    k = torch.exp(-d2 / (2 * med))
    return k - k.mean(dim=0, keepdim=True) - k.mean(dim=1, keepdim=True) + k.mean()


def normalised_hsic(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """HSIC(a, b) / sqrt(HSIC(a, a) HSIC(b, b)) (Gretton et al. 2005), Gaussian kernels: about 0 for
    independent samples, 1 when one is a function of the other, between for dependence of any
    shape (not only correlation)."""
    return _normalised_hsic_of_grams(_centred_gaussian_gram(a.float()), _centred_gaussian_gram(b.float()))


def _normalised_hsic_of_grams(ka: torch.Tensor, kb: torch.Tensor) -> torch.Tensor:
    return (ka * kb).sum() / torch.sqrt((ka * ka).sum() * (kb * kb).sum()).clamp_min(1e-12)


def independence_terms(codes: CodeSet, q_params: Mapping[str, Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Normalised HSIC between Q's readings (point estimates) of each pair of continuous codes on
    one batch, keyed ``"c1,c2"``. On real images the factors a data set draws independently should
    be read as independent quantities: a code that reads a mix of two factors (how wide a head
    looks, which its turn and its width both change) depends on the code that reads one of them."""
    names = codes.continuous
    grams = {n: _centred_gaussian_gram(codes[n].point_estimate(q_params[n]).float()) for n in names}  # once per code
    return {f"{a},{b}": _normalised_hsic_of_grams(grams[a], grams[b])
            for i, a in enumerate(names) for b in names[i + 1:]}


def mmd(x: torch.Tensor, y: torch.Tensor, scales: tuple[float, ...] = (0.25, 0.5, 1.0)) -> torch.Tensor:
    """Unbiased squared maximum mean discrepancy (Gretton et al. 2012) between samples ``x`` (n, d)
    and ``y`` (m, d), with a sum of Gaussian kernels of the given widths: about 0 when both are
    drawn from one distribution, above 0 when their distributions differ in any way."""
    x, y = x.float(), y.float()
    n, m = len(x), len(y)

    def k(a, b):
        d2 = torch.cdist(a, b).pow(2)
        return sum(torch.exp(-d2 / (2 * s * s)) for s in scales)

    kxx, kyy = k(x, x), k(y, y)
    return ((kxx.sum() - kxx.diagonal().sum()) / (n * (n - 1)) + (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
            - 2 * k(x, y).mean())


def prior_terms(codes: CodeSet, q_params: Mapping[str, Mapping[str, torch.Tensor]],
                rng: torch.Generator | None = None) -> torch.Tensor | None:
    """MMD between Q's readings (point estimates) of the continuous codes on one batch, taken
    together, and as many draws from their prior, each code in units of its prior's standard
    deviation: on real images, the codes read as the prior draws them (each spread as its
    distribution, all independent), which a code that reads a mix of two independent factors is
    not. ``None`` without continuous codes."""
    names = codes.continuous
    if not names:
        return None
    read = torch.stack([codes[n].point_estimate(q_params[n]).float() for n in names], dim=1)
    n = len(read)
    drawn = torch.stack([codes[k].sample(n, rng).float() for k in names], dim=1).to(read.device)
    std = torch.tensor(prior_stds(tuple(codes[k] for k in names)), device=read.device)
    return mmd(read / std, drawn / std)


@functools.lru_cache(maxsize=None)
def prior_stds(specs: tuple) -> tuple[float, ...]:
    """The codes' prior standard deviations, from 4,096 draws each of one fixed-seed generator in
    turn: computed once per set of codes, not at every step (specs are frozen dataclasses)."""
    fixed = torch.Generator().manual_seed(0)
    return tuple(spec.sample(4096, fixed).float().std().item() for spec in specs)


def jacobian_overlap(base: torch.Tensor, nudged: torch.Tensor) -> torch.Tensor:
    """How far a generator's code directions are from orthogonal, from finite differences:
    ``base`` holds m images G(z, c) and ``nudged`` (k, m, ...) the same images with code i moved a
    little, so that ``nudged[i] - base`` is column i of G's Jacobian at each image. Returns the
    mean over images and over pairs i < j of the squared cosine between columns i and j: 0 when
    every code moves the pixels in directions at right angles (OroJaR, Wei et al. 2021, with each
    column's length divided out, so that a code cannot lower it by moving the image less), 1 when
    two codes move them along one line. 0 for fewer than two codes."""
    k = nudged.shape[0]
    if k < 2:
        return base.new_zeros(()).float()
    cols = (nudged.float() - base.float().unsqueeze(0)).flatten(2)  # (k, m, pixels)
    cols = cols / cols.norm(dim=2, keepdim=True).clamp_min(1e-12)
    cos = torch.einsum("imp,jmp->mij", cols, cols)  # (m, k, k)
    upper = torch.triu(torch.ones(k, k, dtype=torch.bool, device=cos.device), diagonal=1)
    return cos[:, upper].pow(2).mean()


def categorical_kl_uniform(logits: torch.Tensor) -> torch.Tensor:
    """KL(q || Uniform(k)) = sum q log q + ln k, averaged over the batch."""
    logits = logits.float()
    logq = F.log_softmax(logits, dim=1)
    k = logits.shape[1]
    return ((logq.exp() * logq).sum(dim=1) + torch.log(torch.tensor(float(k)))).mean()


def r1_penalty(real_logits: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """R1 (Mescheder et al. 2018): E ||grad_x D(x)||^2 on real data; ``real`` must require grad."""
    (grad,) = torch.autograd.grad(real_logits.float().sum(), real, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()
