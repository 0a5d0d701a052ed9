"""The info-code mechanism as a loss hook: any family whose phase outputs carry
``outputs["info"] = {"q": Q parameters, "c": code values}`` gets ``-sum_i lambda_i L_I_i``.

Weights come from the recipe's ``[info]`` table: ``lambda_cat`` for categorical codes,
``lambda_cont`` for continuous ones, ``weights`` per code name, and ``phase_scale`` per phase
(``{g = 0.0}`` trains Q, in the D phase, without asking G to carry information: a plain GAN whose
L_I is still measured, the paper's figure 1 baseline). L_I per code is logged as ``L_I/<code>``.

A schedule for continuous codes: ``cont_start`` steps with their weight at 0, then a linear ramp
over ``cont_ramp`` steps to their full weight (both 0 by default: full weight from the first step).
The idea is to let a categorical code settle before continuous codes compete with it for the same
variation. On ``infogan-mnist`` it did not help (the continuous codes stayed unused after a late
start; the recipe has the figures); a smaller ``lambda_cont`` helped a little.

Categorical codes on real data (off by default; beyond the paper): a family whose phase outputs
carry ``outputs["info_real"] = {"q": Q parameters on a batch of real images}`` (or a callable that
returns them, so that Q runs only when a weight is on) gets
``real_balance * (ln k - H(mean_x Q(c|x))) + real_confidence * mean_x H(Q(c|x))`` per categorical
code, logged as ``gap_real/<code>`` and ``H_real/<code>``. With both weights equal this maximises
the mutual information between real images and the code under Q (RIM, Krause et al. 2010; IMSAT,
Hu et al. 2017). InfoGAN's L_I only ever sees generated images; this term asks Q to spread the
*real* images over all k categories, each with confidence, which is what stops one category from
holding two digits while another digit is split in two.

``real_invariance`` (also off by default) adds ``mean_x KL(Q(c|x) || Q(c|T(x)))`` per categorical
code, logged as ``inv_real/<code>``, where T is a random small affine transformation of the real
batch that the family supplies as ``outputs["info_real"]["q_aug"]`` (IMSAT's self-augmented
training): the categorical code must not change when the image is rotated, scaled or sheared a
little, which is what keeps it from splitting a digit by slant or width (the continuous codes'
job). ``q_aug`` may be a callable; it is then called with the recipe's ``[info.invariance_affine]``
ranges (``degrees``, ``scale``, ``shear``, ``translate_px``) as keyword arguments, the ones
:func:`genzoo_infogan.images.random_affine` takes.

``fake_invariance`` (off by default) does the same for generated images: it adds each categorical
code's L_I once more, weighted by ``fake_invariance``, with Q reading a randomly transformed copy of
G's images (``outputs["info"]["q_aug"]``, the same ranges), logged as ``L_I_aug/<code>``. By the
data processing inequality this is still a lower bound on I(c; G(z, c)). Q can then not read the
category from slant or width, so G cannot carry it there either: in the G phase it pushes G to put
the categorical code in what survives the transformation, the digit's shape.

``contrastive`` (off by default) is InfoGAN-CR's contrastive regulariser (Lin et al. 2020): a
family that puts ``outputs["contrastive"] = (logits, k)`` (or a callable that returns them) gets
``contrastive * cross_entropy(logits, k)``, from step ``contrastive_start`` on, logged as
``cr_acc``. In InfoGAN (``[model] cr_net = true``) ``k`` is the index of the one code that a pair of
generated images shares, and ``logits`` are a second network's guess of it from the pair; the
network learns the guess in the D phase and G, in the G phase, learns to make the shared code easy
to tell: each code must change the image in its own way, which is what disentangles the codes.
"""

from __future__ import annotations

import torch.nn.functional as F

from genzoo_infogan import hookimpl
from genzoo_infogan.errors import UserError
from genzoo_infogan.losses import code_weights, info_loss, invariance_terms, real_code_terms


def continuous_scale(step: int, start: int, ramp: int) -> float:
    """Weight multiplier of continuous codes at ``step``: 0 before ``start``, 1 after the ramp."""
    if step < start:
        return 0.0
    if ramp <= 0:
        return 1.0
    return min(1.0, (step - start + 1) / ramp)


def transformed(q_aug, cfg: dict):
    """Q's parameters on a transformed batch: ``q_aug`` itself, or a callable's result, called with
    the recipe's ``[info.invariance_affine]`` ranges."""
    return q_aug(**cfg.get("invariance_affine", {})) if callable(q_aug) else q_aug


@hookimpl
def loss_terms(phase, model, outputs, config, step):
    cfg = config.get("info", {})
    terms = {}
    info = outputs.get("info")
    if info:
        codes = info.get("codes", model.codes)
        weights = code_weights(codes, cfg.get("lambda_cat", 1.0), cfg.get("lambda_cont", 1.0), cfg.get("weights"))
        cont = continuous_scale(step, int(cfg.get("cont_start", 0)), int(cfg.get("cont_ramp", 0)))
        if cont != 1.0:
            weights = {n: (w if codes[n].discrete else cont * w) for n, w in weights.items()}
        loss, li = info_loss(codes, info["q"], info["c"], weights)
        metrics = outputs.setdefault("metrics", {})
        for name, value in li.items():
            metrics[f"L_I/{name}"] = value.detach()
        scale = float(cfg.get("phase_scale", {}).get(phase, 1.0))
        if scale != 0.0:
            terms["info"] = scale * loss
        fake_inv = float(cfg.get("fake_invariance", 0.0))
        cat = {n: (w if codes[n].discrete else 0.0) for n, w in weights.items()}
        # Q on T(G(z, c)) costs a pass through D's trunk: only where the term counts
        if fake_inv > 0 and scale != 0.0 and any(cat.values()) and "q_aug" in info:
            loss_aug, li_aug = info_loss(codes, transformed(info["q_aug"], cfg), info["c"], cat)
            for name, value in li_aug.items():
                if codes[name].discrete:
                    metrics[f"L_I_aug/{name}"] = value.detach()
            terms["info_aug"] = fake_inv * scale * loss_aug
    cr_weight = float(cfg.get("contrastive", 0.0))
    cr = outputs.get("contrastive")
    if cr_weight > 0 and cr is None:  # on the first step, not only once contrastive_start is reached
        raise UserError(f"[info] contrastive = {cr_weight} needs a model with a contrastive-regulariser "
                        f"network, and family {model.family!r} as configured has none (InfoGAN: set "
                        "[model] cr_net = true)")
    if cr_weight > 0 and step >= int(cfg.get("contrastive_start", 0)):
        logits, k = cr() if callable(cr) else cr
        ce = F.cross_entropy(logits.float(), k)
        metrics = outputs.setdefault("metrics", {})
        metrics["cr_acc"] = (logits.detach().argmax(1) == k).float().mean()
        terms["contrastive"] = cr_weight * ce
    real = outputs.get("info_real")
    balance, confidence = float(cfg.get("real_balance", 0.0)), float(cfg.get("real_confidence", 0.0))
    invariance = float(cfg.get("real_invariance", 0.0))
    if real and (balance > 0 or confidence > 0 or (invariance > 0 and "q_aug" in real)):
        codes = real.get("codes", model.codes)
        q = real["q"]() if callable(real["q"]) else real["q"]
        metrics = outputs.setdefault("metrics", {})
        parts = []
        for name, (gap, cond) in real_code_terms(codes, q).items():
            metrics[f"gap_real/{name}"] = gap.detach()
            metrics[f"H_real/{name}"] = cond.detach()
            parts.append(balance * gap + confidence * cond)
        if invariance > 0 and "q_aug" in real:
            q_aug = transformed(real["q_aug"], cfg)
            for name, kl in invariance_terms(codes, q, q_aug).items():
                metrics[f"inv_real/{name}"] = kl.detach()
                parts.append(invariance * kl)
        if parts:  # no categorical code: nothing to add
            terms["info_real"] = sum(parts)
    return terms or None
