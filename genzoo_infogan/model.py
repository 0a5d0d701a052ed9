"""The interface the engine, the checkpoints and the CLI use for every family's model.

A family's ``build(arch, codes, image_shape)`` returns a :class:`GenerativeModel`. The engine only
calls :meth:`phase_parameters` and :meth:`phase_outputs`; sampling, traversals, encoding and
export use the rest. Training logic for a family lives in ``phase_outputs``; everything it shares
with other families (the info loss, optimizers, logging) lives in hooks and the engine.
"""

from __future__ import annotations

import contextlib
from typing import Mapping

import torch
from torch import nn

from .codes import CodeSet


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

    def __init__(self, arch: Mapping, codes: CodeSet, image_shape: tuple[int, int, int]):
        super().__init__()
        self.arch = dict(arch)
        self.codes = codes
        self.image_shape = tuple(int(s) for s in image_shape)
        self.noise_dim = int(self.arch.get("noise_dim", 0))

    # -- training -----------------------------------------------------------------------------
    def phase_parameters(self, phase: str) -> list[nn.Parameter]:  # pragma: no cover - abstract
        raise NotImplementedError

    def phase_outputs(self, phase: str, x: torch.Tensor, gen: torch.Generator) -> dict:
        """Run one phase on the real batch ``x``; return ``{"losses": {...}, "metrics": {...}}``
        and, where the phase carries codes, ``"info": {"q": Q params, "c": code values}``."""
        raise NotImplementedError  # pragma: no cover

    def forward(self, phase: str, x: torch.Tensor, gen: torch.Generator) -> dict:
        # forward() is phase_outputs() so that DistributedDataParallel sees every phase's pass
        return self.phase_outputs(phase, x, gen)

    # -- generation ---------------------------------------------------------------------------
    def generate(self, noise: torch.Tensor, codes: Mapping[str, torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError  # pragma: no cover

    def encode(self, x: torch.Tensor) -> dict[str, dict[str, torch.Tensor]]:
        """Q's estimate of the codes of images ``x`` (values in [0, 1])."""
        raise NotImplementedError  # pragma: no cover

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def sample_noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randn((n, self.noise_dim), generator=generator).to(self.device)

    def sample_codes(self, n: int, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        return {k: v.to(self.device) for k, v in self.codes.sample(n, generator).items()}

    @torch.no_grad()
    def sample(self, n: int, codes: Mapping[str, float | int | torch.Tensor] | None = None,
               seed: int | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` images, codes from the prior except those fixed in ``codes`` (``{"c1": 3}``)."""
        if generator is None:
            generator = torch.Generator().manual_seed(0 if seed is None else int(seed))
        with eval_mode(self):
            noise = self.sample_noise(n, generator)
            values = self.sample_codes(n, generator)
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
