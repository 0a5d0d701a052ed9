"""Attach info codes to any model: ``attach_info_codes(family_or_model, ...)``.

A model can carry info codes when it declares two things:

* **where its generator input goes**: the family builds its generator for an input of width
  ``noise_dim + codes.input_dim`` (``build`` receives the CodeSet), and every phase that generates
  says what it generated: ``PhaseOutput.samples = (images, code values)`` (code values from
  ``model.sample_codes(n, rng)``);
* **which features Q may read**: ``model.features(x) -> (n, feature_dim)`` and ``model.feature_dim``.

``attach_info_codes`` then adds a :class:`~genzoo_infogan.qhead.QHead` on those features, turns
each phase's samples into ``PhaseOutput.generated`` (Q's reading of them), so the built-in
``infocodes`` plugin's loss hook adds ``-sum_i lambda_i L_I_i`` to that phase, and trains Q with
the optimizer of ``q_phase``. In that phase it also offers Q's reading of the real batch
(``PhaseOutput.real``), for the recipe's real-data terms. Nothing in the host, the engine or the
InfoGAN plugin changes. Given a family, it returns a family whose models come out with codes
attached, whose settings gain ``q_hidden``.
"""

from __future__ import annotations

import dataclasses
import types

from torch import nn

from .model import GenerativeModel, Reading
from .qhead import QHead


class InfoCodesFamily:
    """A family wrapper: ``build`` builds the base family's model, then attaches info codes."""

    def __init__(self, base, hidden: int = 128, name: str | None = None, q_phase: str | None = None):
        self.base = base
        self.q_phase = q_phase
        self.name = name or base.name
        self.description = f"{getattr(base, 'description', base.name)} (+ info codes)"
        self.phases = tuple(base.phases)
        names = {f.name for f in dataclasses.fields(base.settings)}
        self.settings = base.settings if "q_hidden" in names else dataclasses.make_dataclass(
            f"{base.settings.__name__}WithCodes", [("q_hidden", int, dataclasses.field(default=hidden))],
            bases=(base.settings,), frozen=base.settings.__dataclass_params__.frozen)

    def build(self, settings, codes, image_shape):
        model = self.base.build(settings, codes, image_shape)
        return attach_info_codes(model, hidden=settings.q_hidden, q_phase=self.q_phase)


def attach_info_codes(target, hidden: int = 128, q_phase: str | None = None):
    """Give a model (or every model of a family) a Q head and the info loss. See the module doc.

    ``q_phase`` is the phase whose optimizer trains Q (default: the model's first phase, which is
    D's for a GAN and the only one for an autoencoder); the info loss of the other generating
    phases trains what generated the samples.
    """
    if not isinstance(target, nn.Module):
        if not all(hasattr(target, a) for a in ("build", "settings", "phases")):
            raise TypeError("attach_info_codes takes a GenerativeModel or a family (build, settings, phases)")
        return InfoCodesFamily(target, hidden, q_phase=q_phase)
    model: GenerativeModel = target
    missing = [a for a in ("codes", "features", "feature_dim", "phase_outputs", "phase_parameters")
               if not hasattr(model, a)]
    if missing:
        raise TypeError(f"{type(model).__name__} cannot carry info codes: it lacks {', '.join(missing)} "
                        "(see genzoo_infogan.attach)")
    if len(model.codes) == 0:
        raise ValueError("attach_info_codes needs at least one code in the model's CodeSet")
    if hasattr(model, "q_head"):
        raise ValueError(f"{type(model).__name__} already has a q_head")
    q_phase = q_phase or model.phases[0]
    if q_phase not in model.phases:
        raise ValueError(f"q_phase {q_phase!r} is not one of the model's phases {list(model.phases)}")
    model.q_head = QHead(int(model.feature_dim), model.codes, hidden=hidden, batch_norm=hidden > 0)
    base_outputs = model.phase_outputs
    base_params = model.phase_parameters

    def encode(self, x):
        return self.q_head(self.features(x))

    def phase_outputs(self, phase, x, rng, step=0):
        out = base_outputs(phase, x, rng, step)
        samples = getattr(out, "samples", None)
        if samples is not None:
            images, c = samples
            out.generated = Reading(images, self.encode, rng, c=c)
        if phase == q_phase:  # Q on the real batch, run only if an [info] real_* weight asks
            out.real = Reading(x, self.encode, rng)
        return out

    def phase_parameters(self, phase):
        params = list(base_params(phase))
        if phase != q_phase:
            return params
        seen = {id(p) for p in params}
        return params + [p for p in self.q_head.parameters() if id(p) not in seen]

    model.phase_outputs = types.MethodType(phase_outputs, model)
    model.phase_parameters = types.MethodType(phase_parameters, model)
    model.encode = types.MethodType(encode, model)
    for attr in ("export_modules", "full_modules"):
        mods = tuple(getattr(model, attr, ()) or ())
        if "q_head" not in mods:
            setattr(model, attr, mods + ("q_head",))
    return model
