"""Self-describing safetensors checkpoints. No pickle anywhere.

A model file holds weights (``safetensors.torch.save_model``, which handles tied tensors) and
string metadata under ``genzoo.*`` keys, each a JSON value where it is not a plain string:

=====================  ===========================================================
``genzoo.format``      ``"1"``
``genzoo.version``     the package version that wrote the file
``genzoo.family``      the family name, looked up in the plugin registry (never imported by path)
``genzoo.plugin``      the plugin that registered the family, and where it came from (for messages)
``genzoo.model``       the family's ``[model]`` settings (JSON; files of 0.1.0 call it ``genzoo.arch``)
``genzoo.codes``       the CodeSet (JSON)
``genzoo.modules``     the submodules stored (JSON list); ``export`` leaves out D's head
``genzoo.recipe``      the recipe name
``genzoo.config``      the resolved recipe (JSON)
``genzoo.image_shape`` ``[C, H, W]`` (JSON)
``genzoo.value_range`` ``[0, 1]`` (JSON): pixel values of ``sample()``
``genzoo.step``        the training step
``genzoo.metrics``     the last eval metrics (JSON)
=====================  ===========================================================

The training state for ``--resume`` (optimizer moments, step, every RNG state) is a second
safetensors file, ``train_state.safetensors``: tensors plus JSON scalars in its metadata.
Every write goes to a temporary file in the same folder, then ``os.replace``: a crash never
leaves a half-written file under the final name.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any, Mapping

import torch
from safetensors.torch import load_file, load_model, save_file, save_model
from torch import nn

from . import __version__
from .codes import CodeSet
from .config import settings_from_table, settings_table
from .errors import UserError
from .io import atomic_write

FORMAT_VERSION = "1"
MAX_HEADER_BYTES = 16 * 1024 * 1024   # a safetensors header beyond this is refused, unread
MAX_METADATA_VALUE = 4 * 1024 * 1024  # bytes per metadata value
REQUIRED = ("genzoo.format", "genzoo.family", "genzoo.codes", "genzoo.modules", "genzoo.image_shape")


def model_metadata(model, modules, config: Mapping | None = None, step: int = 0,
                   metrics: Mapping | None = None, plugin: str = "") -> dict[str, str]:
    config = dict(config or {})
    settings = model.settings if isinstance(model.settings, Mapping) else settings_table(model.settings)
    return {
        "genzoo.format": FORMAT_VERSION,
        "genzoo.version": __version__,
        "genzoo.family": model.family,
        "genzoo.plugin": plugin,
        "genzoo.model": json.dumps(settings, sort_keys=True),
        "genzoo.codes": model.codes.to_json(),
        "genzoo.modules": json.dumps(list(modules)),
        "genzoo.recipe": str(config.get("name", "")),
        "genzoo.config": json.dumps(config, sort_keys=True, default=str),
        "genzoo.image_shape": json.dumps(list(model.image_shape)),
        "genzoo.value_range": json.dumps([0, 1]),
        "genzoo.step": str(int(step)),
        "genzoo.metrics": json.dumps(dict(metrics or {}), sort_keys=True),
    }


def _unwrap(model):
    return getattr(model, "module", model)  # DistributedDataParallel


def save_model_file(path: str | Path, model, full: bool = True, config: Mapping | None = None,
                    step: int = 0, metrics: Mapping | None = None, plugin: str = "") -> Path:
    """Write ``model`` (its ``full_modules`` or ``export_modules``) with metadata, atomically.
    ``plugin`` names the plugin that provides the family (``registry.provider("family", name)``)."""
    model = _unwrap(model)
    modules = model.full_modules if full else model.export_modules
    view = nn.ModuleDict({m: getattr(model, m) for m in modules})
    meta = model_metadata(model, modules, config, step, metrics, plugin)
    # force_contiguous: a model trained in channels_last holds NHWC weights; the file holds them in order
    return atomic_write(path, lambda tmp: save_model(view, str(tmp), metadata=meta, force_contiguous=True))


# -- reading -------------------------------------------------------------------------------------
def find_model_file(path: str | Path) -> Path:
    """The model file for a run folder (``model.safetensors``, else ``checkpoint.safetensors``) or
    a file path, checked to exist."""
    p = Path(path)
    if p.is_dir():
        for name in ("model.safetensors", "checkpoint.safetensors"):
            if (p / name).is_file():
                return p / name
        raise UserError(f"{str(path)!r} holds no model.safetensors or checkpoint.safetensors")
    if not p.exists():
        raise UserError(f"{str(path)!r} does not exist")
    return p


def read_header(path: str | Path) -> tuple[dict, dict[str, str]]:
    """The safetensors header and its metadata, checked before anything else is read."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{str(path)!r} does not exist")
    if not path.is_file():
        raise UserError(f"{str(path)!r} is not a file")
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise UserError(f"{str(path)!r} is not a safetensors checkpoint: only {size} bytes (truncated?)")
        (n,) = struct.unpack("<Q", head)
        if n > MAX_HEADER_BYTES:
            raise UserError(f"{str(path)!r} is not a usable safetensors checkpoint: its header claims "
                            f"{n} bytes (limit {MAX_HEADER_BYTES}); refusing to read it")
        if n > size - 8:
            raise UserError(f"{str(path)!r} is truncated or not a safetensors file: its header claims "
                            f"{n} bytes but the file has {size - 8} after the length")
        raw = f.read(n)
    try:
        header = json.loads(raw.decode("utf-8"))
        if not isinstance(header, dict):
            raise ValueError("header is not a JSON object")
    except (UnicodeDecodeError, ValueError):
        raise UserError(f"{str(path)!r} is not a safetensors checkpoint: its header is not valid JSON") from None
    data_len = size - 8 - n
    for key, entry in header.items():
        if key == "__metadata__":
            continue
        offs = entry.get("data_offsets") if isinstance(entry, dict) else None
        if (not isinstance(offs, list) or len(offs) != 2 or not all(isinstance(o, int) for o in offs)
                or not 0 <= offs[0] <= offs[1]):
            raise UserError(f"{str(path)!r} is not a valid safetensors file: bad entry for tensor {key!r}")
        if offs[1] > data_len:
            raise UserError(f"{str(path)!r} is truncated: tensor {key!r} ends at byte {offs[1]} of the data, "
                            f"which has {data_len}")
    meta = header.get("__metadata__") or {}
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise UserError(f"{str(path)!r}: its metadata is not a string-to-string map")
    for k, v in meta.items():
        if len(v) > MAX_METADATA_VALUE:
            raise UserError(f"{str(path)!r}: metadata {k!r} is {len(v)} bytes (limit {MAX_METADATA_VALUE})")
    return header, meta


def _json_field(path: Path, meta: Mapping[str, str], key: str, default: Any = None) -> Any:
    if key not in meta:
        return default
    try:
        return json.loads(meta[key])
    except ValueError:
        raise UserError(f"{str(path)!r}: metadata {key!r} is not valid JSON") from None


def describe(path: str | Path) -> dict[str, Any]:
    """The parsed ``genzoo.*`` metadata of a model file (no weights are read)."""
    path = Path(path)
    header, meta = read_header(path)
    if "genzoo.format" not in meta:
        raise UserError(f"{str(path)!r} is a safetensors file but not a genzoo checkpoint "
                        "(no genzoo.* metadata; written by another program?)")
    missing = [k for k in REQUIRED if k not in meta]
    if missing:
        raise UserError(f"{str(path)!r}: genzoo metadata lacks {', '.join(missing)}")
    if meta["genzoo.format"] != FORMAT_VERSION:
        raise UserError(f"{str(path)!r}: checkpoint format {meta['genzoo.format']!r} is not supported "
                        f"(this version reads {FORMAT_VERSION!r}); upgrade genzoo-infogan")
    info = {
        "path": str(path),
        "family": meta["genzoo.family"],
        "version": meta.get("genzoo.version", ""),
        "plugin": meta.get("genzoo.plugin", ""),
        "recipe": meta.get("genzoo.recipe", ""),
        "model": _json_field(path, meta, "genzoo.model" if "genzoo.model" in meta else "genzoo.arch"),
        "codes_json": meta["genzoo.codes"],
        "modules": _json_field(path, meta, "genzoo.modules"),
        "image_shape": _json_field(path, meta, "genzoo.image_shape"),
        "value_range": _json_field(path, meta, "genzoo.value_range", [0, 1]),
        "config": _json_field(path, meta, "genzoo.config", {}),
        "metrics": _json_field(path, meta, "genzoo.metrics", {}),
        "step": meta.get("genzoo.step", "0"),
        "tensors": {k: v for k, v in header.items() if k != "__metadata__"},
    }
    _json_field(path, meta, "genzoo.codes")
    if not isinstance(info["model"], dict):
        raise UserError(f"{str(path)!r}: genzoo.model (the [model] settings) must be a JSON object")
    if (not isinstance(info["modules"], list) or not info["modules"]
            or not all(isinstance(m, str) for m in info["modules"])):
        raise UserError(f"{str(path)!r}: genzoo.modules must be a JSON list of names")
    shape = info["image_shape"]
    if not (isinstance(shape, list) and len(shape) == 3 and all(isinstance(s, int) and 0 < s <= 4096 for s in shape)):
        raise UserError(f"{str(path)!r}: genzoo.image_shape must be [C, H, W], got {shape!r}")
    if not isinstance(info["metrics"], dict) or not isinstance(info["config"], dict):
        raise UserError(f"{str(path)!r}: genzoo.metrics and genzoo.config must be JSON objects")
    try:
        info["step"] = int(info["step"])
    except ValueError:
        raise UserError(f"{str(path)!r}: genzoo.step must be an integer") from None
    return info


def build_from_info(info: Mapping[str, Any], registry):
    """The model a file's metadata describes, built by its family from the registry (no weights)."""
    path = info["path"]
    fam = registry.families.get(info["family"])
    if fam is None:
        provider = info.get("plugin") or ""
        blocked = provider.split(" ", 1)[0] if provider else ""
        if blocked and blocked in registry.blocked:
            hint = f" It is provided by plugin {provider}, which GENZOO_DISABLE_PLUGINS blocks here."
        elif provider:
            hint = f" It is provided by plugin {provider}: install or register that plugin."
        else:
            hint = " The file does not say which plugin provides it."
        raise UserError(f"{path!r} needs model family {info['family']!r}, which is not installed.{hint} "
                        f"Installed families: {', '.join(sorted(registry.families)) or '(none)'}. "
                        "`genzoo inspect` shows the file's metadata without the family.")
    try:
        codes = CodeSet.from_json(info["codes_json"], registry.code_types)
    except ValueError as e:
        raise UserError(f"{path!r}: its code set cannot be read: {e}") from None
    table = info["model"]
    if hasattr(fam, "upgrade_settings"):  # settings written by an older version of the family
        table = fam.upgrade_settings(dict(table))
    settings = settings_from_table(fam.settings, table, where=f"{path!r}: [model]")
    try:
        model = fam.build(settings, codes, tuple(info["image_shape"]))
    except Exception as e:
        raise UserError(f"{path!r}: family {info['family']!r} cannot build the stated model: "
                        f"{type(e).__name__}: {e}") from None
    unknown = [m for m in info["modules"] if not isinstance(getattr(model, m, None), nn.Module)]
    if unknown:
        raise UserError(f"{path!r}: lists modules {unknown} that family {info['family']!r} does not have")
    return model


def load(path: str | Path, registry, device: str | torch.device = "cpu"):
    """Rebuild a model from a checkpoint file alone: family from the registry, weights, codes.

    The model has ``sample(n, codes=..., seed=...)``, ``encode(x)``, ``traverse(code)``;
    ``model.checkpoint`` holds the file's parsed metadata. (``genzoo_infogan.load(path)`` does the
    same with the installed plugins' registry.)
    """
    info = describe(path)
    model = build_from_info(info, registry)
    view = nn.ModuleDict({m: getattr(model, m) for m in info["modules"]})
    try:
        load_model(view, str(path), strict=True, device="cpu")
    except Exception as e:
        msg = str(e).strip().splitlines()
        raise UserError(f"{str(path)!r}: the weights do not fit the stated model "
                        f"(family {info['family']!r}): {' '.join(msg)[:600]}") from None
    model.to(device).eval()
    model.checkpoint = info
    model.loaded_modules = tuple(info["modules"])
    return model


# -- training state --------------------------------------------------------------------------------
KERNEL_KEYS = ("fused", "foreach")  # how an optimizer runs, not what it has learned
def save_train_state(path: str | Path, optimizers: Mapping[str, torch.optim.Optimizer],
                     scalars: Mapping[str, Any], rng: Mapping[str, torch.Tensor]) -> Path:
    """Optimizer state, RNG states and JSON scalars, as one safetensors file (atomic)."""
    path = Path(path)
    tensors: dict[str, torch.Tensor] = {}
    groups: dict[str, Any] = {}
    for phase, opt in optimizers.items():
        sd = opt.state_dict()
        groups[phase] = sd["param_groups"]
        for idx, st in sd["state"].items():
            for key, val in st.items():
                t = val if torch.is_tensor(val) else torch.tensor(val)
                tensors[f"opt.{phase}.{idx}.{key}"] = t.detach().cpu().contiguous()
    for key, t in rng.items():
        tensors[f"rng.{key}"] = t.detach().cpu().contiguous()
    meta = {"genzoo.train_state": "1", "param_groups": json.dumps(groups), "scalars": json.dumps(dict(scalars))}
    return atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=meta))


def _match_layouts(opt: torch.optim.Optimizer) -> None:
    """Give each loaded moment its parameter's memory layout (the file holds them in order; a model
    trained in ``channels_last`` has NHWC weights): the fused and foreach Adam kernels pair a
    parameter with its moments element by element in memory, so mismatched layouts would mix them."""
    for p, st in opt.state.items():
        for k, v in st.items():
            if torch.is_tensor(v) and v.shape == p.shape and v.stride() != p.stride():
                st[k] = torch.empty_like(p, dtype=v.dtype).copy_(v)


def load_train_state(path: str | Path, optimizers: Mapping[str, torch.optim.Optimizer]
                     ) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    path = Path(path)
    _, meta = read_header(path)
    if meta.get("genzoo.train_state") != "1":
        raise UserError(f"{str(path)!r} is not a genzoo training state")
    groups = _json_field(path, meta, "param_groups")
    scalars = _json_field(path, meta, "scalars")
    tensors = load_file(str(path))
    for phase, opt in optimizers.items():
        if phase not in groups:
            raise UserError(f"{str(path)!r} has no optimizer state for phase {phase!r}")
        state: dict[int, dict[str, torch.Tensor]] = {}
        prefix = f"opt.{phase}."
        for key, t in tensors.items():
            if key.startswith(prefix):
                idx, name = key[len(prefix):].split(".", 1)
                state.setdefault(int(idx), {})[name] = t
        # the saved moments and rates, with the live optimizer's kernel: a file saved with another
        # device's kernel (or 0.1.0's ``foreach``) resumes on the one this device runs best
        saved = [{**g, **{k: live[k] for k in KERNEL_KEYS if k in live}}
                 for g, live in zip(groups[phase], opt.param_groups)]
        try:
            opt.load_state_dict({"state": state, "param_groups": saved})
        except (ValueError, KeyError) as e:
            raise UserError(f"{str(path)!r}: optimizer state for phase {phase!r} does not fit: {e}") from None
        _match_layouts(opt)
    rng = {k[4:]: t for k, t in tensors.items() if k.startswith("rng.")}
    return scalars, rng
