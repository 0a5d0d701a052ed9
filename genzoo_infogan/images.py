"""Pictures: image grids (samples, traversals) and line plots (L_I over steps), as PNG files.

Grids come from torchvision's ``make_grid``; plots from matplotlib (its Agg backend, no display
needed). Every file is written atomically.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Mapping, Sequence

import torch

from .io import atomic_write


def grid_image(images: torch.Tensor, nrow: int, scale: int = 1):
    """``(N, C, H, W)`` images in [0, 1] as one Pillow image, ``nrow`` per row, white padding."""
    from PIL import Image
    from torchvision.utils import make_grid

    grid = make_grid(images.detach().float().cpu().clamp(0, 1), nrow=nrow, padding=2, pad_value=1.0)
    arr = (grid.permute(1, 2, 0).numpy() * 255).round().astype("uint8")
    im = Image.fromarray(arr if arr.shape[2] == 3 else arr[:, :, 0])
    if scale > 1:
        im = im.resize((im.width * scale, im.height * scale), Image.NEAREST)
    return im


def save_grid(images: torch.Tensor, path: str | Path, nrow: int, scale: int = 1) -> Path:
    """Save ``(N, C, H, W)`` images in [0, 1] as a PNG grid of ``nrow`` columns (atomic write)."""
    im = grid_image(images, nrow, scale)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, lambda tmp: im.save(tmp, format="PNG"))


def line_plot(series: Mapping[str, Sequence[tuple[float, float]]], path: str | Path, title: str = "",
              xlabel: str = "step", ylabel: str = "", hlines: Mapping[str, float] | None = None,
              size: tuple[float, float] = (7.2, 4.4)) -> Path:
    """A line chart as PNG: ``series`` maps a label to ``[(x, y), ...]``; ``hlines`` adds dashed
    reference lines (e.g. ``{"H(c) = ln 10": 2.303}``)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=100, layout="constrained")
    ax = fig.add_subplot()
    for label, pts in series.items():
        pts = [(x, y) for x, y in pts if math.isfinite(y)]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], label=label, linewidth=1.6,
                marker="o" if len(pts) == 1 else None)
    for label, y in (hlines or {}).items():
        ax.axhline(y, linestyle="--", color="0.4", linewidth=1)
        ax.annotate(label, (1, y), xycoords=("axes fraction", "data"), xytext=(-4, 4),
                    textcoords="offset points", ha="right", color="0.3", fontsize=9)
    ax.set_title(title, fontsize=11)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if series:
        ax.legend(fontsize=9)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    path = Path(path)
    return atomic_write(path, lambda tmp: tmp.write_bytes(buf.getvalue()))


def random_affine(x: torch.Tensor, rng: torch.Generator, degrees: float = 15.0, scale: float = 0.1,
                  shear: float = 0.15, translate_px: float = 2.0) -> torch.Tensor:
    """Each image of ``(N, C, H, W)`` rotated by up to ``degrees``, scaled by 1 +- ``scale``, sheared
    by up to ``shear`` and shifted by up to ``translate_px`` pixels, all drawn uniformly from ``rng``
    (bilinear, zero fill outside the image: for dark backgrounds such as MNIST and sprites).
    Differentiable in ``x``. Changes style (slant, size, position), not identity.
    """
    n, _, h, w = x.shape
    u = torch.rand((5, n), generator=rng, dtype=torch.float32) * 2 - 1
    a = u[0] * math.radians(degrees)
    s = 1 + u[1] * scale
    sh = u[2] * shear
    tx, ty = u[3] * (2 * translate_px / w), u[4] * (2 * translate_px / h)
    cos, sin = torch.cos(a) / s, torch.sin(a) / s
    theta = torch.stack([torch.stack([cos, -sin + sh, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
    grid = torch.nn.functional.affine_grid(theta.to(x.device, torch.float32), [n, x.shape[1], h, w],
                                           align_corners=False)
    return torch.nn.functional.grid_sample(x.float(), grid, align_corners=False).to(x.dtype)


def random_stroke(x: torch.Tensor, rng: torch.Generator, amount: float) -> torch.Tensor:
    """Each image of ``(N, C, H, W)`` with its strokes thickened or thinned: blended towards its 3x3
    dilation (max filter) or erosion (min filter) by a fraction drawn uniformly from
    ``[-amount, amount]`` (above 0 thickens, below thins). Bright strokes on a dark background, as
    MNIST. Differentiable in ``x``. Changes the pen, not the digit.
    """
    u = (torch.rand(x.shape[0], generator=rng, dtype=torch.float32) * 2 - 1) * amount
    u = u.to(x.device).view(-1, *([1] * (x.dim() - 1)))
    xf = x.float()
    thick = torch.nn.functional.max_pool2d(xf, 3, stride=1, padding=1)
    thin = -torch.nn.functional.max_pool2d(-xf, 3, stride=1, padding=1)
    return (xf + u.clamp(min=0) * (thick - xf) + (-u).clamp(min=0) * (thin - xf)).to(x.dtype)
