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
"""

from __future__ import annotations

from genzoo_infogan import hookimpl
from genzoo_infogan.losses import code_weights, info_loss


def continuous_scale(step: int, start: int, ramp: int) -> float:
    """Weight multiplier of continuous codes at ``step``: 0 before ``start``, 1 after the ramp."""
    if step < start:
        return 0.0
    if ramp <= 0:
        return 1.0
    return min(1.0, (step - start + 1) / ramp)


@hookimpl
def loss_terms(phase, model, outputs, config, step):
    info = outputs.get("info")
    if not info:
        return None
    codes = info.get("codes", model.codes)
    cfg = config.get("info", {})
    weights = code_weights(codes, cfg.get("lambda_cat", 1.0), cfg.get("lambda_cont", 1.0), cfg.get("weights"))
    cont = continuous_scale(step, int(cfg.get("cont_start", 0)), int(cfg.get("cont_ramp", 0)))
    if cont != 1.0:
        weights = {n: (w if codes[n].discrete else cont * w) for n, w in weights.items()}
    loss, li = info_loss(codes, info["q"], info["c"], weights)
    metrics = outputs.setdefault("metrics", {})
    for name, value in li.items():
        metrics[f"L_I/{name}"] = value.detach()
    scale = float(cfg.get("phase_scale", {}).get(phase, 1.0))
    if scale == 0.0:
        return None
    return {"info": scale * loss}
