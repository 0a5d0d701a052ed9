"""Procedural dSprites: 2D shapes with known generative factors, rendered on demand.

dSprites (Matthey, Higgins, Hassabis & Lerchner 2017, https://github.com/deepmind/dsprites-dataset;
used in Higgins et al. 2017, "beta-VAE", and most of the disentanglement literature since) is the
full product of five independent factors over 64x64 binary images:

==============  ======  ==================================================
factor          values  grid
==============  ======  ==================================================
``shape``       3       square, ellipse, heart
``scale``       6       0.5 .. 1 (linearly)
``orientation`` 40      0 .. 2 pi, exclusive (k * 2 pi / 40)
``pos_x``       32      0 .. 1 (linearly), left to right
``pos_y``       32      0 .. 1 (linearly), top to bottom
==============  ======  ==================================================

That is 737,280 images. This module never holds them: :meth:`Sprites.render` draws any batch of
factor combinations from scratch, so any image is one call away and nothing is downloaded. The
drawing is not the DeepMind file's pixels, it is an independent rasterisation with the same factor
grid: each pixel centre is mapped into the shape's own frame (translate, rotate back, divide by the
scale) and an implicit function ``f(u, v) <= 0`` says whether it is inside:

* square: ``max(|u|, |v|) <= 1``;
* ellipse: ``u^2 + (v / 0.5)^2 <= 1`` (a 2:1 oval, long axis along the shape's u axis);
* heart: the classical implicit heart curve ``(x^2 + y^2 - 1)^3 - x^2 y^3 <= 0``, centred and
  rescaled so that its bounding box is the unit square, lobes up at orientation 0.

At scale 1 a shape's frame spans ``BASE_HALF_SIZE`` = 0.3 of the half-image (about 19 px of a 64 px
image), and the centre moves over ``[-POSITION_SPAN, POSITION_SPAN]`` = [-0.7, 0.7] of the
half-image: as in dSprites, shapes stay inside the image, except that a large shape at an extreme
position touches the border and a rotated square's corners can be cut. Pixels are 0 or 1 (float), one channel; sizes 64 (the standard) or 32 (CPU-sized).
Rendering is a pure function of the factors: the same factors always give the same pixels.

:class:`Sprites` follows :class:`genzoo_infogan.disentangle.GroundTruth` (factor names and sizes,
``categorical = (0,)`` for the shape, the two samplers and ``render``), so the disentanglement
metrics score models trained on it; :func:`load_sprites` puts one in ``ImageData.truth``.
"""

from __future__ import annotations

import math

import torch

from .data import rendered_dataset
from .errors import UserError

FACTOR_NAMES = ("shape", "scale", "orientation", "pos_x", "pos_y")
FACTOR_SIZES = (3, 6, 40, 32, 32)
SHAPES = ("square", "ellipse", "heart")
SCALES = tuple(0.5 + 0.5 * i / 5 for i in range(6))
ORIENTATIONS = tuple(2 * math.pi * i / 40 for i in range(40))
POSITIONS = tuple(i / 31 for i in range(32))

BASE_HALF_SIZE = 0.3   # half-extent of a scale-1 shape, in half-image units
POSITION_SPAN = 0.7    # centres lie in [-0.7, 0.7] half-image units
ELLIPSE_ASPECT = 0.5
# the implicit heart spans x in [-1.139, 1.139], y in [-1, 1.236]: centre it, fit it to the unit box
_HEART_HALF = 1.139
_HEART_CY = 0.118

SIZES = (32, 64)


class Sprites:
    """The dSprites factor grid, rendered at ``size`` x ``size`` (64 or 32) on demand."""

    factor_names = FACTOR_NAMES
    factor_sizes = FACTOR_SIZES
    categorical = (0,)   # shape

    def __init__(self, size: int = 64, chunk: int = 256):
        size = int(size)
        if size not in SIZES:
            raise UserError(f"sprites: size must be 32 or 64, got {size}")
        self.size = size
        self.chunk = int(chunk)
        c = (torch.arange(size, dtype=torch.float32) + 0.5) / size * 2 - 1  # pixel centres in [-1, 1]
        self._gy, self._gx = torch.meshgrid(c, c, indexing="ij")  # row = y (down), column = x (right)
        self._gx = self._gx.reshape(1, -1)
        self._gy = self._gy.reshape(1, -1)

    @property
    def num_factors(self) -> int:
        return len(FACTOR_SIZES)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (1, self.size, self.size)

    def __len__(self) -> int:
        return math.prod(FACTOR_SIZES)

    def __repr__(self) -> str:
        return f"Sprites(size={self.size})"

    # -- factors --------------------------------------------------------------------------------
    @staticmethod
    def check_factors(factors: torch.Tensor) -> torch.Tensor:
        factors = torch.as_tensor(factors)
        if factors.dim() != 2 or factors.shape[1] != len(FACTOR_SIZES):
            raise ValueError(f"factors must be (n, {len(FACTOR_SIZES)}), got {tuple(factors.shape)}")
        if factors.dtype.is_floating_point:
            raise ValueError("factors must be integer indices into the factor grid")
        factors = factors.long()
        hi = torch.tensor(FACTOR_SIZES)
        if len(factors) and ((factors < 0).any() or (factors >= hi).any()):
            raise ValueError(f"factor indices out of range; sizes are {dict(zip(FACTOR_NAMES, FACTOR_SIZES))}")
        return factors

    def sample_factors(self, n: int, rng: torch.Generator | None = None) -> torch.Tensor:
        """``(n, 5)`` long: each factor uniform over its grid, independently."""
        return torch.stack([torch.randint(0, k, (int(n),), generator=rng) for k in FACTOR_SIZES], dim=1)

    def sample_fixed(self, n: int, factor_index: int, value: int,
                     rng: torch.Generator | None = None) -> torch.Tensor:
        """``(n, 5)`` long: factor ``factor_index`` held at ``value``, the others uniform."""
        if not 0 <= int(factor_index) < len(FACTOR_SIZES):
            raise ValueError(f"factor_index must be in 0..{len(FACTOR_SIZES) - 1}, got {factor_index}")
        if not 0 <= int(value) < FACTOR_SIZES[factor_index]:
            raise ValueError(f"factor {FACTOR_NAMES[factor_index]!r} takes 0..{FACTOR_SIZES[factor_index] - 1}, "
                             f"got {value}")
        f = self.sample_factors(n, rng)
        f[:, int(factor_index)] = int(value)
        return f

    @staticmethod
    def factor_values(factors: torch.Tensor) -> torch.Tensor:
        """The factors' actual values, float64 ``(n, 5)``: shape index (0 square, 1 ellipse,
        2 heart), scale in [0.5, 1], orientation in radians, positions in [0, 1]."""
        factors = Sprites.check_factors(factors)
        f = factors.double()
        return torch.stack([f[:, 0], 0.5 + 0.5 * f[:, 1] / 5, f[:, 2] * (2 * math.pi / 40),
                            f[:, 3] / 31, f[:, 4] / 31], dim=1)

    # -- rendering ------------------------------------------------------------------------------
    def render(self, factors: torch.Tensor) -> torch.Tensor:
        """``(n, 1, size, size)`` float32 images of 0s and 1s for integer factors ``(n, 5)``."""
        factors = self.check_factors(factors)
        out = torch.empty((len(factors), 1, self.size, self.size), dtype=torch.float32)
        for i in range(0, len(factors), self.chunk):
            out[i:i + self.chunk] = self._render_chunk(factors[i:i + self.chunk])
        return out

    def _render_chunk(self, factors: torch.Tensor) -> torch.Tensor:
        vals = self.factor_values(factors)
        half = BASE_HALF_SIZE * vals[:, 1:2]
        theta = vals[:, 2:3]
        cx = (2 * vals[:, 3:4] - 1) * POSITION_SPAN
        cy = (2 * vals[:, 4:5] - 1) * POSITION_SPAN
        cos, sin = (torch.cos(theta) / half).float(), (torch.sin(theta) / half).float()
        cx, cy = cx.float(), cy.float()
        dx, dy = self._gx - cx, self._gy - cy
        u = cos * dx + sin * dy    # each pixel centre in the shape's own frame: rotated back, unscaled
        v = cos * dy - sin * dx
        inside = torch.empty(u.shape, dtype=torch.bool)
        for k in range(len(SHAPES)):
            idx = (factors[:, 0] == k).nonzero().squeeze(1)
            if len(idx):
                inside[idx] = _inside(k, u[idx], v[idx])
        return inside.float().view(-1, 1, self.size, self.size)

    def sample(self, n: int, rng: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(images, factors)`` for ``n`` factor draws."""
        f = self.sample_factors(n, rng)
        return self.render(f), f


def _inside(shape: int, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Whether points ``(u, v)`` of a shape's own frame lie inside shape ``shape``."""
    if shape == 0:
        return torch.maximum(u.abs(), v.abs()) <= 1
    if shape == 1:
        return u * u + (v / ELLIPSE_ASPECT) ** 2 <= 1
    x, y = u * _HEART_HALF, _HEART_CY - v * _HEART_HALF   # y up: the lobes at the top of the image
    x2 = x * x
    return (x2 + y * y - 1) ** 3 <= x2 * y ** 3


def load_sprites(cfg: dict):
    """The ``sprites`` dataset: ``data.limit`` (default 20,000) random grid points, seeded by
    ``data.seed`` (default 0), rendered at ``data.size`` (0 = 64; 32 or 64). The data's ``truth``
    is the :class:`Sprites` grid it was drawn from."""
    return rendered_dataset("sprites", Sprites, cfg, 64, SIZES, "procedural dSprites")


DATASETS = (
    ("sprites", load_sprites,
     "procedural dSprites: 3 shapes x 6 scales x 40 rotations x 32 x 32 positions (64x64 or 32x32)"),
)
