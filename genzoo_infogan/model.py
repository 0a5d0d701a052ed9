"""The interface the engine, the checkpoints and the CLI use for every family's model.

A family's ``build(settings, codes, image_shape)`` returns a :class:`GenerativeModel`. The engine
calls :meth:`~GenerativeModel.phase_parameters` and :meth:`~GenerativeModel.phase_outputs` and
nothing else; sampling, traversals, encoding and export use the rest.

A phase returns a :class:`PhaseOutput`: its own losses and metrics and, where the phase involves
codes, :class:`Reading` objects that say what Q read from which images. The ``infocodes`` plugin's
loss hook turns ``generated`` into the info loss (and ``real`` into the optional real-data terms);
any family that fills them gets info codes, with no other change.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Callable, Mapping

import torch
from torch import nn

from .codes import CodeSet
from .images import random_affine, random_stroke
from .losses import posterior_kl

QParams = dict[str, dict[str, torch.Tensor]]


@dataclass
class Reading:
    """Q's reading of one batch of images, in one phase.

    * ``images``: the batch (generated images, or the real batch);
    * ``read``: Q on any images, with gradients (``model.encode``), for transformed copies;
    * ``rng``: the phase's random generator, for the random transformations;
    * ``c``: the code values the images were generated from (``None`` for real images);
    * ``q``: Q's parameters on ``images``. Give them when the phase has them anyway (InfoGAN
      reads generated images in every step); otherwise ``compute_q`` computes them on first use
      only (InfoGAN's Q on the real batch reuses D's features; nothing runs unless a loss asks).
    """

    images: torch.Tensor
    read: Callable[[torch.Tensor], QParams]
    rng: torch.Generator
    c: dict[str, torch.Tensor] | None = None
    q_given: QParams | None = None
    compute_q: Callable[[], QParams] | None = None

    @property
    def q(self) -> QParams:
        if self.q_given is None:
            self.q_given = self.compute_q() if self.compute_q is not None else self.read(self.images)
        return self.q_given

    def q_transformed(self, n: int | None = None, stroke: float = 0.0, **ranges: float) -> QParams:
        """Q on a randomly transformed copy of the images (:func:`~genzoo_infogan.images.random_affine`
        with ``ranges``: ``degrees``, ``scale``, ``shear``, ``translate_px``; then, if ``stroke`` is
        above 0, :func:`~genzoo_infogan.images.random_stroke`); of the first ``n`` images only, if
        given (the batch is in random order, so they are a random subset)."""
        x = random_affine(self.images[:n], self.rng, **ranges)
        return self.read(random_stroke(x, self.rng, stroke) if stroke > 0 else x)

    def q_adversarial(self, eps: float, n: int | None = None) -> QParams:
        """Q on the images moved by ``r_adv``, the shift of L2 length ``eps`` that most changes
        Q's categorical posterior (virtual adversarial training, Miyato et al. 2018; one power
        iteration from a random direction of length ``eps``); of the first ``n`` images only, if
        given. Only Q's categorical logits steer ``r_adv``; the model's parameters get no gradient
        from finding it."""
        x = self.images[:n].detach().float()
        fixed = {k: v["logits"][:n] for k, v in self.q.items() if "logits" in v}
        if not fixed:
            raise ValueError("virtual adversarial training needs a categorical code")
        d = _unit(torch.randn(x.shape, generator=self.rng).to(x.device)).requires_grad_(True)
        q_d = self.read((x + eps * d).to(self.images.dtype))
        kl = sum(posterior_kl(logits, q_d[k]["logits"]).sum() for k, logits in fixed.items())
        (grad,) = torch.autograd.grad(kl, d)
        return self.read((x + eps * _unit(grad.detach())).to(self.images.dtype))


def _unit(d: torch.Tensor) -> torch.Tensor:
    """Each image's tensor scaled to L2 length 1."""
    return d / d.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *([1] * (d.dim() - 1)))


@dataclass
class PhaseOutput:
    """What one phase of one step returns to the engine.

    ``losses``: the family's own loss terms (scalar tensors, summed into the phase's loss; logged as
    ``loss/<phase>_<name>``). ``metrics``: detached scalars to log as they are. ``generated``: Q's
    reading of images the phase generated from known codes (the info loss). ``real``: Q's reading
    of the real batch (the real-data terms of categorical codes). ``samples``: ``(images, code
    values)`` a phase generated, for a family without a Q head of its own
    (:func:`~genzoo_infogan.attach.attach_info_codes` turns them into ``generated``).
    """

    losses: dict[str, torch.Tensor]
    metrics: dict[str, torch.Tensor] = field(default_factory=dict)
    generated: Reading | None = None
    real: Reading | None = None
    samples: tuple[torch.Tensor, dict[str, torch.Tensor]] | None = None


@contextlib.contextmanager
def eval_mode(module: nn.Module):
    """Run a block with ``module`` in eval mode (BatchNorm uses its running statistics), then
    put it back in the mode it was in."""
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)


class GenerativeModel(nn.Module):
    family: str = ""
    phases: tuple[str, ...] = ()
    #: submodules written by ``genzoo export`` (default) and by ``--full``
    export_modules: tuple[str, ...] = ()
    full_modules: tuple[str, ...] = ()

    def __init__(self, settings, codes: CodeSet, image_shape: tuple[int, int, int]):
        super().__init__()
        self.settings = settings  # the family's [model] settings (a dataclass, or a dict)
        self.codes = codes
        self.image_shape = tuple(int(s) for s in image_shape)
        noise_dim = settings.get("noise_dim", 0) if isinstance(settings, Mapping) else getattr(settings, "noise_dim", 0)
        self.noise_dim = int(noise_dim)

    # -- training -----------------------------------------------------------------------------
    def phase_parameters(self, phase: str) -> list[nn.Parameter]:  # pragma: no cover - abstract
        raise NotImplementedError

    def phase_outputs(self, phase: str, x: torch.Tensor, rng: torch.Generator, step: int = 0) -> PhaseOutput:
        """Run one phase on the real batch ``x`` (``step`` training steps done before this one)."""
        raise NotImplementedError  # pragma: no cover

    def forward(self, phase: str, x: torch.Tensor, rng: torch.Generator, step: int = 0) -> PhaseOutput:
        # forward() is phase_outputs() so that DistributedDataParallel sees every phase's pass
        return self.phase_outputs(phase, x, rng, step)

    # -- generation ---------------------------------------------------------------------------
    def generate(self, noise: torch.Tensor, codes: Mapping[str, torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError  # pragma: no cover

    def encode(self, x: torch.Tensor) -> dict[str, dict[str, torch.Tensor]]:
        """Q's estimate of the codes of images ``x`` (values in [0, 1])."""
        raise NotImplementedError  # pragma: no cover

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def sample_noise(self, n: int, rng: torch.Generator | None = None) -> torch.Tensor:
        return torch.randn((n, self.noise_dim), generator=rng).to(self.device)

    def sample_codes(self, n: int, rng: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        return {k: v.to(self.device) for k, v in self.codes.sample(n, rng).items()}

    def held_codes(self, step: int | None) -> frozenset[str]:
        """Codes the model holds fixed at training ``step`` (none by default, and none outside
        training, ``step=None``); the info loss gives them no weight then."""
        return frozenset()

    @torch.no_grad()
    def sample(self, n: int, codes: Mapping[str, float | int | torch.Tensor] | None = None,
               seed: int | None = None, rng: torch.Generator | None = None) -> torch.Tensor:
        """``n`` images, codes from the prior except those fixed in ``codes`` (``{"c1": 3}``)."""
        if rng is None:
            rng = torch.Generator().manual_seed(0 if seed is None else int(seed))
        with eval_mode(self):
            noise = self.sample_noise(n, rng)
            values = self.sample_codes(n, rng)
            for name, v in (codes or {}).items():
                if name not in self.codes:
                    raise KeyError(f"no code named {name!r}; codes: {', '.join(self.codes.names)}")
                t = torch.as_tensor(v, device=self.device)
                values[name] = (t.expand(n) if t.dim() == 0 else t).to(values[name].dtype)
            return self.generate(noise, values).float()

    @torch.no_grad()
    def traverse(self, code: str, rows: int = 10, steps: int = 10,
                 span: tuple[float, float] | None = None, seed: int = 0,
                 fixed: Mapping[str, float] | None = None) -> torch.Tensor:
        """``rows x steps`` images: each row one noise draw (other codes fixed per row), the
        columns sweep ``code`` (the layout of the paper's figures 2 and 3)."""
        spec = self.codes[code]
        values_1d = spec.traversal(steps, span).to(self.device)
        steps = len(values_1d)
        g = torch.Generator().manual_seed(int(seed))
        with eval_mode(self):
            noise = self.sample_noise(rows, g).repeat_interleave(steps, 0)
            base = self.sample_codes(rows, g)
            vals = {k: v.repeat_interleave(steps, 0) for k, v in base.items()}
            for name, v in (fixed or {}).items():
                vals[name] = torch.full_like(vals[name], v)
            vals[code] = values_1d.repeat(rows).to(vals[code].dtype)
            return self.generate(noise, vals).float()

    @torch.no_grad()
    def category_rows(self, code: str, per_row: int = 10, seed: int = 0) -> torch.Tensor:
        """One row per category of ``code``, ``per_row`` noise draws each (figure 2a)."""
        spec = self.codes[code]
        k = spec.input_dim
        g = torch.Generator().manual_seed(int(seed))
        with eval_mode(self):
            noise = self.sample_noise(per_row, g).repeat(k, 1)
            base = self.sample_codes(per_row, g)
            vals = {n: v.repeat(k) for n, v in base.items()}
            vals[code] = torch.arange(k, device=self.device).repeat_interleave(per_row)
            return self.generate(noise, vals).float()
