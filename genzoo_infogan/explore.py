"""``genzoo explore``: a local web page to turn a model's codes by hand (Starlette + uvicorn).

:func:`make_app` wraps a loaded model (anything with ``codes``, ``sample``, ``traverse`` and,
to read images, ``encode``) in a small Starlette app:

=======================  ===========================================================================
``GET  /``               the page; its CSS and JS come from ``/explore.css`` and ``/explore.js``.
                         Nothing is loaded from anywhere else (the Content-Security-Policy says so).
``GET  /api/model``      the model card: family, codes (span, training range, label), the recipe,
                         the last evaluation (code accuracy, L_I per code, the factor each code
                         follows where the data had known factors)
``POST /api/grid``       a grid of samples as PNG. JSON body: ``{"seed": 0, "rows": 8, "cols": 8,
                         "codes": {"c1": 3, "c2": 0.5, "c3": "random"}}``. A code's value is a
                         number (a category or a continuous value within its span), ``"random"``
                         (drawn from the prior for each sample, the default), ``"rows"`` (a
                         categorical code: one row per category, the paper's figure 2a) or
                         ``"sweep"`` (the columns sweep the code across its span, figure 2c).
                         The ``Server-Timing`` header gives the server's time in ms.
``POST /api/grid/read``  Q's reading of the samples of that grid (same body): per code, what Q reads
                         in each cell and how often it agrees with the value the cell was drawn with
``POST /api/read``       Q's reading of an image: multipart field ``image`` (or the raw image as the
                         body); category probabilities, continuous means and stds, and the image as
                         Q saw it (resized, inverted to a dark background where the model's data had
                         one)
=======================  ===========================================================================

Bad input to any endpoint gets a 4xx and ``{"error": "..."}`` saying what would be right. Model
calls run in a worker thread, one at a time (a lock), so the event loop stays free; the page keeps
at most one grid request in flight and sends only the latest state of the controls.
"""

from __future__ import annotations

import base64
import errno
import io
import json
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .errors import UserError, suggest
from .model import eval_mode

MAX_SIDE = 16            # rows and columns of a grid
MAX_IMAGES = 256         # images in one grid
MAX_SEED = 2**32 - 1
MAX_JSON_BYTES = 64 * 1024
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
MAX_UPLOAD_PIXELS = 40_000_000
GRID_PAD = 2             # pixels between cells of a grid PNG
GRID_PAD_VALUE = 0.25    # their grey level
SPECIAL = ("random", "rows", "sweep")


class BadRequest(Exception):
    """Bad input to an endpoint: becomes ``{"error": message}`` with ``status``."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


# -- the codes ---------------------------------------------------------------------------------------
def n_categories(spec) -> int:
    return int(getattr(spec, "k", spec.input_dim))


def code_span(spec) -> tuple[float, float]:
    """The slider's range: the span ``genzoo traverse`` sweeps by default (twice the training
    range for a uniform code, mean +- 2 std for a Gaussian one); categories 0..k-1."""
    if spec.discrete:
        return 0.0, float(n_categories(spec) - 1)
    t = spec.traversal(2)
    return float(t[0]), float(t[-1])


def train_range(spec) -> tuple[float, float] | None:
    """Where the code's values lay in training: [low, high] of a uniform code, mean +- 1 std of a
    Gaussian one (68% of its draws); None where the code type says neither."""
    if spec.discrete:
        return None
    if hasattr(spec, "low") and hasattr(spec, "high"):
        return float(spec.low), float(spec.high)
    if hasattr(spec, "mean") and hasattr(spec, "std"):
        return float(spec.mean) - float(spec.std), float(spec.mean) + float(spec.std)
    return None


def default_value(spec) -> float | str:
    if spec.discrete:
        return "random"
    r = train_range(spec)
    lo, hi = r if r is not None else code_span(spec)
    return round((lo + hi) / 2, 6)


def _json_safe(obj: Any) -> Any:
    """Plain JSON: non-finite floats become None, tensors numbers, tuples lists."""
    if isinstance(obj, bool) or obj is None or isinstance(obj, (int, str)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, torch.Tensor):
        return _json_safe(obj.tolist())
    if isinstance(obj, Mapping):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    try:
        return _json_safe(float(obj))
    except (TypeError, ValueError):
        return str(obj)


# -- a grid request ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class GridSpec:
    seed: int = 0
    rows: int = 8
    cols: int = 8
    #: code name -> a number, "rows" or "sweep"; codes left out are drawn from the prior
    codes: tuple[tuple[str, Any], ...] = ()
    layout: str = "grid"        # "grid", "rows" (categories as rows) or "sweep" (columns sweep)
    layout_code: str | None = None

    @property
    def fixed(self) -> dict[str, float | int]:
        return {k: v for k, v in self.codes if not isinstance(v, str)}

    def key(self) -> str:
        return json.dumps([self.seed, self.rows, self.cols, list(self.codes), self.layout, self.layout_code])


def _int_field(body: Mapping, name: str, default: int, lo: int, hi: int) -> int:
    v = body.get(name, default)
    if isinstance(v, str) and v.strip().lstrip("-").isdigit():
        v = int(v)
    if isinstance(v, bool) or not isinstance(v, int) and not (isinstance(v, float) and v.is_integer()):
        raise BadRequest(f"{name} must be an integer from {lo} to {hi}, got {json.dumps(v)}")
    v = int(v)
    if not lo <= v <= hi:
        raise BadRequest(f"{name}={v} is out of range: it must be from {lo} to {hi}")
    return v


def parse_grid(codes, body: Any) -> GridSpec:
    """Check a grid request (the JSON body of ``/api/grid``) against the model's ``codes``."""
    if not isinstance(body, Mapping):
        raise BadRequest('the body must be a JSON object, e.g. {"seed": 0, "rows": 8, "cols": 8, '
                         '"codes": {"c1": 3}}')
    allowed = ("seed", "rows", "cols", "codes")
    for key in body:
        if key not in allowed:
            raise BadRequest(f"unknown field {key!r}.{suggest(key, allowed)} Fields: {', '.join(allowed)}")
    seed = _int_field(body, "seed", 0, 0, MAX_SEED)
    rows = _int_field(body, "rows", 8, 1, MAX_SIDE)
    cols = _int_field(body, "cols", 8, 1, MAX_SIDE)
    given = body.get("codes", {})
    if given is None:
        given = {}
    if not isinstance(given, Mapping):
        raise BadRequest(f'codes must be an object of code name to value, e.g. {{"c1": 3}}, got {json.dumps(given)}')
    names = list(codes.names)
    values: list[tuple[str, Any]] = []
    layout, layout_code = "grid", None
    for name, v in given.items():
        if name not in codes:
            raise BadRequest(f"no code named {name!r}.{suggest(name, names)} "
                             f"Codes: {', '.join(names) or '(none: this model has no codes)'}")
        spec = codes[name]
        if isinstance(v, str) and v in SPECIAL:
            if v == "random":
                continue
            if v == "rows" and not spec.discrete:
                raise BadRequest(f'{name}="rows" needs a categorical code; {name} is {spec.to_token()} '
                                 f'(use "sweep" to sweep it across the columns)')
            if layout != "grid":
                raise BadRequest(f'only one code can be "rows" or "sweep"; {layout_code} already is')
            layout, layout_code = v, name
            values.append((name, v))
            continue
        values.append((name, _code_value(name, spec, v)))
    n = rows * cols
    if layout == "rows":
        n = n_categories(codes[layout_code]) * cols
    elif layout == "sweep" and codes[layout_code].discrete:
        n = rows * n_categories(codes[layout_code])
    if n > MAX_IMAGES:
        raise BadRequest(f"the grid would have {n} images; at most {MAX_IMAGES}", 413)
    return GridSpec(seed, rows, cols, tuple(sorted(values)), layout, layout_code)


def _code_value(name: str, spec, v: Any) -> float | int:
    if spec.discrete:
        k = n_categories(spec)
        if isinstance(v, str):
            try:
                v = int(v.strip())
            except ValueError:
                pass
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not float(v).is_integer():
            raise BadRequest(f'{name} is {spec.to_token()}: its value must be a category from 0 to {k - 1}, '
                             f'"random" or "rows", got {json.dumps(v)}')
        if not 0 <= v < k:
            raise BadRequest(f"{name}={int(v)} is out of range: categories are 0 to {k - 1}")
        return int(v)
    lo, hi = code_span(spec)
    if isinstance(v, str):
        try:
            v = float(v.strip())
        except ValueError:
            pass
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(float(v)):
        raise BadRequest(f'{name} is {spec.to_token()}: its value must be a number from {lo:g} to {hi:g}, '
                         f'"random" or "sweep", got {json.dumps(v)}')
    v = float(v)
    eps = 1e-9 * max(1.0, hi - lo)
    if not lo - eps <= v <= hi + eps:
        raise BadRequest(f"{name}={v:g} is out of range: it must be from {lo:g} to {hi:g}")
    return min(max(v, lo), hi)


# -- rendering ---------------------------------------------------------------------------------------
def render_grid(model, g: GridSpec) -> tuple[torch.Tensor, int, list[dict[str, Any]]]:
    """``(images (n, C, H, W) in [0, 1], columns, the code values each cell was drawn with)``.

    "grid": every cell its own noise draw. "sweep": one noise draw per row (other codes drawn per
    row unless fixed), the columns sweep the code across its span (or its categories). "rows":
    one row per category, one noise draw per column, shared down the column (figure 2a)."""
    fixed = g.fixed
    if g.layout == "grid":
        n = g.rows * g.cols
        x = model.sample(n, codes=fixed, seed=g.seed)
        return x, g.cols, [dict(fixed) for _ in range(n)]
    spec = model.codes[g.layout_code]
    if g.layout == "sweep":
        if spec.discrete:
            steps = n_categories(spec)
            x = model.traverse(g.layout_code, rows=g.rows, steps=steps, seed=g.seed, fixed=fixed)
            swept = list(range(steps))
        else:
            span = code_span(spec)
            steps = g.cols
            x = model.traverse(g.layout_code, rows=g.rows, steps=steps, span=span, seed=g.seed, fixed=fixed)
            swept = spec.traversal(steps, span).tolist()
        cells = [dict(fixed, **{g.layout_code: swept[i % steps]}) for i in range(g.rows * steps)]
        return x, steps, cells
    # categories as rows: traverse gives (noise draw, category) in row-major order; transpose it
    k = n_categories(spec)
    x = model.traverse(g.layout_code, rows=g.cols, steps=k, seed=g.seed, fixed=fixed)
    x = x.reshape(g.cols, k, *x.shape[1:]).transpose(0, 1).reshape(k * g.cols, *x.shape[1:])
    cells = [dict(fixed, **{g.layout_code: i // g.cols}) for i in range(k * g.cols)]
    return x, g.cols, cells


def grid_image(x: torch.Tensor, ncol: int, pad: int = GRID_PAD, pad_value: float = GRID_PAD_VALUE):
    """A PIL image of ``x`` (n, C, H, W) in [0, 1], ``ncol`` cells a row, ``pad`` pixels between
    and around them."""
    from PIL import Image

    x = x.detach().float().cpu().clamp(0, 1)
    n, c, h, w = x.shape
    nrow = math.ceil(n / ncol)
    canvas = torch.full((c, pad + nrow * (h + pad), pad + ncol * (w + pad)), float(pad_value))
    for i in range(n):
        r, col = divmod(i, ncol)
        y0, x0 = pad + r * (h + pad), pad + col * (w + pad)
        canvas[:, y0:y0 + h, x0:x0 + w] = x[i]
    arr = (canvas.permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
    return Image.fromarray(arr[:, :, 0] if c == 1 else arr[:, :, :3], "L" if c == 1 else "RGB")


def grid_cells(im, shape: tuple[int, int, int], ncol: int, nrow: int, pad: int = GRID_PAD) -> list:
    """The cells of a grid PNG made by :func:`grid_image`, as PIL images (the inverse)."""
    _, h, w = shape
    return [im.crop((pad + c * (w + pad), pad + r * (h + pad), pad + c * (w + pad) + w, pad + r * (h + pad) + h))
            for r in range(nrow) for c in range(ncol)]


def png_bytes(im) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


# -- reading images ------------------------------------------------------------------------------------
def decode_image(data: bytes):
    """Bytes to a PIL image, or :class:`BadRequest` saying why not."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise BadRequest("the file is empty; send a PNG, JPEG, GIF, BMP or WebP image")
    try:
        im = Image.open(io.BytesIO(data))
    except (UnidentifiedImageError, OSError, ValueError):
        raise BadRequest("the file is not an image this explorer can read; send a PNG, JPEG, GIF, BMP "
                         "or WebP image", 415) from None
    w, h = im.size
    if w * h > MAX_UPLOAD_PIXELS or w < 1 or h < 1:
        raise BadRequest(f"the image is {w}x{h} pixels; at most {MAX_UPLOAD_PIXELS:,} pixels", 413)
    try:
        im.load()
    except Exception as e:  # truncated or corrupt data: PIL raises OSError, SyntaxError, ...
        what = f"the {im.format} image" if im.format else "the image"
        raise BadRequest(f"{what} cannot be decoded (truncated or corrupt?): {e}", 415) from None
    return im


def prepare_image(im, shape: tuple[int, int, int], invert: str = "auto",
                  ground: float | None = None) -> tuple[torch.Tensor, dict]:
    """A PIL image as the model's input ``(1, C, H, W)`` in [0, 1], and what was done to it.

    ``ground`` is the grey level of the border of the model's own samples (one-channel models;
    :meth:`Explorer.sample_ground`): about 0 for MNIST, a light digit on a dark ground. Where it is
    clearly dark or clearly light, an image whose border is on the other side is inverted
    (``invert="auto"``; ``"yes"`` and ``"no"`` decide by hand), transparency is laid on the ground
    that lets the strokes show, and, on a dark ground, an image of another size is fitted the way
    MNIST was made: the strokes' bounding box scaled to 20/28 of the side, centred on their centre of
    mass. Otherwise (colour models, a model whose ground is neither) the image is centre-cropped to a
    square and resized."""
    from PIL import Image

    c, h, w = shape
    dark = c == 1 and ground is not None and ground < 0.35
    light = c == 1 and ground is not None and ground > 0.65
    steps: list[str] = []
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = np.asarray(im.convert("RGBA"), dtype=np.float32) / 255.0
        alpha = rgba[:, :, 3:4]
        lum = rgba[:, :, :3].mean(axis=2, keepdims=True)
        ink_light = float((lum * alpha).sum() / max(float(alpha.sum()), 1e-6)) > 0.5
        bg = 0.0 if ink_light else 1.0
        rgb = rgba[:, :, :3] * alpha + bg * (1 - alpha)
        im = Image.fromarray((rgb * 255).round().astype(np.uint8), "RGB")
        steps.append("transparency laid on " + ("black" if bg == 0 else "white"))
    size = [int(im.size[0]), int(im.size[1])]
    im = im.convert("L" if c == 1 else "RGB")
    arr = np.asarray(im, dtype=np.float32) / 255.0
    inverted = False
    if c == 1:
        border = float(np.concatenate([arr[0], arr[-1], arr[:, 0], arr[:, -1]]).mean())
        if invert == "yes" or (invert == "auto" and ((dark and border > 0.5) or (light and border < 0.5))):
            arr = 1.0 - arr
            inverted = True
            steps.append("inverted" if invert == "yes" else
                         f"inverted (a {'light' if dark else 'dark'} ground; the model's samples have a "
                         f"{'dark' if dark else 'light'} one)")
    if arr.shape[:2] == (h, w):
        out = arr
        steps.append("used as is")
    elif dark:
        out = _fit_like_mnist(arr, h, w)
        steps.append(f"fitted to {w}x{h} like MNIST (strokes' box scaled to 20/28, centred on their mass)")
    else:
        out = _crop_resize(arr, h, w)
        steps.append(f"centre-cropped and resized to {w}x{h}")
    t = torch.from_numpy(np.array(out, dtype=np.float32))  # a writable copy
    t = t.unsqueeze(0) if c == 1 else t.permute(2, 0, 1)
    return t.unsqueeze(0).clamp(0, 1), {"inverted": inverted, "steps": steps, "size": size}


def _resize(arr, w: int, h: int):
    from PIL import Image

    if arr.ndim == 2:
        im = Image.fromarray(arr.astype(np.float32), "F").resize((w, h), Image.BILINEAR, reducing_gap=3.0)
        return np.asarray(im, dtype=np.float32)
    chans = [_resize(arr[:, :, i], w, h) for i in range(arr.shape[2])]
    return np.stack(chans, axis=2)


def _crop_resize(arr, h: int, w: int):
    ah, aw = arr.shape[:2]
    s = min(ah, aw)
    y0, x0 = (ah - s) // 2, (aw - s) // 2
    return _resize(arr[y0:y0 + s, x0:x0 + s], w, h)


def _fit_like_mnist(arr, h: int, w: int):

    mask = arr > 0.15 * max(float(arr.max()), 1e-6)
    if not mask.any():
        return _crop_resize(arr, h, w)
    ys, xs = np.nonzero(mask)
    crop = arr[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    box = max(1, round(20 * min(h, w) / 28))
    ch, cw = crop.shape
    scale = box / max(ch, cw)
    nh, nw = max(1, round(ch * scale)), max(1, round(cw * scale))
    small = np.clip(_resize(crop, nw, nh), 0, 1)
    out = np.zeros((h, w), dtype=np.float32)
    total = float(small.sum())
    if total > 0:
        cy = float((small.sum(axis=1) * np.arange(nh)).sum() / total)
        cx = float((small.sum(axis=0) * np.arange(nw)).sum() / total)
    else:
        cy, cx = (nh - 1) / 2, (nw - 1) / 2
    y0 = round((h - 1) / 2 - cy)
    x0 = round((w - 1) / 2 - cx)
    y0, x0 = min(max(y0, 0), h - nh), min(max(x0, 0), w - nw)
    out[y0:y0 + nh, x0:x0 + nw] = small
    return out


def data_url(im) -> str:
    return "data:image/png;base64," + base64.b64encode(png_bytes(im)).decode("ascii")


# -- the explorer --------------------------------------------------------------------------------------
@dataclass
class Explorer:
    """The model and what the endpoints need: its card, a lock, a small cache of rendered grids."""

    model: Any
    path: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    cache_size: int = 4

    def __post_init__(self):
        self.lock = threading.Lock()
        self._cache: OrderedDict[str, tuple] = OrderedDict()
        self.can_read, self.read_problem = self._check_encode()
        self.ground = self.sample_ground()
        self.card = _json_safe(self._make_card())

    # the model card ---------------------------------------------------------------------------
    def _check_encode(self) -> tuple[bool, str]:
        if not len(self.model.codes):
            return False, "this model has no codes to read"
        if not callable(getattr(self.model, "encode", None)):
            return False, "this model has no encoder (Q) to read images with"

        try:
            with torch.no_grad(), eval_mode(self.model):
                out = self.model.encode(torch.zeros((1, *self.model.image_shape), device=self._device()))
        except NotImplementedError:
            return False, "this model's family does not implement encode(): it cannot read images"
        except Exception as e:  # a plugin's encoder that fails on one blank image
            return False, f"this model's encoder failed on a blank image ({type(e).__name__}: {e})"
        if not isinstance(out, Mapping) or any(name not in out for name in self.model.codes.names):
            return False, "this model's encoder does not read its codes"
        return True, ""

    def sample_ground(self, n: int = 64, seed: int = 12345) -> float | None:
        """The mean grey level of the border of ``n`` samples (one-channel models), or None."""
        if self.model.image_shape[0] != 1:
            return None
        x = self.model.sample(n, seed=seed).float()[:, 0]
        border = torch.cat([x[:, 0], x[:, -1], x[:, :, 0], x[:, :, -1]], dim=1)
        return float(border.mean())

    def _examples(self, name: str, k: int, max_k: int = 32) -> list[str] | None:
        """One sample per category of ``name`` (the same noise), as PNG data URLs: the page shows
        them on the category buttons and beside Q's readings, since category k is not digit k."""
        if k > max_k:
            return None
        try:
            x = self.model.category_rows(name, per_row=1, seed=0)
        except Exception:  # a family without category_rows: the page shows numbers only
            return None
        return [data_url(grid_image(x[i:i + 1], 1, pad=0)) for i in range(len(x))]

    def _device(self):
        try:
            return next(self.model.parameters()).device
        except (StopIteration, AttributeError):
            return torch.device("cpu")

    def _make_card(self) -> dict:
        ck = _mapping(getattr(self.model, "checkpoint", None))
        metrics = _mapping(ck.get("metrics"))
        config = _mapping(ck.get("config"))
        factors = _mapping(metrics.get("code_factors"))
        per_code_eval = _mapping(metrics.get("codes"))
        mi, entropy = _mapping(metrics.get("mi")), _mapping(metrics.get("entropy"))
        codes = []
        for name, spec in self.model.codes:
            factor = factors.get(name)
            factor = {"factor": factor} if isinstance(factor, str) else _mapping(factor)
            label = self.labels.get(name) or (str(factor["factor"]) if factor.get("factor") else None)
            d = {
                "name": name, "kind": spec.kind, "token": spec.to_token(), "discrete": bool(spec.discrete),
                "label": label, "factor": factor.get("factor"), "factor_nmi": factor.get("nmi"),
                "span": list(code_span(spec)), "train_range": list(train_range(spec) or []) or None,
                "default": default_value(spec),
                "L_I": mi.get(name), "H": entropy.get(name),
            }
            if spec.discrete:
                d["k"] = n_categories(spec)
                d["examples"] = self._examples(name, d["k"])
                ev = _mapping(per_code_eval.get(name))
                d["accuracy"], d["nmi"] = ev.get("accuracy"), ev.get("nmi")
            codes.append(d)
        summary = {k: v for k, v in metrics.items() if not isinstance(v, (Mapping, list))}
        scores = {k: v for k, v in _mapping(metrics.get("disentanglement")).items() if isinstance(v, (int, float))}
        return {
            "title": ck.get("recipe") or config.get("name") or ck.get("family") or "model",
            "path": self.path or ck.get("path", ""),
            "family": ck.get("family") or getattr(self.model, "family", ""),
            "plugin": ck.get("plugin", ""),
            "recipe": ck.get("recipe") or config.get("name", ""),
            "description": config.get("description", ""),
            "step": ck.get("step"), "version": ck.get("version", ""),
            "image_shape": list(self.model.image_shape),
            "codes": codes,
            "evaluation": {"summary": summary, "disentanglement": scores, "full": metrics},
            "config": config,
            "can_read": self.can_read, "read_problem": self.read_problem, "sample_ground": self.ground,
            "limits": {"max_side": MAX_SIDE, "max_images": MAX_IMAGES, "max_seed": MAX_SEED,
                       "max_upload_bytes": MAX_UPLOAD_BYTES},
            "defaults": {"seed": 0, "rows": 8, "cols": 8},
        }

    # grids ----------------------------------------------------------------------------------
    def _render(self, g: GridSpec):
        key = g.key()
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        x, ncol, cells = render_grid(self.model, g)
        out = (x.cpu(), ncol, cells)
        self._cache[key] = out
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return out

    def grid_png(self, g: GridSpec) -> tuple[bytes, dict[str, float], int, int]:
        """``(PNG, timings in ms, rows, columns)``."""
        t0 = time.perf_counter()
        with self.lock:
            t1 = time.perf_counter()
            x, ncol, _ = self._render(g)
            t2 = time.perf_counter()
        data = png_bytes(grid_image(x, ncol))
        t3 = time.perf_counter()
        ms = {"wait": (t1 - t0) * 1e3, "render": (t2 - t1) * 1e3, "png": (t3 - t2) * 1e3}
        return data, ms, math.ceil(len(x) / ncol), ncol

    def read_grid(self, g: GridSpec) -> dict:
        """Q's reading of each cell of a grid, and how often it agrees with what the cell was
        drawn with."""
        if not self.can_read:
            raise BadRequest(self.read_problem, 409)
        with self.lock:
            x, ncol, cells = self._render(g)
            with torch.no_grad():
                q = self._encode(x)
        out: dict[str, Any] = {"n": len(x), "rows": math.ceil(len(x) / ncol), "cols": ncol, "codes": {}}
        for name, spec in self.model.codes:
            p = q[name]
            drawn = [c.get(name) for c in cells]
            known = all(v is not None for v in drawn)
            if spec.discrete:
                probs = p["logits"].float().softmax(dim=1)
                top = probs.argmax(dim=1).tolist()
                d = {"kind": spec.kind, "cells": top, "confidence": probs.max(dim=1).values.tolist(),
                     "counts": torch.bincount(torch.tensor(top), minlength=probs.shape[1]).tolist()}
                if known:
                    d["agree"] = sum(int(t == v) for t, v in zip(top, drawn, strict=True)) / len(top)
            else:
                means = p["mean"].float().tolist()
                d = {"kind": spec.kind, "cells": means, "mean": sum(means) / len(means)}
                if known:
                    err = [abs(m - v) for m, v in zip(means, drawn, strict=True)]
                    d["mean_abs_error"] = sum(err) / len(err)
                    if len(set(drawn)) > 1:
                        d["corr"] = _corr(means, drawn)
            d["set"] = dict(g.codes).get(name, "random")
            out["codes"][name] = d
        return _json_safe(out)

    def _encode(self, x: torch.Tensor) -> dict:

        with eval_mode(self.model):
            q = self.model.encode(x.to(self._device()))
        return {n: {k: v.detach().cpu() for k, v in d.items()} for n, d in q.items()}

    # uploaded images -------------------------------------------------------------------------
    def read_image(self, data: bytes, invert: str = "auto") -> dict:
        if not self.can_read:
            raise BadRequest(self.read_problem, 409)
        if invert not in ("auto", "yes", "no"):
            raise BadRequest(f"invert must be auto, yes or no, got {invert!r}")
        im = decode_image(data)
        fmt = im.format or ""
        x, how = prepare_image(im, tuple(self.model.image_shape), invert, self.ground)
        with self.lock, torch.no_grad():
            q = self._encode(x)
        codes = {}
        for name, spec in self.model.codes:
            p = q[name]
            if spec.discrete:
                probs = p["logits"].float().softmax(dim=1)[0]
                codes[name] = {"kind": spec.kind, "probs": probs.tolist(), "top": int(probs.argmax())}
            else:
                codes[name] = {"kind": spec.kind, "mean": float(p["mean"][0]),
                               "std": float(p["std"][0]) if "std" in p else None}
        seen = grid_image(x, 1, pad=0)
        return _json_safe({"format": fmt, "size": how["size"], "inverted": how["inverted"],
                           "steps": how["steps"], "seen": data_url(seen), "codes": codes})


def _mapping(obj) -> dict:
    """``obj`` if it is a mapping (metadata read from a file may hold anything), else {}."""
    return dict(obj) if isinstance(obj, Mapping) else {}


def _corr(a: list[float], b: list[float]) -> float | None:
    n = len(a)
    ma, mb = sum(a) / n, sum(b) / n
    va = sum((x - ma) ** 2 for x in a)
    vb = sum((y - mb) ** 2 for y in b)
    if va <= 0 or vb <= 0:
        return None
    return sum((x - ma) * (y - mb) for x, y in zip(a, b, strict=True)) / math.sqrt(va * vb)


# -- the web app ------------------------------------------------------------------------------------
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
       "connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'")
LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")


def make_app(model, path: str = "", labels: Mapping[str, str] | None = None, allowed_hosts=None):
    """A Starlette app that serves the explorer for ``model``.

    ``labels`` names codes (``{"c2": "width"}``), over the factor names the last evaluation found.
    ``allowed_hosts``: the Host headers it answers (default: the loopback names, which keeps other
    web sites from reaching it through DNS rebinding); ``["*"]`` for any."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    ex = Explorer(model, path=path, labels=dict(labels or {}))
    hosts = list(allowed_hosts) if allowed_hosts is not None else list(LOOPBACK)

    def error(message: str, status: int = 400) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status, headers={"Cache-Control": "no-store"})

    async def json_body(request) -> Any:
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/json":
            raise BadRequest(f"send the request as JSON (Content-Type: application/json), got {ctype or 'none'!r}", 415)
        raw = await _read_body(request, MAX_JSON_BYTES)
        try:
            return json.loads(raw.decode("utf-8") or "{}")
        except (UnicodeDecodeError, ValueError) as e:
            raise BadRequest(f"the body is not valid JSON: {e}") from None

    async def page(request):
        return Response(PAGE_HTML, media_type="text/html; charset=utf-8")

    async def css(request):
        return Response(PAGE_CSS, media_type="text/css; charset=utf-8")

    async def js(request):
        return Response(PAGE_JS, media_type="text/javascript; charset=utf-8")

    async def model_card(request):
        return JSONResponse(ex.card)

    async def grid(request):
        t0 = time.perf_counter()
        g = parse_grid(model.codes, await json_body(request))
        data, ms, nrow, ncol = await run_in_threadpool(ex.grid_png, g)
        ms["total"] = (time.perf_counter() - t0) * 1e3
        timing = ", ".join(f"{k};dur={v:.2f}" for k, v in ms.items())
        return Response(data, media_type="image/png", headers={
            "Server-Timing": timing, "X-Grid": f"{nrow}x{ncol}", "Cache-Control": "no-store"})

    async def grid_read(request):
        g = parse_grid(model.codes, await json_body(request))
        return JSONResponse(await run_in_threadpool(ex.read_grid, g))

    async def read(request):
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        invert = request.query_params.get("invert", "auto")
        if ctype == "multipart/form-data":
            _check_length(request, MAX_UPLOAD_BYTES + 64 * 1024, required=True)
            try:
                async with request.form(max_files=1, max_fields=8) as form:
                    up = form.get("image")
                    invert = str(form.get("invert") or invert)
                    if up is None or isinstance(up, str):
                        raise BadRequest("no file in the form: send the image in the field 'image'")
                    data = await up.read()
            except HTTPException as e:  # malformed multipart, too many parts
                raise BadRequest(f"the upload could not be read: {e.detail}") from None
        elif ctype.startswith("image/") or ctype == "application/octet-stream":
            data = await _read_body(request, MAX_UPLOAD_BYTES)
        else:
            raise BadRequest("send the image as multipart/form-data (field 'image') or as the body "
                             f"with an image/* Content-Type, got {ctype or 'none'!r}", 415)
        if len(data) > MAX_UPLOAD_BYTES:
            raise BadRequest(f"the file is {len(data):,} bytes; at most {MAX_UPLOAD_BYTES:,}", 413)
        return JSONResponse(await run_in_threadpool(ex.read_image, data, invert))

    async def bad_request(request, exc: BadRequest):
        return error(str(exc), exc.status)

    async def http_error(request, exc: HTTPException):
        if exc.status_code == 404:
            return error(f"no such page: {request.url.path} (the explorer serves /, /api/model, "
                         "/api/grid, /api/grid/read, /api/read)", 404)
        if exc.status_code == 405:
            return error(f"{request.method} is not allowed on {request.url.path}", 405)
        return error(str(exc.detail), exc.status_code)

    async def server_error(request, exc: Exception):
        import traceback

        traceback.print_exception(type(exc), exc, exc.__traceback__)
        return error(f"internal error ({type(exc).__name__}); the server's log has the details", 500)

    routes = [
        Route("/", page), Route("/explore.css", css), Route("/explore.js", js),
        Route("/api/model", model_card),
        Route("/api/grid", grid, methods=["POST"]),
        Route("/api/grid/read", grid_read, methods=["POST"]),
        Route("/api/read", read, methods=["POST"]),
    ]
    app = Starlette(routes=routes, exception_handlers={
        BadRequest: bad_request, HTTPException: http_error, Exception: server_error})
    app.add_middleware(_SecurityHeaders, hosts=hosts)
    app.state.explorer = ex
    return app


async def _read_body(request, limit: int) -> bytes:
    """The request's body, refused (413) as soon as it passes ``limit`` bytes, declared or not."""
    _check_length(request, limit)
    chunks, n = [], 0
    async for chunk in request.stream():
        n += len(chunk)
        if n > limit:
            raise BadRequest(f"the body is over {limit:,} bytes; at most {limit:,}", 413)
        chunks.append(chunk)
    return b"".join(chunks)


def _check_length(request, limit: int, required: bool = False) -> None:
    length = request.headers.get("content-length")
    if length is None:
        if required:
            raise BadRequest("the upload needs a Content-Length header", 411)
        return
    try:
        n = int(length)
    except ValueError:
        raise BadRequest(f"Content-Length {length!r} is not a number") from None
    if n > limit:
        raise BadRequest(f"the body is {n:,} bytes; at most {limit:,}", 413)


class _SecurityHeaders:
    """ASGI middleware: answers only the allowed Host names (JSON 400 otherwise) and adds the
    Content-Security-Policy (nothing from other origins), nosniff and no-referrer headers."""

    def __init__(self, app, hosts):
        self.app = app
        self.any_host = "*" in hosts
        self.hosts = {h.lower() for h in hosts}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if not self.any_host:
            host = ""
            for k, v in scope.get("headers", []):
                if k == b"host":
                    host = v.decode("latin-1").lower()
            name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
            if name not in self.hosts:
                body = json.dumps({"error": f"host {host!r} is not served here; open the explorer at "
                                            "http://127.0.0.1:PORT/ (or start it with --host)"}).encode()
                await send({"type": "http.response.start", "status": 400, "headers": [
                    (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [(b"content-security-policy", CSP.encode()), (b"x-content-type-options", b"nosniff"),
                            (b"referrer-policy", b"no-referrer"), (b"x-frame-options", b"DENY")]
                message = dict(message, headers=headers)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def bind(host: str = "127.0.0.1", port: int = 8000):
    """A listening socket on ``host:port`` (0: any free port), or a :class:`UserError` saying why
    not. Bound before the model loads, so a busy port is reported at once."""
    import socket


    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise UserError(f"--host {host!r} is not an address this machine can listen on: {e.strerror}") from None
    family, kind, proto, _, addr = infos[0]
    # proto IPPROTO_TCP (not 0): asyncio sets TCP_NODELAY only on such sockets' connections; without
    # it a reply's header and body meet Nagle's algorithm and the client's delayed ACK (+40 ms)
    sock = socket.socket(family, kind, proto or socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(addr)
        sock.listen(128)
    except OSError as e:
        sock.close()
        if e.errno == errno.EADDRNOTAVAIL:
            raise UserError(f"--host {host!r} is not an address of this machine") from None
        what = "is in use" if e.errno == errno.EADDRINUSE else f"cannot be used ({e.strerror})"
        raise UserError(f"port {port} on {host} {what}; choose another with --port "
                        "(--port 0 picks a free one)") from None
    return sock


def url_of(sock, host: str) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{sock.getsockname()[1]}/"


def serve(app, sock, on_ready=None) -> None:
    """Serve ``app`` on the bound socket ``sock`` until interrupted (Ctrl-C, SIGTERM); call
    ``on_ready()`` first."""
    import uvicorn

    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                            timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    if on_ready is not None:
        on_ready()
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()


# -- the page -----------------------------------------------------------------------------------------
PAGE_HTML = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>genzoo explore</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/explore.css">
<script src="/explore.js" defer></script>
</head>
<body>
<header>
  <div class="brand">genzoo <b>explore</b></div>
  <div id="model-title" class="model-title">loading the model&hellip;</div>
  <div id="status" class="status" role="status"></div>
</header>
<main>
  <section class="panel controls" aria-label="codes">
    <h2>Noise</h2>
    <div class="noise">
      <label>seed <input id="seed" type="number" min="0" step="1" value="0"></label>
      <button id="new-noise" type="button" title="draw new noise (a new seed)">new noise</button>
    </div>
    <div class="size">
      <label>rows <select id="rows"></select></label>
      <label>columns <select id="cols"></select></label>
    </div>
    <h2>Codes</h2>
    <div id="codes"></div>
  </section>
  <section class="panel stage" aria-label="samples">
    <div class="grid-frame"><img id="grid" alt="a grid of samples" data-version="0"></div>
    <div class="grid-bar">
      <span id="grid-info" class="muted"></span>
      <a id="download" class="button" download="genzoo-grid.png" href="#">download PNG</a>
    </div>
    <div id="grid-reading" class="grid-reading" aria-live="polite"></div>
  </section>
  <section class="panel side" aria-label="read an image and the model card">
    <h2>Read an image</h2>
    <label id="drop" class="drop" tabindex="0">
      <input id="file" type="file" accept="image/*">
      <span>Drop an image here, or <u>pick a file</u></span>
      <small>Q reads its codes: category probabilities, continuous means</small>
    </label>
    <div id="reading" class="reading" aria-live="polite"></div>
    <h2>Model card</h2>
    <div id="card"></div>
  </section>
</main>
</body>
</html>
"""

PAGE_CSS = """
:root { --bg: #0f1419; --panel: #171e26; --line: #263140; --text: #e6edf3; --muted: #8b9bb0;
        --accent: #f0a030; --accent2: #4fb3ff; --bad: #ff6b6b; --good: #5fd38d; }
* { box-sizing: border-box; }
html, body { margin: 0; background: var(--bg); color: var(--text);
             font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
header { display: flex; align-items: baseline; gap: 18px; padding: 12px 20px; border-bottom: 1px solid var(--line); }
.brand { font-size: 18px; letter-spacing: .02em; color: var(--muted); }
.brand b { color: var(--accent); font-weight: 600; }
.model-title { font-size: 15px; }
.model-title .tag { display: inline-block; padding: 0 7px; margin-left: 6px; border-radius: 9px;
                    background: #22303f; color: var(--muted); font-size: 12px; }
.status { margin-left: auto; color: var(--bad); font-size: 13px; max-width: 50%; text-align: right; }
main { display: grid; grid-template-columns: 360px minmax(380px, 1fr) 370px; gap: 14px; padding: 14px 20px; }
.panel { background: var(--panel); border: 1px solid var(--line); border-radius: 10px; padding: 12px 16px; }
h2 { font-size: 12px; text-transform: uppercase; letter-spacing: .08em; color: var(--muted);
     margin: 6px 0 10px; font-weight: 600; }
h2:not(:first-child) { margin-top: 18px; }
label { color: var(--muted); font-size: 13px; }
input[type=number], select { background: #0f151c; color: var(--text); border: 1px solid var(--line);
     border-radius: 6px; padding: 4px 6px; font: inherit; }
input[type=number] { width: 110px; }
button, .button { background: #22303f; color: var(--text); border: 1px solid #33465b; border-radius: 6px;
     padding: 4px 10px; font: inherit; cursor: pointer; text-decoration: none; display: inline-block; }
button:hover, .button:hover { border-color: var(--accent2); }
.noise, .size { display: flex; gap: 12px; align-items: center; margin-bottom: 8px; }
.code { border-top: 1px solid var(--line); padding: 10px 0 8px; }
.code-head { display: flex; align-items: baseline; gap: 8px; }
.code-name { font-weight: 600; font-size: 15px; }
.code-label { color: var(--accent); font-weight: 600; }
.code-token { color: var(--muted); font-size: 12px; margin-left: auto; font-family: ui-monospace, monospace; }
.code-stats { color: var(--muted); font-size: 12px; margin: 2px 0 6px; }
.mi-bar { display: inline-block; width: 60px; height: 6px; background: #0f151c; border-radius: 3px;
          vertical-align: middle; margin: 0 4px; overflow: hidden; }
.mi-bar i { display: block; height: 100%; background: var(--accent2); }
.picker { display: flex; flex-wrap: wrap; gap: 4px; }
.picker button { min-width: 30px; padding: 3px 6px; font-variant-numeric: tabular-nums; display: inline-flex;
                 align-items: center; gap: 3px; }
.picker button img.thumb, .bars img.thumb { width: 18px; height: 18px; image-rendering: pixelated; border-radius: 2px; }
.bars .cat { display: inline-flex; align-items: center; gap: 4px; }
.picker button.on { background: var(--accent); border-color: var(--accent); color: #1a1204; font-weight: 600; }
.slider-row { display: flex; align-items: center; gap: 8px; }
.slider-wrap { position: relative; flex: 1; height: 28px; }
.slider-wrap .band { position: absolute; top: 11px; height: 6px; border-radius: 3px; background: #3b5570; }
.slider-wrap .ticks { position: absolute; top: 19px; left: 0; right: 0; height: 10px; font-size: 10px; color: var(--muted); }
.slider-wrap .ticks span { position: absolute; transform: translateX(-50%); }
.slider-wrap .ticks span.first { transform: none; }
.slider-wrap .ticks span.last { transform: translateX(-100%); }
input[type=range] { position: absolute; left: 0; right: 0; top: 4px; width: 100%; margin: 0; background: transparent;
                    -webkit-appearance: none; appearance: none; height: 20px; }
input[type=range]::-webkit-slider-runnable-track { height: 6px; border-radius: 3px; background: rgba(139,155,176,.18); }
input[type=range]::-webkit-slider-thumb { -webkit-appearance: none; width: 16px; height: 16px; margin-top: -5px;
                    border-radius: 50%; background: var(--accent); border: 2px solid #1a1204; }
input[type=range]:disabled::-webkit-slider-thumb { background: var(--muted); }
input[type=range]:focus { outline: none; }
input[type=range]:focus-visible::-webkit-slider-thumb { box-shadow: 0 0 0 3px rgba(79,179,255,.55); }
.value { width: 46px; text-align: right; font-variant-numeric: tabular-nums; font-family: ui-monospace, monospace; }
.toggles { display: flex; gap: 4px; margin-top: 4px; }
.toggles button { font-size: 12px; padding: 1px 8px; white-space: nowrap; }
.toggles .legend { margin-left: auto; color: var(--muted); font-size: 11px; align-self: center; white-space: nowrap; }
.toggles button.on { background: var(--accent2); border-color: var(--accent2); color: #04121d; }
.stage { display: flex; flex-direction: column; align-items: center; }
.grid-frame { width: 100%; display: flex; justify-content: center; }
#grid { width: 100%; max-width: 620px; image-rendering: pixelated; border-radius: 6px; background: #000;
        aspect-ratio: 1 / 1; object-fit: contain; }
.grid-bar { display: flex; width: 100%; max-width: 620px; justify-content: space-between; align-items: center; margin: 8px 0; }
.muted { color: var(--muted); font-size: 13px; }
.grid-reading { width: 100%; max-width: 620px; font-size: 13px; }
.grid-reading .line { padding: 2px 0; }
.grid-reading b { color: var(--accent); }
.drop { display: flex; flex-direction: column; align-items: center; gap: 4px; padding: 18px 10px; border: 2px dashed #33465b;
        border-radius: 10px; cursor: pointer; text-align: center; color: var(--text); font-size: 14px; }
.drop.over { border-color: var(--accent); background: rgba(240,160,48,.06); }
.drop input { display: none; }
.drop small { color: var(--muted); }
.reading { margin: 10px 0 4px; }
.reading .seen { display: flex; gap: 12px; align-items: center; margin-bottom: 8px; }
.reading .seen img { width: 84px; height: 84px; image-rendering: pixelated; border: 1px solid var(--line); border-radius: 4px; }
.reading .note { color: var(--muted); font-size: 12px; }
.bars { display: grid; grid-template-columns: 40px 1fr 44px; gap: 2px 6px; align-items: center; font-size: 12px;
        font-variant-numeric: tabular-nums; margin: 4px 0 8px; }
.bars .bar { height: 10px; background: #0f151c; border-radius: 3px; overflow: hidden; }
.bars .bar i { display: block; height: 100%; background: var(--accent2); }
.bars .top .bar i { background: var(--accent); }
.bars .top { color: var(--accent); font-weight: 600; }
.cont { font-size: 13px; margin: 2px 0; }
table { border-collapse: collapse; width: 100%; font-size: 12.5px; }
th, td { text-align: left; padding: 3px 6px 3px 0; border-bottom: 1px solid var(--line); vertical-align: top; }
th { color: var(--muted); font-weight: 500; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
details { margin-top: 10px; }
summary { cursor: pointer; color: var(--muted); }
pre { background: #0f151c; padding: 8px; border-radius: 6px; max-height: 260px; overflow: auto; font-size: 11.5px; }
.error { color: var(--bad); }
@media (max-width: 1150px) { main { grid-template-columns: 1fr; } }
"""

PAGE_JS = r"""
"use strict";
const $ = (s) => document.querySelector(s);
const el = (tag, attrs = {}, ...kids) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v; else if (k === "text") e.textContent = v;
    else if (k === "style") e.style.cssText = v;  // CSSOM: allowed by the page's CSP, a style attribute is not
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v); else e.setAttribute(k, v);
  }
  for (const k of kids) if (k != null) e.append(k);
  return e;
};
const fmt = (v, d = 2) => (v === null || v === undefined || Number.isNaN(v)) ? "–" : Number(v).toFixed(d);

let card = null;
const state = { seed: 0, rows: 8, cols: 8, codes: {} };
let inFlight = false, pending = false, version = 0, gridUrl = null;

function showError(msg) { $("#status").textContent = msg || ""; }

async function api(path, opts) {
  const r = await fetch(path, opts);
  if (!r.ok) {
    let msg = r.status + " " + r.statusText;
    try { msg = (await r.json()).error || msg; } catch (e) { /* not JSON */ }
    throw new Error(msg);
  }
  return r;
}

function request() {
  return { seed: state.seed, rows: state.rows, cols: state.cols, codes: Object.assign({}, state.codes) };
}

function scheduleRender() {
  if (inFlight) { pending = true; return; }
  render();
}

async function render() {
  inFlight = true; pending = false;
  const body = JSON.stringify(request());
  try {
    const r = await api("/api/grid", { method: "POST", headers: { "Content-Type": "application/json" }, body });
    const timing = r.headers.get("Server-Timing") || "";
    const shape = r.headers.get("X-Grid") || "";
    const blob = await r.blob();
    if (gridUrl) URL.revokeObjectURL(gridUrl);
    gridUrl = URL.createObjectURL(blob);
    const img = $("#grid");
    await new Promise((ok) => { img.onload = ok; img.onerror = ok; img.src = gridUrl; });
    const [nr, nc] = shape.split("x").map(Number);
    if (nr && nc) img.style.aspectRatio = `${nc} / ${nr}`;
    version += 1;
    img.dataset.version = String(version);
    img.dataset.request = body;
    $("#download").href = gridUrl;
    const m = /total;dur=([0-9.]+)/.exec(timing);
    $("#grid-info").textContent = `${shape.replace("x", " × ")} · seed ${state.seed}` +
      (m ? ` · ${Math.round(parseFloat(m[1]))} ms on the server` : "");
    showError("");
    writeHash();
    if (!pending) readGrid(body, version);
  } catch (e) {
    showError(e.message);
  } finally {
    inFlight = false;
    if (pending) render();
  }
}

async function readGrid(body, v) {
  const box = $("#grid-reading");
  if (!card.can_read) { box.textContent = ""; return; }
  try {
    const r = await api("/api/grid/read", { method: "POST", headers: { "Content-Type": "application/json" }, body });
    const q = await r.json();
    if (v !== version) return;
    box.replaceChildren(el("div", { class: "muted", text: "Q's reading of these samples" }));
    for (const c of card.codes) {
      const d = q.codes[c.name]; if (!d) continue;
      const name = c.label ? `${c.name} (${c.label})` : c.name;
      let parts;  // [before, in bold, after]
      if (c.discrete) {
        if (typeof d.set === "number") {
          parts = [`${name}: set to ${d.set}; Q reads `, String(d.set), ` in ${Math.round(d.agree * q.n)} of ${q.n}`];
        } else if (d.set === "rows" || d.set === "sweep") {
          parts = [`${name}: one ${d.set === "rows" ? "row" : "column"} per category; Q agrees on `,
                   `${Math.round(d.agree * 100)}%`, " of the samples"];
        } else {
          const top = d.counts.indexOf(Math.max(...d.counts));
          parts = [`${name}: drawn at random; Q's most frequent reading `, String(top), ` (${d.counts[top]} of ${q.n})`];
        }
      } else {
        if (typeof d.set === "number") parts = [`${name}: set to ${fmt(d.set)}; Q's mean reading `, fmt(d.mean), ""];
        else if (d.set === "sweep") parts = [`${name}: swept; Q's reading follows it with correlation `, fmt(d.corr), ""];
        else parts = [`${name}: drawn at random; Q's mean reading `, fmt(d.mean), ""];
      }
      const line = el("div", { class: "line", "data-code": c.name }, parts[0], el("b", { text: parts[1] }), parts[2]);
      if (d.agree !== undefined) line.dataset.agree = String(d.agree);
      box.append(line);
    }
    box.dataset.version = String(v);
  } catch (e) { box.replaceChildren(el("div", { class: "error", text: e.message })); }
}

function setCode(name, value) {
  // only one code can be "rows" or "sweep" at a time
  if (value === "rows" || value === "sweep") {
    for (const c of card.codes) if (c.name !== name && (state.codes[c.name] === "rows" || state.codes[c.name] === "sweep"))
      state.codes[c.name] = c.discrete ? "random" : c.default;
  }
  state.codes[name] = value;
  syncControls();
  scheduleRender();
}

function syncControls() {
  for (const c of card.codes) {
    const v = state.codes[c.name];
    if (c.discrete) {
      document.querySelectorAll(`.picker[data-code="${c.name}"] button`).forEach((b) => {
        b.classList.toggle("on", b.dataset.value === String(v));
        b.setAttribute("aria-pressed", b.dataset.value === String(v) ? "true" : "false");
      });
    } else {
      const s = document.querySelector(`input[type=range][data-code="${c.name}"]`);
      const special = typeof v === "string";
      s.disabled = special;
      if (!special) s.value = String(v);
      document.querySelector(`.value[data-code="${c.name}"]`).textContent = special ? v : fmt(v);
      document.querySelectorAll(`.toggles[data-code="${c.name}"] button`).forEach((b) =>
        b.classList.toggle("on", b.dataset.value === v));
    }
  }
  const rowsOf = card.codes.find((c) => state.codes[c.name] === "rows");
  $("#rows").disabled = !!rowsOf;
  $("#seed").value = String(state.seed);
  $("#rows").value = String(state.rows);
  $("#cols").value = String(state.cols);
}

function codeControl(c) {
  const head = el("div", { class: "code-head" }, el("span", { class: "code-name", text: c.name }),
    c.label ? el("span", { class: "code-label", text: c.label }) : null,
    el("span", { class: "code-token", text: c.token }));
  const statLine = el("div", { class: "code-stats" });
  if (c.L_I !== null && c.L_I !== undefined) {
    const frac = c.H ? Math.max(0, Math.min(1, c.L_I / c.H)) : 0;
    statLine.append(`L_I ${fmt(c.L_I)}`, el("span", { class: "mi-bar", title: "L_I / H(c)" },
      el("i", { style: `width:${(frac * 100).toFixed(0)}%` })), `/ ${fmt(c.H)} nats`);
  }
  if (c.accuracy !== null && c.accuracy !== undefined) statLine.append(` · acc. ${(c.accuracy * 100).toFixed(0)}%`);
  if (c.factor) statLine.append(` · follows ${c.factor}` + (c.factor_nmi != null ? ` (NMI ${fmt(c.factor_nmi)})` : ""));
  const box = el("div", { class: "code", "data-code": c.name }, head, statLine);
  if (c.discrete) {
    const picker = el("div", { class: "picker", "data-code": c.name, role: "group", "aria-label": `${c.name} category` });
    const add = (value, text, title, thumb) => picker.append(el("button", { type: "button", "data-code": c.name,
      "data-value": String(value), title, onclick: () => setCode(c.name, value) },
      thumb ? el("img", { class: "thumb", src: thumb, alt: "" }) : null, text));
    add("random", "random", "drawn from the prior for each sample");
    if (c.k <= 32) for (let i = 0; i < c.k; i++) add(i, String(i), `${c.name} = ${i}`, c.examples && c.examples[i]);
    add("rows", "all as rows", "one row per category (the paper's figure 2a)");
    box.append(picker);
    if (c.k > 32) {
      const num = el("input", { type: "number", min: "0", max: String(c.k - 1), step: "1", "data-code": c.name });
      num.addEventListener("change", () => setCode(c.name, parseInt(num.value, 10)));
      box.append(num);
    }
  } else {
    const [lo, hi] = c.span;
    const wrap = el("div", { class: "slider-wrap" });
    if (c.train_range) {
      const [a, b] = c.train_range;
      const left = ((a - lo) / (hi - lo)) * 100, width = ((b - a) / (hi - lo)) * 100;
      wrap.append(el("div", { class: "band", title: `training range ${fmt(a)} to ${fmt(b)}`,
                              style: `left:${left}%;width:${width}%` }));
    }
    const slider = el("input", { type: "range", min: String(lo), max: String(hi), step: String((hi - lo) / 400),
      value: String(c.default), "data-code": c.name, "aria-label": `${c.name}${c.label ? " " + c.label : ""}` });
    slider.addEventListener("input", () => setCode(c.name, parseFloat(slider.value)));
    const ticks = el("div", { class: "ticks" });
    const marks = [lo, hi].concat(c.train_range || []);
    for (const t of marks) ticks.append(el("span", { class: t === lo ? "first" : t === hi ? "last" : "",
      style: `left:${((t - lo) / (hi - lo)) * 100}%`, text: fmt(t, Number.isInteger(t) ? 0 : 1) }));
    wrap.append(slider, ticks);
    box.append(el("div", { class: "slider-row" }, wrap, el("span", { class: "value", "data-code": c.name })));
    const toggles = el("div", { class: "toggles", "data-code": c.name });
    for (const [value, text, title] of [["random", "random", "drawn from the prior for each sample"],
                                        ["sweep", "sweep columns", "the columns sweep this code across the span (figure 2c)"]])
      toggles.append(el("button", { type: "button", "data-value": value, text, title,
        onclick: () => setCode(c.name, state.codes[c.name] === value ? c.default : value) }));
    const num = (t) => String(Number(t.toFixed(2)));
    if (c.train_range) toggles.append(el("span", { class: "legend", title: "the shaded band: the values the code took in training",
      text: `shaded: trained on ${num(c.train_range[0])} to ${num(c.train_range[1])}` }));
    box.append(toggles);
  }
  return box;
}

function buildCard() {
  const box = $("#card");
  const facts = [["family", card.family], ["recipe", card.recipe], ["step", card.step], ["image", card.image_shape.join(" × ")],
                 ["version", card.version], ["file", card.path]];
  const t = el("table");
  for (const [k, v] of facts) {
    if (v !== "" && v !== null && v !== undefined) t.append(el("tr", {}, el("th", { text: k }), el("td", { text: String(v) })));
  }
  box.replaceChildren();
  if (card.description) box.append(el("p", { class: "muted", text: card.description }));
  box.append(t);
  const ev = el("table", { class: "eval" });
  const withFactors = card.codes.some((c) => c.factor);
  ev.append(el("tr", {}, ...["code", "", "L_I", "H(c)", "acc."].concat(withFactors ? ["factor (NMI)"] : [])
    .map((h) => el("th", { text: h }))));
  for (const c of card.codes) {
    ev.append(el("tr", {}, el("td", { text: c.name }), el("td", { class: "muted", text: c.label || "" }),
      el("td", { class: "num", text: fmt(c.L_I) }), el("td", { class: "num", text: fmt(c.H) }),
      el("td", { class: "num", text: c.accuracy != null ? (c.accuracy * 100).toFixed(1) + "%" : "" }),
      withFactors ? el("td", { text: c.factor ? c.factor + (c.factor_nmi != null ? ` (${fmt(c.factor_nmi)})` : "") : "" })
                  : null));
  }
  box.append(el("h2", { text: "Last evaluation" }), ev);
  const s = card.evaluation.summary || {};
  if (typeof s.code_accuracy === "number") box.append(el("div", { class: "muted", text:
    `code accuracy ${(s.code_accuracy * 100).toFixed(1)}% (${s.code_accuracy_code || ""}, categories matched to labels` +
    (s.n_eval_images ? `, ${s.n_eval_images} images)` : ")") }));
  const dis = Object.entries(card.evaluation.disentanglement || {});
  if (dis.length) {
    box.append(el("div", { class: "muted", text: "disentanglement: " + dis.map(([k, v]) => `${k} ${fmt(v)}`).join(" · ") }));
  }
  const d1 = el("details", {}, el("summary", { text: "the recipe" }), el("pre", { text: JSON.stringify(card.config, null, 2) }));
  const d2 = el("details", {}, el("summary", { text: "the evaluation (JSON)" }),
    el("pre", { text: JSON.stringify(card.evaluation.full, null, 2) }));
  box.append(d1, d2);
}

async function readImage(file) {
  const box = $("#reading");
  box.replaceChildren(el("div", { class: "muted", text: `reading ${file.name || "the image"}…` }));
  const fd = new FormData();
  fd.append("image", file, file.name || "image");
  try {
    const r = await api("/api/read", { method: "POST", body: fd });
    const q = await r.json();
    const seen = el("div", { class: "seen" }, el("img", { src: q.seen, alt: "the image as Q saw it" }),
      el("div", { class: "note" }, el("div", { text: `${file.name || "image"} (${q.format} ${q.size.join("×")})` }),
        el("div", { text: q.steps.join("; ") })));
    box.replaceChildren(seen);
    box.dataset.file = file.name || "";
    for (const c of card.codes) {
      const d = q.codes[c.name];
      const title = el("div", { class: "cont" }, el("b", { text: c.name }), c.label ? ` ${c.label}` : "");
      if (c.discrete) {
        title.append(`: Q reads ${d.top} (${(d.probs[d.top] * 100).toFixed(0)}%)`);
        const bars = el("div", { class: "bars", "data-code": c.name, "data-top": String(d.top) });
        d.probs.forEach((p, i) => {
          const cls = i === d.top ? "top" : "";
          const ex = c.examples && c.examples[i];
          bars.append(el("span", { class: "cat " + cls, title: ex ? `category ${i}, as the model draws it` : "" },
              ex ? el("img", { class: "thumb", src: ex, alt: "" }) : null, String(i)),
            el("span", { class: "bar " + cls }, el("i", { style: `width:${(p * 100).toFixed(1)}%` })),
            el("span", { class: cls, text: (p * 100).toFixed(1) + "%" }));
        });
        box.append(title, bars);
      } else {
        title.append(`: mean ${fmt(d.mean)}` + (d.std != null ? ` ± ${fmt(d.std)}` : ""));
        title.dataset.code = c.name; title.dataset.mean = String(d.mean);
        box.append(title);
      }
    }
    const use = el("button", { type: "button", text: "set the codes to this reading", onclick: () => {
      for (const c of card.codes) {
        const d = q.codes[c.name];
        state.codes[c.name] = c.discrete ? d.top : Math.max(c.span[0], Math.min(c.span[1], d.mean));
      }
      syncControls(); scheduleRender();
    } });
    box.append(use);
  } catch (e) {
    box.replaceChildren(el("div", { class: "error", text: e.message }));
  }
}

function writeHash() {
  const parts = [`seed=${state.seed}`, `rows=${state.rows}`, `cols=${state.cols}`];
  for (const [k, v] of Object.entries(state.codes)) parts.push(`${encodeURIComponent(k)}=${encodeURIComponent(v)}`);
  history.replaceState(null, "", "#" + parts.join("&"));
}

function readHash() {
  const h = new URLSearchParams(location.hash.slice(1));
  for (const k of ["seed", "rows", "cols"]) if (h.has(k) && /^[0-9]+$/.test(h.get(k))) state[k] = parseInt(h.get(k), 10);
  for (const c of card.codes) if (h.has(c.name)) {
    const v = h.get(c.name);
    if (["random", "rows", "sweep"].includes(v)) state.codes[c.name] = v;
    else if (Number.isFinite(parseFloat(v))) state.codes[c.name] = parseFloat(v);
  }
}

async function start() {
  try {
    card = await (await api("/api/model")).json();
  } catch (e) { showError(e.message); return; }
  document.title = `genzoo explore · ${card.title}`;
  const mt = $("#model-title");
  mt.replaceChildren(el("b", { text: card.title }), el("span", { class: "tag", text: card.family }),
    el("span", { class: "tag", text: `step ${card.step}` }));
  for (const id of ["#rows", "#cols"]) {
    for (let i = 1; i <= card.limits.max_side; i++) $(id).append(el("option", { value: String(i), text: String(i) }));
  }
  for (const c of card.codes) state.codes[c.name] = c.default;
  const first = card.codes.find((c) => c.discrete);
  if (first && first.k <= card.limits.max_side) state.codes[first.name] = "rows";
  readHash();
  const box = $("#codes");
  if (!card.codes.length) {
    box.append(el("div", { class: "muted", text: "this model has no codes: only the noise can be turned" }));
  }
  for (const c of card.codes) box.append(codeControl(c));
  buildCard();
  if (!card.can_read) {
    $("#drop").classList.add("disabled");
    $("#reading").replaceChildren(el("div", { class: "muted", text: card.read_problem }));
  }
  $("#seed").addEventListener("change", () => {
    const v = parseInt($("#seed").value, 10);
    if (Number.isInteger(v) && v >= 0 && v <= card.limits.max_seed) { state.seed = v; scheduleRender(); }
    else showError(`the seed is a whole number from 0 to ${card.limits.max_seed}`);
  });
  $("#new-noise").addEventListener("click", () => {
    state.seed = Math.floor(Math.random() * 1e9);
    syncControls();
    scheduleRender();
  });
  $("#rows").addEventListener("change", () => { state.rows = parseInt($("#rows").value, 10); scheduleRender(); });
  $("#cols").addEventListener("change", () => { state.cols = parseInt($("#cols").value, 10); scheduleRender(); });
  const drop = $("#drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault(); drop.classList.remove("over");
    const f = e.dataTransfer && e.dataTransfer.files && e.dataTransfer.files[0];
    if (f) readImage(f);
  });
  $("#file").addEventListener("change", () => { const f = $("#file").files[0]; if (f) readImage(f); $("#file").value = ""; });
  syncControls();
  render();
}

document.addEventListener("DOMContentLoaded", start);
"""
