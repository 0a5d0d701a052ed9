"""Procedural 3D data sets with known factors: ``heads3d`` and ``chairs3d``, ray-cast in torch.

The second half of the InfoGAN paper (Chen et al. 2016, section 7.3, figures 3 and 4) is 3D:
on rendered faces (Paysan et al. 2009) five continuous codes found azimuth (pose), elevation,
lighting and width; on rendered chairs (Aubry et al. 2014) codes found rotation and width. Neither
data set can be had offline, so this module draws stand-ins whose factors are known exactly, on
demand, from the factor values alone (nothing is downloaded, no new dependency):

* ``heads3d``: a head made of ellipsoids (skull, face, chin, neck, hair, ears, brow, nose, eyes,
  mouth); the face has a nose, a brow and dark eyes, the back of the skull dark hair, so the
  pose can be read at 32x32.
* ``chairs3d``: chairs made of boxes (seat, back, legs, arms, a pedestal), in four styles.

How it is drawn. Every part is an analytic solid: an ellipsoid ``|M (y - c)| <= 1`` or an
axis-aligned box, in the object's own frame. The camera is orthographic, looking down the world
``-z`` axis; each pixel's ray is carried into the object's frame (the inverse of the object's
pose, and of the width stretch) and intersected with every part in closed form (the quadratic for
an ellipsoid, the slab test for a box), the nearest hit wins (a z-buffer over the parts). A hit is
shaded Lambertian: ``albedo * (ambient + (1 - ambient) * max(0, n . l))`` with one directional
light ``l`` and ambient 0.2; the background is 0 (black, like sprites, so the zero fill of
translations and affine augmentations is background). Images are rendered at twice their size
and averaged down 2x2 (four rays a pixel), so edges are anti-aliased and a small change of a
factor changes the image a little. Grey, one channel, 32x32 (the paper's faces; CPU-sized) or
64x64 (the paper's chairs).
Rendering is a pure function of the factor indices: the per-pixel arithmetic is elementwise
float32 with no reductions across pixels or images, so the same factors give the same pixels in
any batch.

Factors are integer indices into a grid, as in :mod:`~genzoo_infogan.sprites`
(:meth:`factor_values` gives the physical values):

``heads3d`` (19 x 7 x 9 x 7 = 8,379 images)

==============  ======  =============================================================
factor          values  grid
==============  ======  =============================================================
``azimuth``     19      -90 .. 90 degrees (10 degree steps): the head turns about its
                        vertical axis, 0 = facing the camera, + = to the viewer's right
``elevation``   7       -30 .. 30 degrees (10 degree steps): the head tilted back
                        (seen from below, -) or forward (seen from above, +)
``lighting``    9       light azimuth -80 .. 80 degrees (20 degree steps), 15 degrees above
                        the horizon, in the camera's frame: lit from the left .. right
``width``       7       0.8 .. 1.25 (linearly): the head stretched left-right
==============  ======  =============================================================

``chairs3d`` (4 x 19 x 6 x 6 = 2,736 images)

==============  ======  =============================================================
factor          values  grid
==============  ======  =============================================================
``style``       4       0 dining chair (four legs, solid back), 1 ladder-back (posts and
                        rails), 2 armchair (solid sides and arms), 3 swivel chair
                        (pedestal on a cross base) -- categorical
``azimuth``     19      -90 .. 90 degrees (10 degree steps), 0 = seen from the front
``back_height`` 6       0.5 .. 1.1 (linearly), above the seat
``width``       6       seat width 0.6 .. 1.2 (linearly)
==============  ======  =============================================================

The chairs are seen from 20 degrees above (as in Aubry et al.'s lower elevation) under a fixed
light from the upper left.

*Why chairs turn half a turn, not a full one.* The chairs of the paper turn all the way round
(31 azimuths over 360 degrees), but a continuous InfoGAN code is an interval, Uniform(-1, 1), and
a full turn is a circle: a generator continuous in its code cannot sweep a circle with one code
without tearing it somewhere, so on a full turn a code can at best follow an arc and the score
would measure where the tear falls rather than whether rotation was learned. Half a turn, from
one side view through the front view to the other, is an interval that a single code can follow
end to end, every view in it is distinct (the back is behind the seat at every azimuth, so no
view from the front repeats one from behind), and it is the same range as the heads' azimuth,
so the two data sets' figures read alike.

The grids are small (8,379 heads, 2,736 chairs), so :meth:`render` keeps a rendered copy of the
whole grid once a request asks for more than an eighth of it (the loaders' 20,000 images do), and
every later request, the metrics' hundred thousand images included, is a lookup. Times on one
thread of a shared 2-core machine: the 20,000-image ``heads3d`` set at 32x32 in 15 s, ``chairs3d``
in 6 s; at 64x64 the grids take about 80 s and 25 s (docs/experiments/3d.md).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .data import rendered_dataset
from .errors import UserError
from .images import save_grid

SIZES = (32, 64)
AMBIENT = 0.2
SUPERSAMPLE = 2
CAMERA_Z = 10.0


def _linspace(lo: float, hi: float, n: int) -> tuple[float, ...]:
    return tuple(lo + (hi - lo) * i / (n - 1) for i in range(n))


# -- small float64 3x3 algebra, elementwise (no batched matmul: the same result in any batch) --------
def _rot_x(a: torch.Tensor) -> torch.Tensor:
    c, s, o, z = torch.cos(a), torch.sin(a), torch.ones_like(a), torch.zeros_like(a)
    return torch.stack([torch.stack([o, z, z], -1), torch.stack([z, c, -s], -1), torch.stack([z, s, c], -1)], -2)


def _rot_y(a: torch.Tensor) -> torch.Tensor:
    c, s, o, z = torch.cos(a), torch.sin(a), torch.ones_like(a), torch.zeros_like(a)
    return torch.stack([torch.stack([c, z, s], -1), torch.stack([z, o, z], -1), torch.stack([-s, z, c], -1)], -2)


def _mm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a @ b`` for (..., 3, 3) matrices, written out term by term."""
    return (a[..., :, 0, None] * b[..., None, 0, :] + a[..., :, 1, None] * b[..., None, 1, :]
            + a[..., :, 2, None] * b[..., None, 2, :])


def _mv(a: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``a @ v`` for (..., 3, 3) matrices and (..., 3) vectors."""
    return a[..., 0] * v[..., 0, None] + a[..., 1] * v[..., 1, None] + a[..., 2] * v[..., 2, None]


def _shade(nx, ny, nz, light, albedo):
    """Lambert with ambient for (unnormalised) normals ``n`` (B, P) and a unit light (B, 3)."""
    norm = torch.sqrt(nx * nx + ny * ny + nz * nz).clamp_min(1e-12)
    cos = (nx * light[:, 0:1] + ny * light[:, 1:2] + nz * light[:, 2:3]) / norm
    return albedo * (AMBIENT + (1 - AMBIENT) * cos.clamp_min(0.0))


# -- the factor grid, shared -----------------------------------------------------------------------
class _Scene:
    """A factor grid rendered at ``size`` x ``size`` on demand (see the module doc)."""

    name = ""
    factor_names: tuple[str, ...] = ()
    factor_sizes: tuple[int, ...] = ()
    categorical: tuple[int, ...] = ()
    grids: tuple[tuple[float, ...], ...] = ()
    view_half = 1.0               # half the image's side, in object units
    view_centre = (0.0, 0.0)      # the image centre, in object units (x, y)
    sweep_base: tuple[int, ...] = ()   # the other factors' values in a picture of the grid

    def __init__(self, size: int = 32, chunk: int = 256, cache: bool = True):
        size = int(size)
        if size not in SIZES:
            raise UserError(f"{self.name}: size must be 32 or 64, got {size}")
        self.size = size
        self.chunk = int(chunk)
        self.cache = bool(cache)
        self._table: torch.Tensor | None = None
        n = size * SUPERSAMPLE
        c = (torch.arange(n, dtype=torch.float64) + 0.5) / n * 2 - 1
        gy, gx = torch.meshgrid(-c, c, indexing="ij")   # row 0 at the top: y up
        self._ox = (gx * self.view_half + self.view_centre[0]).float().reshape(1, -1)
        self._oy = (gy * self.view_half + self.view_centre[1]).float().reshape(1, -1)

    @property
    def num_factors(self) -> int:
        return len(self.factor_sizes)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (1, self.size, self.size)

    def __len__(self) -> int:
        return math.prod(self.factor_sizes)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={self.size})"

    # -- factors ----------------------------------------------------------------------------------
    def check_factors(self, factors: torch.Tensor) -> torch.Tensor:
        factors = torch.as_tensor(factors)
        nf = len(self.factor_sizes)
        if factors.dim() != 2 or factors.shape[1] != nf:
            raise ValueError(f"factors must be (n, {nf}), got {tuple(factors.shape)}")
        if factors.dtype.is_floating_point:
            raise ValueError("factors must be integer indices into the factor grid")
        factors = factors.long()
        if len(factors) and ((factors < 0).any() or (factors >= torch.tensor(self.factor_sizes)).any()):
            raise ValueError(f"factor indices out of range; sizes are "
                             f"{dict(zip(self.factor_names, self.factor_sizes))}")
        return factors

    def sample_factors(self, n: int, rng: torch.Generator | None = None) -> torch.Tensor:
        """``(n, F)`` long: each factor uniform over its grid, independently."""
        return torch.stack([torch.randint(0, k, (int(n),), generator=rng) for k in self.factor_sizes], dim=1)

    def sample_fixed(self, n: int, factor_index: int, value: int,
                     rng: torch.Generator | None = None) -> torch.Tensor:
        """``(n, F)`` long: factor ``factor_index`` held at ``value``, the others uniform."""
        nf = len(self.factor_sizes)
        if not 0 <= int(factor_index) < nf:
            raise ValueError(f"factor_index must be in 0..{nf - 1}, got {factor_index}")
        k = int(factor_index)
        if not 0 <= int(value) < self.factor_sizes[k]:
            raise ValueError(f"factor {self.factor_names[k]!r} takes 0..{self.factor_sizes[k] - 1}, got {value}")
        f = self.sample_factors(n, rng)
        f[:, k] = int(value)
        return f

    def factor_values(self, factors: torch.Tensor) -> torch.Tensor:
        """The factors' values, float64 ``(n, F)`` (angles in degrees; see the module doc)."""
        factors = self.check_factors(factors)
        return torch.stack([torch.tensor(g, dtype=torch.float64)[factors[:, k]] for k, g in enumerate(self.grids)],
                           dim=1) if len(factors) else torch.zeros((0, len(self.grids)), dtype=torch.float64)

    def sweep(self, base: list[int] | None = None) -> torch.Tensor:
        """Factors for a picture of the grid: one row per factor, that factor swept over its
        values (up to the longest factor's length; shorter rows repeat values), the others at
        ``base`` (default: the class's ``sweep_base``)."""
        base = list(self.sweep_base or [k // 2 for k in self.factor_sizes]) if base is None else list(base)
        cols = max(self.factor_sizes)
        rows = []
        for k, n in enumerate(self.factor_sizes):
            f = torch.tensor([base] * cols, dtype=torch.long)
            f[:, k] = torch.clamp(torch.round(torch.arange(cols) * (n - 1) / (cols - 1)).long(), 0, n - 1)
            rows.append(f)
        return torch.cat(rows)

    def all_factors(self) -> torch.Tensor:
        """Every point of the grid, ``(len(self), F)``, in row-major order (the last factor fastest)."""
        axes = torch.meshgrid(*[torch.arange(k) for k in self.factor_sizes], indexing="ij")
        return torch.stack([a.reshape(-1) for a in axes], dim=1)

    def grid_index(self, factors: torch.Tensor) -> torch.Tensor:
        """Each row's position in :meth:`all_factors`."""
        factors = self.check_factors(factors)
        flat = torch.zeros(len(factors), dtype=torch.long)
        for k, n in enumerate(self.factor_sizes):
            flat = flat * n + factors[:, k]
        return flat

    # -- rendering --------------------------------------------------------------------------------
    def render(self, factors: torch.Tensor) -> torch.Tensor:
        """``(n, 1, size, size)`` float32 images in [0, 1] for integer factors ``(n, F)``.

        With ``cache`` on (the default), a request for more than an eighth of the grid renders the
        whole grid once and keeps it (heads3d: 8,379 images, 34 MB at 32x32, 137 MB at 64x64);
        from then on every request is a lookup. The pixels are the same either way."""
        factors = self.check_factors(factors)
        if self.cache and (self._table is not None or len(factors) > len(self) // 8):
            if self._table is None:
                self._table = self._render(self.all_factors())
            return self._table[self.grid_index(factors)]
        return self._render(factors)

    def _render(self, factors: torch.Tensor) -> torch.Tensor:
        out = torch.empty((len(factors), 1, self.size, self.size), dtype=torch.float32)
        n = self.size * SUPERSAMPLE
        for i in range(0, len(factors), self.chunk):
            f = factors[i:i + self.chunk]
            big = self._render_chunk(f, self.factor_values(f)).view(-1, 1, n, n)
            out[i:i + self.chunk] = F.avg_pool2d(big, SUPERSAMPLE)
        return out.clamp_(0.0, 1.0)

    def sample(self, n: int, rng: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(images, factors)`` for ``n`` factor draws."""
        f = self.sample_factors(n, rng)
        return self.render(f), f

    def _render_chunk(self, factors: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    # -- ray casting (float32, elementwise) -------------------------------------------------------
    def _rays(self, q: torch.Tensor):
        """Each pixel's ray in the object's frame, for object-from-world maps ``q`` (B, 3, 3):
        origins (3 tensors (B, P)) and the direction (3 tensors (B, 1)); world rays start at
        ``z = CAMERA_Z`` and go down ``-z``."""
        qf = q.float()
        o = [qf[:, k, 0:1] * self._ox + qf[:, k, 1:2] * self._oy + qf[:, k, 2:3] * CAMERA_Z for k in range(3)]
        d = [-qf[:, k, 2:3] for k in range(3)]
        return o, d


def _ellipsoid_hit(o, d):
    """Nearest ``t`` (inf on a miss) where ray ``o + t d`` (in the unit sphere's frame) meets the
    unit sphere, and the hit point."""
    a = d[0] * d[0] + d[1] * d[1] + d[2] * d[2]
    b = o[0] * d[0] + o[1] * d[1] + o[2] * d[2]
    c = o[0] * o[0] + o[1] * o[1] + o[2] * o[2] - 1.0
    disc = b * b - a * c
    t = (-b - torch.sqrt(disc.clamp_min(0.0))) / a
    t = torch.where(disc >= 0, t, torch.full_like(t, math.inf))
    return t, [o[k] + t.clamp(max=1e6) * d[k] for k in range(3)]


def _box_hit(o, d, lo, hi):
    """Nearest ``t`` (inf on a miss) where rays ``o + t d`` meet the boxes ``[lo, hi]`` (per image,
    (B, 1) each axis), and the index of the face's axis (0, 1, 2) with its outward sign."""
    tnear = tfar = None
    axis = None
    sign = None
    for k in range(3):
        dk = torch.where(d[k].abs() < 1e-7, torch.full_like(d[k], 1e-7), d[k])
        inv = 1.0 / dk
        t1 = (lo[k] - o[k]) * inv
        t2 = (hi[k] - o[k]) * inv
        tmin, tmax = torch.minimum(t1, t2), torch.maximum(t1, t2)
        s = torch.where(dk > 0, -1.0, 1.0).expand_as(tmin)   # the face met first faces against the ray
        if tnear is None:
            tnear, tfar, axis, sign = tmin, tmax, torch.zeros_like(tmin, dtype=torch.long), s
        else:
            better = tmin > tnear
            axis = torch.where(better, k, axis)
            sign = torch.where(better, s, sign)
            tnear = torch.maximum(tnear, tmin)
            tfar = torch.minimum(tfar, tmax)
    t = torch.where((tnear <= tfar) & (tfar > 0), tnear, torch.full_like(tnear, math.inf))
    return t, axis, sign


# -- heads -----------------------------------------------------------------------------------------
SKIN, HAIR, EYE, LIP = 0.92, 0.38, 0.12, 0.5

# (centre (x, y, z), radii (x, y, z), tilt about x in degrees, albedo), in the head's frame:
# x to the head's left (the viewer's right when it faces the camera), y up, z out of the face.
HEAD_PARTS = (
    ((0.0, 0.15, -0.16), (0.52, 0.62, 0.66), 0.0, SKIN),       # skull
    ((0.0, 0.27, -0.22), (0.545, 0.60, 0.66), -10.0, HAIR),    # hair: over the top and the back
    ((0.0, -0.20, 0.04), (0.42, 0.50, 0.50), 0.0, SKIN),       # face and jaw
    ((0.0, -0.56, 0.22), (0.20, 0.15, 0.20), 0.0, SKIN),       # chin
    ((0.0, -0.86, -0.18), (0.24, 0.42, 0.24), 0.0, SKIN),      # neck
    ((0.52, -0.05, -0.12), (0.07, 0.17, 0.11), 0.0, SKIN),     # left ear
    ((-0.52, -0.05, -0.12), (0.07, 0.17, 0.11), 0.0, SKIN),    # right ear
    ((0.0, 0.11, 0.40), (0.34, 0.06, 0.14), 0.0, SKIN),        # brow ridge
    ((0.0, -0.13, 0.58), (0.08, 0.20, 0.15), -20.0, SKIN),     # nose, tip out
    ((0.18, 0.0, 0.46), (0.07, 0.05, 0.05), 0.0, EYE),         # left eye
    ((-0.18, 0.0, 0.46), (0.07, 0.05, 0.05), 0.0, EYE),        # right eye
    ((0.0, -0.40, 0.50), (0.13, 0.028, 0.05), 0.0, LIP),       # mouth
)
HEAD_LIGHT_ELEVATION = 15.0


class Heads3D(_Scene):
    """``heads3d``: a head of ellipsoids; factors azimuth, elevation, lighting, width."""

    name = "heads3d"
    factor_names = ("azimuth", "elevation", "lighting", "width")
    factor_sizes = (19, 7, 9, 7)
    categorical = ()
    grids = (_linspace(-90, 90, 19), _linspace(-30, 30, 7), _linspace(-80, 80, 9), _linspace(0.8, 1.25, 7))
    view_half = 1.1
    view_centre = (0.0, -0.12)
    sweep_base = (9, 3, 2, 3)    # facing the camera, level, lit from 40 degrees left, width 1.025

    def __init__(self, size: int = 32, chunk: int = 32, cache: bool = True):
        super().__init__(size, chunk, cache)
        mats, offs, albedo = [], [], []
        for centre, radii, tilt, alb in HEAD_PARTS:
            # unit-sphere coordinates u = M (y - c), M = diag(1 / r) R_x(tilt)^T
            r = _rot_x(torch.tensor(math.radians(tilt), dtype=torch.float64))
            m = torch.diag(1.0 / torch.tensor(radii, dtype=torch.float64)) @ r.T
            mats.append(m)
            offs.append(m @ torch.tensor(centre, dtype=torch.float64))
            albedo.append(alb)
        self._m = torch.stack(mats)           # (P, 3, 3)
        self._e = torch.stack(offs)           # (P, 3)
        self._albedo = albedo

    def _render_chunk(self, factors: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        az, el = torch.deg2rad(values[:, 0]), torch.deg2rad(values[:, 1])
        light_az, width = torch.deg2rad(values[:, 2]), values[:, 3]
        b, nparts = len(values), len(self._albedo)
        # the head's pose: turn by the azimuth about its vertical axis, then tilt by the elevation
        q = _mm(_rot_x(el), _rot_y(az)).transpose(1, 2)      # head from world
        q = q * torch.stack([1.0 / width, torch.ones_like(width), torch.ones_like(width)], 1)[:, :, None]
        a = _mm(self._m[None], q[:, None])                    # unit sphere from world, (B, P, 3, 3)
        e = self._e[None].expand(b, nparts, 3)
        # A pixel's ray is X(t) = (x, y, 0) - t (0, 0, 1) (orthographic: its origin on the plane z = 0),
        # u(t) = A X(t) - e = al x + be y + ga + t de. |u|^2 = 1 is a quadratic in t whose
        # coefficients are polynomials in (x, y): fitted here per image and part in float64, so
        # the per-pixel work is a handful of multiply-adds.
        al, be, de, ga = a[..., 0], a[..., 1], -a[..., 2], -e
        qa = (de * de).sum(-1)                                # (B, P)
        p1, p2, p0 = (al * de).sum(-1), (be * de).sum(-1), (ga * de).sum(-1)
        # disc = (u0 . de)^2 - qa (|u0|^2 - 1), u0 = al x + be y + ga
        kxx = p1 * p1 - qa * (al * al).sum(-1)
        kxy = 2 * (p1 * p2 - qa * (al * be).sum(-1))
        kyy = p2 * p2 - qa * (be * be).sum(-1)
        kx = 2 * (p0 * p1 - qa * (al * ga).sum(-1))
        ky = 2 * (p0 * p2 - qa * (be * ga).sum(-1))
        k0 = p0 * p0 - qa * ((ga * ga).sum(-1) - 1)
        coef = torch.stack([kxx, kxy, kyy, kx, ky, k0, p1, p2, p0, 1.0 / qa], -1).float()   # (B, P, 10)
        x, y = self._ox, self._oy
        xx, xy, yy = x * x, x * y, y * y
        best = torch.full((b, x.shape[1]), math.inf)
        part = torch.zeros(best.shape, dtype=torch.long)
        for p in range(nparts):
            c = [coef[:, p, j:j + 1] for j in range(10)]
            disc = c[0] * xx + c[1] * xy + c[2] * yy + c[3] * x + c[4] * y + c[5]
            bq = c[6] * x + c[7] * y + c[8]
            t = -(bq + torch.sqrt(disc.clamp_min(0.0))) * c[9]
            t = torch.where(disc >= 0, t, math.inf)
            closer = t < best
            best = torch.where(closer, t, best)
            part = torch.where(closer, p, part)
        # shade the nearest part: its normal at X is grad |A X - e|^2 / 2 = A^T A X - A^T e
        at = a.transpose(-1, -2)
        g = _mm(at, a)                                        # (B, P, 3, 3), symmetric
        h = _mv(at, e)                                        # (B, P, 3)
        le = math.radians(HEAD_LIGHT_ELEVATION)
        light = torch.stack([torch.sin(light_az) * math.cos(le), torch.full_like(light_az, math.sin(le)),
                             torch.cos(light_az) * math.cos(le)], dim=1)
        albedo = torch.tensor(self._albedo, dtype=torch.float64).expand(b, nparts)
        params = torch.cat([g.reshape(b, nparts, 9), h, albedo[..., None]], -1).float()   # (B, P, 13)
        pick = [torch.gather(params[:, :, j], 1, part) for j in range(13)]
        z = -best.clamp(-1e6, 1e6)
        n = [pick[3 * i] * x + pick[3 * i + 1] * y + pick[3 * i + 2] * z - pick[9 + i] for i in range(3)]
        img = _shade(*n, light.float(), pick[12])
        return torch.where(torch.isfinite(best), img, 0.0)


# -- chairs ----------------------------------------------------------------------------------------
CHAIR_STYLES = ("dining", "ladder-back", "armchair", "swivel")
CHAIR_ELEVATION = 20.0
CHAIR_LIGHT = (-0.45, 0.65, 0.62)   # from the upper left, in the camera's frame
CHAIR_ALBEDO = 0.85
SEAT_TOP = -0.12
FLOOR = -1.0
SEAT_DEPTH = 0.44          # half-depth
LEG = 0.045                # half-thickness of legs and posts


def _box(cx, cy, cz, hx, hy, hz):
    """A box as (B, 6): centre and half-extents; each argument a (B,) tensor or a float."""
    parts = torch.broadcast_tensors(*[torch.as_tensor(v, dtype=torch.float64) for v in (cx, cy, cz, hx, hy, hz)])
    return torch.stack(parts, dim=-1)


def chair_boxes(style: int, back: torch.Tensor, width: torch.Tensor) -> torch.Tensor:
    """The boxes of chairs of one ``style`` with back heights and seat widths (B,): (B, K, 6),
    each box its centre and half-extents in the chair's frame (x across, y up, z to the front;
    the floor at y = -1, the seat's top at y = -0.12)."""
    w = width / 2                                       # the seat's half-width
    top = SEAT_TOP + back                               # the back's top
    seat_t = 0.05
    seat_y = SEAT_TOP - seat_t
    leg_h = (seat_y - seat_t - FLOOR) / 2
    leg_y = FLOOR + leg_h
    zb = -SEAT_DEPTH + LEG                              # z of the rear legs and posts
    zf = SEAT_DEPTH - LEG
    boxes = []
    if style == 0:   # dining chair: four legs, a solid back panel
        boxes.append(_box(0, seat_y, 0, w, seat_t, SEAT_DEPTH))
        boxes.append(_box(0, (SEAT_TOP + top) / 2, -SEAT_DEPTH + 0.035, w, (top - SEAT_TOP) / 2, 0.035))
        for sx in (-1, 1):
            for z in (zb, zf):
                boxes.append(_box(sx * (w - LEG), leg_y, z, LEG, leg_h, LEG))
    elif style == 1:   # ladder-back: rear legs run up into posts, three rails between them
        boxes.append(_box(0, seat_y, 0, w, seat_t, SEAT_DEPTH))
        post_h = (top - FLOOR) / 2
        for sx in (-1, 1):
            boxes.append(_box(sx * (w - LEG), FLOOR + post_h, zb, LEG, post_h, LEG))
            boxes.append(_box(sx * (w - LEG), leg_y, zf, LEG, leg_h, LEG))
        for frac in (0.35, 0.65, 0.93):
            y = SEAT_TOP + frac * (top - SEAT_TOP)
            boxes.append(_box(0, y, zb, w - LEG, 0.04, 0.025))
    elif style == 2:   # armchair: a thick seat, solid sides up to the arms, a thick back
        side = 0.09
        arm_y = SEAT_TOP + 0.28
        boxes.append(_box(0, (SEAT_TOP + FLOOR + 0.08) / 2, 0.02, w, (SEAT_TOP - FLOOR - 0.08) / 2,
                          SEAT_DEPTH - 0.02))
        for sx in (-1, 1):
            boxes.append(_box(sx * (w + side), (arm_y + FLOOR) / 2, 0.0, side, (arm_y - FLOOR) / 2, SEAT_DEPTH))
        boxes.append(_box(0, (FLOOR + top) / 2, -SEAT_DEPTH - 0.06, w + 2 * side, (top - FLOOR) / 2, 0.09))
    elif style == 3:   # swivel chair: seat and back on a column over a cross-shaped base
        boxes.append(_box(0, seat_y, 0, w, seat_t + 0.02, SEAT_DEPTH))
        boxes.append(_box(0, (SEAT_TOP + 0.12 + top) / 2, -SEAT_DEPTH + 0.04, w * 0.92,
                          (top - SEAT_TOP - 0.12) / 2, 0.04))
        boxes.append(_box(0, SEAT_TOP + 0.06, -SEAT_DEPTH + 0.04, 0.06, 0.1, 0.03))   # the back's stem
        col_h = (seat_y - seat_t - (FLOOR + 0.12)) / 2
        boxes.append(_box(0, FLOOR + 0.12 + col_h, 0, 0.05, col_h, 0.05))
        boxes.append(_box(0, FLOOR + 0.06, 0, 0.46, 0.035, 0.045))
        boxes.append(_box(0, FLOOR + 0.06, 0, 0.045, 0.035, 0.46))
    else:
        raise ValueError(f"chair style must be 0..{len(CHAIR_STYLES) - 1}, got {style}")
    return torch.stack([bx.expand(len(width), 6) for bx in boxes], dim=1)


class Chairs3D(_Scene):
    """``chairs3d``: chairs of boxes; factors style, azimuth, back height, width."""

    name = "chairs3d"
    factor_names = ("style", "azimuth", "back_height", "width")
    factor_sizes = (4, 19, 6, 6)
    categorical = (0,)
    grids = (tuple(float(i) for i in range(4)), _linspace(-90, 90, 19), _linspace(0.5, 1.1, 6),
             _linspace(0.6, 1.2, 6))
    view_half = 1.15
    view_centre = (0.0, 0.0)
    sweep_base = (0, 5, 3, 3)    # a dining chair seen from 40 degrees to its right, back 0.86, width 0.96

    def __init__(self, size: int = 32, chunk: int = 64, cache: bool = True):
        super().__init__(size, chunk, cache)

    def _render_chunk(self, factors: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        b = len(values)
        az = torch.deg2rad(values[:, 1])
        pose = _mm(_rot_x(torch.full_like(az, math.radians(CHAIR_ELEVATION))), _rot_y(az))
        q = pose.transpose(1, 2)                              # chair from world
        o, d = self._rays(q)
        light = torch.tensor(CHAIR_LIGHT, dtype=torch.float64)
        light = light / light.norm()
        light_obj = _mv(q, light.expand(b, 3)).float()        # the light in the chair's frame
        best = torch.full((b, self._ox.shape[1]), math.inf)
        img = torch.zeros_like(best)
        for s in range(len(CHAIR_STYLES)):
            idx = (factors[:, 0] == s).nonzero().squeeze(1)
            if not len(idx):
                continue
            boxes = chair_boxes(s, values[idx, 2], values[idx, 3]).float()
            oi, di, li = [v[idx] for v in o], [v[idx] for v in d], light_obj[idx]
            bi, ii = best[idx], img[idx]
            for j in range(boxes.shape[1]):
                c, h = boxes[:, j, :3], boxes[:, j, 3:]
                lo = [(c[:, k] - h[:, k])[:, None] for k in range(3)]
                hi = [(c[:, k] + h[:, k])[:, None] for k in range(3)]
                t, axis, sign = _box_hit(oi, di, lo, hi)
                cos = torch.where(axis == 0, li[:, 0:1], torch.where(axis == 1, li[:, 1:2], li[:, 2:3])) * sign
                shade = CHAIR_ALBEDO * (AMBIENT + (1 - AMBIENT) * cos.clamp_min(0.0))
                closer = t < bi
                bi = torch.where(closer, t, bi)
                ii = torch.where(closer, shade, ii)
            best[idx], img[idx] = bi, ii
        return img


def save_factor_picture(truth: _Scene, path, scale: int = 2):
    """A picture of the grid (:meth:`_Scene.sweep`): one row per factor, that factor swept across."""
    return save_grid(truth.render(truth.sweep()), path, nrow=max(truth.factor_sizes), scale=scale)


# -- the data sets ---------------------------------------------------------------------------------
def _load(cls, cfg: dict):
    return rendered_dataset(cls.name, cls, cfg, 32, SIZES, f"procedural {cls.name}")


def load_heads3d(cfg: dict):
    """The ``heads3d`` dataset: ``data.limit`` (default 20,000) random grid points, seeded by
    ``data.seed`` (default 0), rendered at ``data.size`` (0 = 32; 32 or 64)."""
    return _load(Heads3D, cfg)


def load_chairs3d(cfg: dict):
    """The ``chairs3d`` dataset: as :func:`load_heads3d`, for chairs."""
    return _load(Chairs3D, cfg)


DATASETS = (
    ("heads3d", load_heads3d,
     "procedural 3D heads: 19 azimuths x 7 elevations x 9 light directions x 7 widths (32x32 or 64x64)"),
    ("chairs3d", load_chairs3d,
     "procedural 3D chairs: 4 styles x 19 azimuths (half a turn) x 6 back heights x 6 widths (32x32 or 64x64)"),
)
