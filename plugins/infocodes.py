"""The info-code mechanism as a loss hook: any family whose phase returns Q's reading of images
generated from known codes (``PhaseOutput.generated``) gets ``-sum_i lambda_i L_I_i``.

Weights come from the recipe's ``[info]`` table: ``lambda_cat`` for categorical codes,
``lambda_cont`` for continuous ones, ``weights`` per code name, and ``phase_scale`` per phase
(``{g = 0.0}`` trains Q, in the D phase, without asking G to carry information: a plain GAN whose
L_I is still measured, the paper's figure 1 baseline). L_I per code is logged as ``L_I/<code>``.

A schedule for continuous codes: ``cont_start`` steps with their weight at 0, then a linear ramp
over ``cont_ramp`` steps to their full weight (both 0 by default: full weight from the first step).
The idea is to let a categorical code settle before continuous codes compete with it for the same
variation. On ``infogan-mnist`` it did not help (the continuous codes stayed unused after a late
start; the recipe has the figures); a smaller ``lambda_cont`` helped a little.

Categorical codes on real data (off by default; beyond the paper): a family whose phase returns
Q's reading of the real batch (``PhaseOutput.real``; Q runs on it only when one of these weights is
on) gets
``real_balance * (ln k - H(mean_x Q(c|x))) + real_confidence * mean_x H(Q(c|x))`` per categorical
code, logged as ``gap_real/<code>`` and ``H_real/<code>``. With both weights equal this maximises
the mutual information between real images and the code under Q (RIM, Krause et al. 2010; IMSAT,
Hu et al. 2017). InfoGAN's L_I only ever sees generated images; this term asks Q to spread the
*real* images over all k categories, each with confidence, which is what stops one category from
holding two digits while another digit is split in two.

``confidence_ramp`` (0 by default: none) raises ``real_confidence`` linearly from 0 over that many
steps. A posterior pushed to be sure from the first step commits to whatever split of the digits
the young features favour (stroke, slant) and keeps it; ramped, the balance and invariance terms
shape the categories first (``infovae-mnist``: docs/experiments/vae.md).

``real_invariance`` (also off by default) adds ``mean_x KL(Q(c|x) || Q(c|T(x)))`` per categorical
code, logged as ``inv_real/<code>``, where T is a random small affine transformation of the real
batch, read by Q through ``PhaseOutput.real.q_transformed`` (IMSAT's self-augmented training): the
categorical code must not change when the image is rotated, scaled or sheared a little, which is
what keeps it from splitting a digit by slant or width (the continuous codes' job). T's ranges are
the recipe's ``[info.invariance_affine]`` (``degrees``, ``scale``, ``shear``, ``translate_px``:
:func:`genzoo_infogan.images.random_affine`). With ``invariance_stroke`` above 0 (off by default),
T also thickens or thins the strokes by up to that share of a 3x3 max or min filter
(:func:`genzoo_infogan.images.random_stroke`), so that the pen is style too.

``fake_invariance`` (off by default) does the same for generated images: it adds each categorical
code's L_I once more, weighted by ``fake_invariance``, with Q reading a randomly transformed copy of
G's images (the same ranges), logged as ``L_I_aug/<code>``. By the
data processing inequality this is still a lower bound on I(c; G(z, c)). Q can then not read the
category from slant or width, so G cannot carry it there either: in the G phase it pushes G to put
the categorical code in what survives the transformation, the digit's shape.
``fake_invariance_phase_scale`` scales the term per phase (``{d = 0.0}``: only G is asked, and
the D phase skips Q's pass over T(G(z, c)), a cheaper step; Q still learns to ignore T from
``real_invariance``, above).

``real_vat`` (off by default) adds ``mean_x KL(Q(c|x) || Q(c|x + r_adv))`` per categorical code,
logged as ``vat_real/<code>``: virtual adversarial training (Miyato et al. 2018), the term that
lifted IMSAT on MNIST from 89.6% (random perturbations) to 98.4%. ``r_adv`` is the shift of L2
length ``vat_eps`` (pixel units) that most changes Q's categorical posterior, found by one power
iteration (``Reading.q_adversarial``): where T asks for invariance along the shifts one chose,
this asks for it along the one Q is weakest at, which is where one digit borders another. On
``infovae-mnist`` it separated 4s from 9s but split other digits instead, with no gain over
seeds 0, 3 and 4 (docs/experiments/vae.md), so no recipe sets it.

``invariance_batch`` (0 by default: the whole batch) applies T (and ``r_adv``) to only the first N
images of each batch, for the invariance and VAT terms: the batch is in random order, so they are
a random subset, and each transformed copy costs a pass of Q's features over N images instead of
the whole batch.

``real_independence`` (off by default) adds, for each pair of continuous codes, the normalised
HSIC (Gretton et al. 2005; Gaussian kernels) between Q's readings of the two on the real batch,
logged as ``dep_real/<code>_<code>``: a data set whose factors are drawn independently should be
read as independent quantities, and a code that reads a mix of two factors (how wide a head looks,
which its turn and its width both change) depends on the code that reads one of them. It shapes Q
(the D phase), and G through Q's reading of its images.

``real_prior`` (off by default) adds the MMD (Gretton et al. 2012; Gaussian kernels of widths 0.25,
0.5 and 1 prior standard deviations) between Q's readings of all continuous codes on the real
batch, taken together, and as many draws from the codes' prior, logged as ``prior_real``: read from
real images, the codes should be distributed as G draws them, each spread over its range and all
independent (the aggregate posterior of adversarial and Wasserstein autoencoders). Where
``real_independence`` only asks the pairs to be independent, this also fixes each code's spread, so
Q cannot satisfy it by reading nothing; and two independent uniform factors read through a rotated
mix fill a rhombus, not the prior's square (the reason independent component analysis can undo such
mixes). On ``heads3d`` it did not free the width from the turn (docs/experiments/3d.md), so no
recipe sets it.

InfoGAN-CR's contrastive regulariser belongs to the InfoGAN family (``[model] contrastive``).
"""

from __future__ import annotations

from genzoo_infogan import hookimpl
from genzoo_infogan.losses import (code_weights, independence_terms, info_loss, invariance_terms, prior_terms,
                                   real_code_terms)
from genzoo_infogan.model import PhaseOutput


def continuous_scale(step: int, start: int, ramp: int) -> float:
    """Weight multiplier of continuous codes at ``step``: 0 before ``start``, 1 after the ramp."""
    if step < start:
        return 0.0
    if ramp <= 0:
        return 1.0
    return min(1.0, (step - start + 1) / ramp)


@hookimpl
def loss_terms(phase, model, outputs: PhaseOutput, config, step):
    if outputs.generated is None and outputs.real is None:
        return None
    cfg = config["info"]
    codes = model.codes
    terms = {}
    subset = cfg["invariance_batch"] or None  # T on the first N images of the batch, or on all
    t_ranges = dict(cfg["invariance_affine"], stroke=cfg["invariance_stroke"])  # T's ranges
    gen = outputs.generated
    if gen is not None:
        weights = code_weights(codes, cfg["lambda_cat"], cfg["lambda_cont"], cfg["weights"])
        cont = continuous_scale(step, cfg["cont_start"], cfg["cont_ramp"])
        if cont != 1.0:
            weights = {n: (w if codes[n].discrete else cont * w) for n, w in weights.items()}
        held = model.held_codes(step)  # e.g. InfoGAN's code_release: not yet drawn, nothing to read
        if held:
            weights = {n: (0.0 if n in held else w) for n, w in weights.items()}
        loss, li = info_loss(codes, gen.q, gen.c, weights)
        for name, value in li.items():
            outputs.metrics[f"L_I/{name}"] = value.detach()
        scale = float(cfg["phase_scale"].get(phase, 1.0))
        if scale != 0.0:
            terms["info"] = scale * loss
        cat = {n: (w if codes[n].discrete else 0.0) for n, w in weights.items()}
        # Q on T(G(z, c)) costs a pass through Q's features: only where the term counts
        aug_scale = scale * float(cfg["fake_invariance_phase_scale"].get(phase, 1.0))
        if cfg["fake_invariance"] > 0 and aug_scale != 0.0 and any(cat.values()):
            q_aug = gen.q_transformed(n=subset, **t_ranges)
            loss_aug, li_aug = info_loss(codes, q_aug, {k: v[:subset] for k, v in gen.c.items()}, cat)
            for name, value in li_aug.items():
                if codes[name].discrete:
                    outputs.metrics[f"L_I_aug/{name}"] = value.detach()
            terms["info_aug"] = cfg["fake_invariance"] * aug_scale * loss_aug
    real = outputs.real
    balance, confidence, invariance = cfg["real_balance"], cfg["real_confidence"], cfg["real_invariance"]
    confidence *= continuous_scale(step, 0, cfg["confidence_ramp"])
    vat, independence, prior = cfg["real_vat"], cfg["real_independence"], cfg["real_prior"]
    if real is not None and (balance > 0 or confidence > 0 or invariance > 0 or vat > 0 or independence > 0
                             or prior > 0):
        parts = []
        for name, (gap, cond) in real_code_terms(codes, real.q).items():
            outputs.metrics[f"gap_real/{name}"] = gap.detach()
            outputs.metrics[f"H_real/{name}"] = cond.detach()
            parts.append(balance * gap + confidence * cond)
        q_first = {k: {p: v[:subset] for p, v in params.items()} for k, params in real.q.items()}
        if invariance > 0:
            q_aug = real.q_transformed(n=subset, **t_ranges)
            for name, kl in invariance_terms(codes, q_first, q_aug).items():
                outputs.metrics[f"inv_real/{name}"] = kl.detach()
                parts.append(invariance * kl)
        if vat > 0:
            q_adv = real.q_adversarial(cfg["vat_eps"], n=subset)
            for name, kl in invariance_terms(codes, q_first, q_adv).items():
                outputs.metrics[f"vat_real/{name}"] = kl.detach()
                parts.append(vat * kl)
        if independence > 0:
            for pair, dep in independence_terms(codes, real.q).items():
                outputs.metrics[f"dep_real/{pair.replace(',', '_')}"] = dep.detach()
                parts.append(independence * dep)
        if prior > 0:
            gap = prior_terms(codes, real.q, real.rng)
            if gap is not None:
                outputs.metrics["prior_real"] = gap.detach()
                parts.append(prior * gap)
        if parts:  # no code the terms apply to: nothing to add
            terms["info_real"] = sum(parts)
    return terms or None
