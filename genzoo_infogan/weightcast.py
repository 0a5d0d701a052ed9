"""bf16 copies of the large weights, cast when a weight changes instead of at every use.

Under bf16 autocast every linear layer casts its fp32 weight to bf16 when it runs. Autocast keeps
that copy only within one autocast region and only for weights that require gradients, so a weight
read by several passes is cast again and again: in InfoGAN's G phase D's trunk is frozen and runs
twice, and the next step casts the same, unchanged weights once more. The two 6272 x 1024 layers
of the MNIST networks made these casts about a tenth of a training step on the 2-core CPU.

:class:`WeightCasts` keeps one bf16 copy per weight, rewritten in place only when the weight's
version changes (a load) or the engine marks it stale (:meth:`WeightCasts.stale`, after each
optimizer step). The engine opens :meth:`WeightCasts.phase` around each
phase's forward pass and loss terms; inside it, the :class:`Linear` layers of
:mod:`genzoo_infogan.nets` read their weight through :func:`cast_weight`. The numbers are those of
autocast's own cast: the same bf16 values forward; backward, one gradient per weight and phase,
cast to fp32 (within a phase all uses share one cast, as autocast's cache does). Outside a phase,
or without autocast, :class:`Linear` is ``torch.nn.Linear``.

With ``grad_in_place`` (the engine's choice on one process) that fp32 gradient is not a new tensor
either: the cast's backward writes it into a kept fp32 buffer per weight, set as the weight's
``.grad`` (or adds it in place to a ``.grad`` already there), and hands autograd nothing for the
weight. A fresh 25 MB tensor per large weight and phase can cost more than the copy itself on the
2-core CPU: when the allocator takes the block from the kernel, each new page is faulted in and
zero-filled (a step then took 140 ms against 124-136 ms; docs/experiments/speed.md). The numbers
are the same to the bit. A ``.grad`` read after a step is overwritten by the next backward, as
with ``zero_grad(set_to_none=False)``, and ``torch.autograd.grad`` with respect to such a weight
gets nothing (the engine asks it only for inputs: R1, VAT). Not under DistributedDataParallel,
whose all-reduce hooks wait on autograd's own gradient of each weight.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar

import torch
import torch.nn.functional as F
from torch import nn

_ACTIVE: ContextVar["WeightCasts | None"] = ContextVar("genzoo_weight_casts", default=None)


class _Cast(torch.autograd.Function):
    """``weight`` -> its bf16 copy (already written); the gradient goes back to fp32, as a new
    tensor, or (``grad_buffer`` given) written into the kept buffer that becomes ``weight.grad``."""

    @staticmethod
    def forward(ctx, weight, copy, grad_buffer):
        ctx.weight, ctx.grad_buffer = weight, grad_buffer
        return copy.view_as(copy)

    @staticmethod
    def backward(ctx, grad):
        weight = ctx.weight
        if ctx.grad_buffer is None:
            return grad.to(torch.float32), None, None
        with torch.no_grad():
            if weight.grad is None:
                weight.grad = ctx.grad_buffer.copy_(grad)
            else:
                weight.grad.add_(grad)
        return None, None, None


class WeightCasts:
    """One bf16 copy per fp32 weight, kept across phases and steps; see the module's docstring."""

    def __init__(self, dtype: torch.dtype = torch.bfloat16, grad_in_place: bool = False):
        self.dtype = dtype
        self.grad_in_place = grad_in_place
        self._copies: dict[int, tuple] = {}  # id -> (weight, its version when copied or None, copy)
        self._grads: dict[int, torch.Tensor] = {}  # id -> the kept fp32 gradient buffer (grad_in_place)
        self._phase: dict[tuple, torch.Tensor] | None = None  # this phase's casts, shared by its uses

    @contextmanager
    def phase(self):
        token = _ACTIVE.set(self)
        self._phase = {}
        try:
            yield self
        finally:
            self._phase = None
            _ACTIVE.reset(token)

    def stale(self, weights) -> None:
        """Mark the copies of ``weights`` out of date: an optimizer stepped them. Adam's fused kernel
        updates weights in place without moving their version counter, so the engine says so here.
        The next use rewrites the copy in place (no new allocation)."""
        for w in weights:
            if id(w) in self._copies:
                weight, _, copy = self._copies[id(w)]
                self._copies[id(w)] = (weight, None, copy)

    def get(self, weight: torch.Tensor) -> torch.Tensor:
        track = weight.requires_grad and torch.is_grad_enabled()
        key = (id(weight), weight._version, track)
        if key in self._phase:
            return self._phase[key]
        _, version, copy = self._copies.get(id(weight), (None, None, None))
        if copy is None or version != weight._version:
            with torch.no_grad():
                if copy is None:
                    copy = torch.empty_like(weight, dtype=self.dtype)
                copy.copy_(weight)
            self._copies[id(weight)] = (weight, weight._version, copy)
        if track:
            buffer = self._grad_buffer(weight) if self.grad_in_place and weight.is_leaf else None
            out = _Cast.apply(weight, copy, buffer)
        else:
            out = copy
        self._phase[key] = out
        return out

    def _grad_buffer(self, weight: torch.Tensor) -> torch.Tensor:
        """The kept fp32 gradient buffer of ``weight`` (``weight`` is kept alive by ``_copies``)."""
        if id(weight) not in self._grads:
            self._grads[id(weight)] = torch.empty_like(weight, memory_format=torch.contiguous_format)
        return self._grads[id(weight)]


def cast_weight(weight: torch.Tensor) -> torch.Tensor:
    """``weight`` as the layer should read it: its kept bf16 copy inside a :meth:`WeightCasts.phase`
    under bf16 autocast, else ``weight`` itself (autocast, if on, casts it as usual)."""
    casts = _ACTIVE.get()
    if (casts is None or not isinstance(weight, nn.Parameter) or weight.dtype != torch.float32
            or not torch.is_autocast_enabled(weight.device.type)
            or torch.get_autocast_dtype(weight.device.type) != casts.dtype):
        return weight
    return casts.get(weight)


class Linear(nn.Linear):
    """``torch.nn.Linear`` whose weight, inside a :meth:`WeightCasts.phase`, is the kept bf16 copy."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, cast_weight(self.weight), self.bias)
