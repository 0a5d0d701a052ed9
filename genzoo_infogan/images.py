"""Pictures: image grids (samples, traversals) and line plots (L_I over steps), as PNG files.

Plots are drawn with Pillow (a torchvision dependency), so no plotting library is needed.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping, Sequence

import torch

PALETTE = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (255, 127, 14), (148, 103, 189),
           (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]


def save_grid(images: torch.Tensor, path: str | Path, nrow: int, scale: int = 1) -> Path:
    """Save ``(N, C, H, W)`` images in [0, 1] as a grid of ``nrow`` columns (atomic write)."""
    from PIL import Image
    from torchvision.utils import make_grid

    grid = make_grid(images.detach().float().cpu().clamp(0, 1), nrow=nrow, padding=2, pad_value=1.0)
    arr = (grid.permute(1, 2, 0).numpy() * 255).round().astype("uint8")
    im = Image.fromarray(arr if arr.shape[2] == 3 else arr[:, :, 0])
    if scale > 1:
        im = im.resize((im.width * scale, im.height * scale), Image.NEAREST)
    return _save(im, Path(path))


def _save(im, path: Path) -> Path:
    from .checkpoint import atomic_write

    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, lambda tmp: im.save(tmp, format="PNG"))


def line_plot(series: Mapping[str, Sequence[tuple[float, float]]], path: str | Path, title: str = "",
              xlabel: str = "step", ylabel: str = "", hlines: Mapping[str, float] | None = None,
              size: tuple[int, int] = (720, 440)) -> Path:
    """A small line chart: ``series`` maps a label to ``[(x, y), ...]``; ``hlines`` adds dashed
    reference lines (e.g. ``{"H(c) = ln 10": 2.303}``)."""
    from PIL import Image, ImageDraw

    W, H = size
    left, right, top, bottom = 64, 180, 36, 48
    im = Image.new("RGB", (W, H), "white")
    dr = ImageDraw.Draw(im)
    pts = [p for s in series.values() for p in s if math.isfinite(p[1])]
    ys = [p[1] for p in pts] + list((hlines or {}).values())
    xs = [p[0] for p in pts]
    x0, x1 = (min(xs), max(xs)) if xs else (0.0, 1.0)
    y0, y1 = (min(ys), max(ys)) if ys else (0.0, 1.0)
    if x1 == x0:
        x1 = x0 + 1
    pad = 0.05 * (y1 - y0 or 1.0)
    y0, y1 = y0 - pad, y1 + pad

    def px(x, y):
        return (left + (x - x0) / (x1 - x0) * (W - left - right),
                H - bottom - (y - y0) / (y1 - y0) * (H - top - bottom))

    dr.rectangle([left, top, W - right, H - bottom], outline=(0, 0, 0))
    for i in range(6):  # ticks
        y = y0 + (y1 - y0) * i / 5
        _, py = px(x0, y)
        dr.line([left - 4, py, left, py], fill=(0, 0, 0))
        dr.text((4, py - 6), f"{y:.2f}", fill=(0, 0, 0))
        x = x0 + (x1 - x0) * i / 5
        qx, _ = px(x, y0)
        dr.line([qx, H - bottom, qx, H - bottom + 4], fill=(0, 0, 0))
        dr.text((qx - 12, H - bottom + 8), f"{x:g}", fill=(0, 0, 0))
    for label, yv in (hlines or {}).items():
        _, py = px(x0, yv)
        for sx in range(left, W - right, 12):
            dr.line([sx, py, min(sx + 6, W - right), py], fill=(90, 90, 90))
        dr.text((W - right + 8, py - 6), label, fill=(90, 90, 90))
    ly = top + 40
    for i, (label, s) in enumerate(series.items()):
        color = PALETTE[i % len(PALETTE)]
        line = [px(x, y) for x, y in s if math.isfinite(y)]
        if len(line) > 1:
            dr.line(line, fill=color, width=2)
        elif line:
            dr.ellipse([line[0][0] - 2, line[0][1] - 2, line[0][0] + 2, line[0][1] + 2], fill=color)
        dr.line([W - right + 8, ly + 6, W - right + 28, ly + 6], fill=color, width=3)
        dr.text((W - right + 32, ly), label[:22], fill=(0, 0, 0))
        ly += 18
    dr.text((left, 10), title, fill=(0, 0, 0))
    dr.text(((left + W - right) / 2 - 10, H - 18), xlabel, fill=(0, 0, 0))
    dr.text((4, 10), ylabel, fill=(0, 0, 0))
    return _save(im, Path(path))


def random_affine(x: torch.Tensor, gen: torch.Generator, degrees: float = 15.0, scale: float = 0.1,
                  shear: float = 0.15, translate_px: float = 2.0) -> torch.Tensor:
    """Each image of ``(N, C, H, W)`` rotated by up to ``degrees``, scaled by 1 +- ``scale``, sheared
    by up to ``shear`` and shifted by up to ``translate_px`` pixels, all drawn uniformly from ``gen``
    (bilinear, zero fill outside the image: for dark backgrounds such as MNIST and sprites).
    Differentiable in ``x``. Changes style (slant, size, position), not identity.
    """
    n, _, h, w = x.shape
    u = torch.rand((5, n), generator=gen, dtype=torch.float32) * 2 - 1
    a = u[0] * math.radians(degrees)
    s = 1 + u[1] * scale
    sh = u[2] * shear
    tx, ty = u[3] * (2 * translate_px / w), u[4] * (2 * translate_px / h)
    cos, sin = torch.cos(a) / s, torch.sin(a) / s
    theta = torch.stack([torch.stack([cos, -sin + sh, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
    grid = torch.nn.functional.affine_grid(theta.to(x.device, torch.float32), [n, x.shape[1], h, w],
                                           align_corners=False)
    return torch.nn.functional.grid_sample(x.float(), grid, align_corners=False).to(x.dtype)
