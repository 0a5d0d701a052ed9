"""Recipes and resolved configs: TOML in, plain dicts inside, ``config.toml`` out.

A recipe is a TOML file (see ``recipes/``). Resolving it merges, in order: the engine's
defaults, the family's settings defaults under ``[model]`` (the family's ``settings`` dataclass),
the recipe, then ``--set key=value`` overrides. An override must name a key that exists after the
merge (dotted, e.g. ``train.lr.g=5e-4``) and carry a value of that key's type; ``codes`` takes a
code spec string. Everything that names a code or a phase is checked against the codes and the
family's phases here, so a run never starts on a recipe that would fail later.

The registry (:class:`~genzoo_infogan.registry.Registry`) that says which families, code types
and recipes exist is passed in; this module never looks for plugins itself.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import sys
import typing
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from .codes import CodeSet
from .errors import UserError, suggest

DEFAULTS: dict[str, Any] = {
    "name": "",
    "family": "",
    "description": "",
    "version": 1,
    "codes": "",
    "seed": 0,
    "data": {
        "name": "mnist",
        "root": "",          # data directory; "" = $GENZOO_DATA or ~/.cache/genzoo/data
        "path": "",          # image folder (dataset "folder")
        "download": True,
        "size": 0,           # image size for folders (0 = 32)
        "channels": 3,       # 3 = colour, 1 = grey (folders)
        "limit": 0,          # use only the first N images (0 = all)
    },
    "model": {},
    "train": {
        "steps": 3000,
        "batch_size": 128,
        "lr": {},            # per phase, e.g. {d = 2e-4, g = 1e-3}
        "phase_repeats": {},  # per phase, times it runs in a step, each on a new real batch: {d = 2}
        "beta1": 0.5,
        "beta2": 0.999,
        "lr_schedule": "constant",  # constant | linear: from lr_decay_start down to 0 at the last step
        "lr_decay_start": 0,  # the step where a linear schedule starts to fall
        "precision": "auto",  # auto | fp32 | bf16
        "on_nan": "stop",     # stop | skip
        "compile": False,
        "channels_last": False,  # convolutions' inputs and weights in NHWC (a faster step with oneDNN on some CPUs)
        "eval_every": 0,      # 0 = only at the end
    },
    "info": {
        "lambda_cat": 1.0,    # weight of each categorical code's L_I
        "lambda_cont": 1.0,   # weight of each continuous code's L_I
        "weights": {},        # per-code overrides, {c2 = 0.5}
        "phase_scale": {},    # per phase multiplier, e.g. {g = 0.0} for a plain GAN
        "cont_start": 0,      # steps before continuous codes' weights start
        "cont_ramp": 0,       # then steps of a linear ramp up to lambda_cont
        "real_balance": 0.0,  # weight of ln k - H(mean Q(c|x_real)) (categorical codes)
        "real_confidence": 0.0,  # weight of mean H(Q(c|x_real)) (categorical codes)
        "confidence_ramp": 0,  # steps over which real_confidence rises linearly from 0
        "real_invariance": 0.0,  # weight of KL(Q(c|x) || Q(c|T(x))), T a small affine map
        "fake_invariance": 0.0,  # weight of categorical codes' L_I with Q reading T(G(z, c))
        "fake_invariance_phase_scale": {},  # per phase multiplier of that term, e.g. {d = 0.0}
        "invariance_batch": 0,  # images of each batch T is applied to (0 = all): a cheaper step
        "real_vat": 0.0,      # weight of KL(Q(c|x) || Q(c|x + r_adv)), r_adv Q's most sensitive shift
        "vat_eps": 2.0,       # L2 length of r_adv, in pixel units (images in [0, 1])
        "real_independence": 0.0,  # weight of the normalised HSIC between Q's readings of continuous codes on real images
        "real_prior": 0.0,  # weight of the MMD between Q's readings of continuous codes on real images and the prior
        # T's ranges: rotation (degrees), scale (1 +- scale), shear (slant), shift (pixels)
        "invariance_affine": {"degrees": 15.0, "scale": 0.1, "shear": 0.15, "translate_px": 2.0},
        "invariance_stroke": 0.0,  # T also thickens or thins strokes, by up to this share of a 3x3 max/min filter
    },
    "log": {
        "every": 50,
        "sample_every": 500,
        "checkpoint_every": 500,
        "eval_samples": 5000,
        "progress": True,
    },
}

# keys here may be added freely
OPEN_TABLES = {"train.lr", "train.phase_repeats", "info.weights", "info.phase_scale", "info.fake_invariance_phase_scale"}


def load_toml(path: Path | str) -> dict:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"recipe file {str(path)!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"cannot read recipe file {str(path)!r}: {e}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"recipe file {str(path)!r} is not valid TOML: {e}") from None


def load_recipe_source(src: dict | str | Path) -> dict:
    """A recipe dict from a dict or a TOML path; the name defaults to the file's stem."""
    if isinstance(src, dict):
        recipe = copy.deepcopy(src)
    else:
        recipe = load_toml(src)
        recipe.setdefault("name", Path(src).stem)
        recipe["_source"] = str(src)
    if "name" not in recipe:
        raise UserError(f"a recipe needs a 'name': {src!r}")
    return recipe


def deep_merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _flat_keys(d: dict, prefix: str = "") -> list[str]:
    keys = []
    for k, v in d.items():
        if k.startswith("_"):
            continue
        key = f"{prefix}{k}"
        keys.append(key)
        if isinstance(v, dict):
            keys.extend(_flat_keys(v, key + "."))
    return keys


def _parse_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text  # a bare string


def _coerce(key: str, old: Any, text: str) -> Any:
    value = _parse_value(text)
    if old is None:
        return value
    if isinstance(old, bool):
        if isinstance(value, bool):
            return value
        want = "true or false"
    elif isinstance(old, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        want = "an integer"
    elif isinstance(old, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
        want = "a finite number"
    elif isinstance(old, str):
        return text if not isinstance(value, str) else value
    elif isinstance(old, list):
        if isinstance(value, list):
            return value
        want = "a list, e.g. [1, 2]"
    elif isinstance(old, dict):
        want = "a table; set its keys one by one (key.sub=value)"
    else:  # pragma: no cover
        return value
    raise UserError(f"--set {key}={text}: {key} takes {want}, got {text!r}")


def apply_overrides(config: dict, overrides: list[str]) -> dict:
    config = copy.deepcopy(config)
    for item in overrides:
        if "=" not in item:
            raise UserError(f"--set {item!r}: expected key=value, e.g. --set train.steps=500")
        key, text = (s.strip() for s in item.split("=", 1))
        parts = key.split(".")
        node = config
        for i, part in enumerate(parts[:-1]):
            if not isinstance(node.get(part), dict):
                raise UserError(f"--set {item!r}: unknown key {key!r}.{suggest(key, _flat_keys(config))}")
            node = node[part]
        last = parts[-1]
        table = ".".join(parts[:-1])
        if last not in node or last.startswith("_"):
            # a family's table setting (model.X = {...}) is open too: the family's settings check it
            if table in OPEN_TABLES or (parts[0] == "model" and len(parts) == 3):
                node[last] = _parse_value(text)
                if not isinstance(node[last], (int, float)) or isinstance(node[last], bool):
                    raise UserError(f"--set {item!r}: {key} takes a number, got {text!r}")
                continue
            raise UserError(f"--set {item!r}: unknown key {key!r}.{suggest(key, _flat_keys(config))}"
                            f" Keys: {', '.join(k for k in _flat_keys(config) if '.' not in k or k.count('.') == 1)}")
        node[last] = _coerce(key, node[last], text)
    return config


def find_recipe(name_or_path: str, registry) -> dict:
    """A recipe by name from the registry, or from a ``.toml`` file."""
    p = Path(name_or_path)
    if name_or_path.endswith(".toml") or p.is_file():
        return load_recipe_source(p)
    return registry.recipe(name_or_path)


def resolve(recipe: dict, registry, overrides: list[str] | None = None) -> dict:
    """Merge defaults, the family's settings defaults, the recipe and the overrides; validate."""
    recipe = expand_extends(recipe, registry)
    recipe = {k: v for k, v in recipe.items() if not k.startswith("_") or k == "_source"}
    source = recipe.pop("_source", None)
    _check_keys(DEFAULTS, recipe, "", source)
    config = deep_merge(DEFAULTS, recipe)
    family = registry.family(config["family"], needed_by=f"recipe {config['name']!r}")
    defaults = settings_table(family.settings())
    _check_keys({"model": defaults}, {"model": recipe.get("model", {})}, "", source)
    config["model"] = deep_merge(defaults, config.get("model", {}))
    config = apply_overrides(config, overrides or [])
    validate(config, registry)
    return config


def expand_extends(recipe: dict, registry, _seen: tuple[str, ...] = ()) -> dict:
    """A recipe with ``extends = "other-recipe"`` is the other recipe merged with its own keys."""
    base_name = recipe.get("extends")
    if not base_name:
        return recipe
    if base_name in _seen:
        raise UserError(f"recipe {recipe.get('name')!r}: 'extends' makes a cycle: {' -> '.join(_seen + (base_name,))}")
    if base_name not in registry.recipes:
        raise UserError(f"recipe {recipe.get('name')!r} extends {base_name!r}, which is not installed."
                        f"{suggest(base_name, registry.recipes)}")
    base = expand_extends(registry.recipes[base_name], registry, _seen + (recipe.get("name", "?"),))
    base = {k: v for k, v in base.items() if not k.startswith("_")}
    child = {k: v for k, v in recipe.items() if k != "extends"}
    return deep_merge(base, child)


# -- a family's [model] settings ----------------------------------------------------------------
def settings_table(settings) -> dict:
    """A settings dataclass as a plain table (what ``config.toml`` and checkpoints store)."""
    return dataclasses.asdict(settings)


def settings_from_table(cls, table: dict, where: str = "[model]"):
    """The family's settings dataclass from a table: unknown keys are refused with the closest
    names, each value must have its field's type, and the dataclass's own checks run."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = [k for k in table if k not in fields]
    if unknown:
        raise UserError(f"{where}: unknown key {unknown[0]!r}.{suggest(unknown[0], fields)} "
                        f"Keys: {', '.join(fields)}")
    hints = typing.get_type_hints(cls)
    values = {}
    for key, value in table.items():
        want = hints.get(key)
        ok = True
        if want is bool:
            ok = isinstance(value, bool)
        elif want is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif want is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            value = float(value) if ok else value
        elif want is str:
            ok = isinstance(value, str)
        if not ok:
            raise UserError(f"{where} {key} takes {getattr(want, '__name__', want)}, got {value!r}")
        values[key] = value
    try:
        return cls(**values)
    except (ValueError, TypeError) as e:
        raise UserError(f"{where} {e}") from None


def _check_keys(defaults: dict, given: dict, prefix: str, source) -> None:
    for k, v in given.items():
        key = f"{prefix}{k}"
        if k not in defaults:
            if prefix.rstrip(".") in OPEN_TABLES:
                continue
            where = f" in {source}" if source else ""
            raise UserError(f"unknown recipe key {key!r}{where}.{suggest(key, _flat_keys(defaults, prefix))}")
        if isinstance(v, dict) and isinstance(defaults[k], dict) and defaults[k]:
            _check_keys(defaults[k], v, key + ".", source)


def validate(config: dict, registry) -> None:
    """Checks the values that the engine relies on, naming the key and what is allowed: the
    family's settings, the codes, and every key that names a code or a phase."""
    family = registry.family(config["family"], needed_by=f"recipe {config['name']!r}")
    settings_from_table(family.settings, config["model"])
    if not isinstance(config["codes"], str):
        raise UserError(f"codes must be a code spec string such as \"cat:10,uniform*2\", got {config['codes']!r}")
    try:
        codes = CodeSet.parse(config["codes"], registry.code_types)
    except ValueError as e:
        raise UserError(f"codes: {e}") from None
    _check_types(DEFAULTS, config, "")
    registry.dataset(config["data"]["name"])
    t = config["train"]
    checks = [
        ("train.steps", t["steps"] >= 1, "at least 1"),
        ("train.batch_size", t["batch_size"] >= 1, "at least 1"),
        ("train.precision", t["precision"] in ("auto", "fp32", "bf16"), "auto, fp32 or bf16"),
        ("train.on_nan", t["on_nan"] in ("stop", "skip"), "stop or skip"),
        ("train.beta1", 0 <= t["beta1"] < 1, "at least 0 and below 1 (Adam's beta1)"),
        ("train.beta2", 0 <= t["beta2"] < 1, "at least 0 and below 1 (Adam's beta2)"),
        ("train.eval_every", t["eval_every"] >= 0, "0 (only at the end) or more"),
        ("train.lr_schedule", t["lr_schedule"] in ("constant", "linear"), "constant or linear"),
        ("train.lr_decay_start", t["lr_decay_start"] >= 0, "0 or more (a step)"),
        ("seed", 0 <= config["seed"] < 2 ** 40, "an integer from 0 to 2^40"),
        ("log.eval_samples", config["log"]["eval_samples"] >= 1, "at least 1"),
        ("data.limit", config["data"]["limit"] >= 0, "0 (all) or more"),
        ("data.size", 0 <= config["data"]["size"] <= 1024, "0 (the data set's own) or a size up to 1024"),
        ("data.channels", config["data"]["channels"] in (1, 3), "1 (grey) or 3 (colour)"),
        ("log.every", config["log"]["every"] >= 1, "at least 1"),
        ("log.sample_every", config["log"]["sample_every"] >= 0, "0 (never) or more"),
        ("log.checkpoint_every", config["log"]["checkpoint_every"] >= 0, "0 (only at the end) or more"),
        ("info.cont_start", config["info"]["cont_start"] >= 0, "0 or more (steps)"),
        ("info.cont_ramp", config["info"]["cont_ramp"] >= 0, "0 or more (steps)"),
        ("info.real_balance", config["info"]["real_balance"] >= 0, "0 (off) or more"),
        ("info.real_confidence", config["info"]["real_confidence"] >= 0, "0 (off) or more"),
        ("info.confidence_ramp", config["info"]["confidence_ramp"] >= 0, "0 or more (steps)"),
        ("info.real_invariance", config["info"]["real_invariance"] >= 0, "0 (off) or more"),
        ("info.fake_invariance", config["info"]["fake_invariance"] >= 0, "0 (off) or more"),
        ("info.invariance_batch", config["info"]["invariance_batch"] >= 0, "0 (the whole batch) or more"),
        ("info.real_vat", config["info"]["real_vat"] >= 0, "0 (off) or more"),
        ("info.vat_eps", config["info"]["vat_eps"] > 0, "above 0 (an L2 length in pixel units)"),
        ("info.real_independence", config["info"]["real_independence"] >= 0, "0 (off) or more"),
        ("info.real_prior", config["info"]["real_prior"] >= 0, "0 (off) or more"),
        ("info.invariance_stroke", 0 <= config["info"]["invariance_stroke"] <= 1, "between 0 (off) and 1"),
        ("info.invariance_affine.degrees", 0 <= config["info"]["invariance_affine"]["degrees"] <= 180,
         "between 0 and 180"),
        ("info.invariance_affine.scale", 0 <= config["info"]["invariance_affine"]["scale"] < 1,
         "at least 0 and below 1"),
        ("info.invariance_affine.shear", config["info"]["invariance_affine"]["shear"] >= 0, "0 or more"),
        ("info.invariance_affine.translate_px", config["info"]["invariance_affine"]["translate_px"] >= 0,
         "0 or more (pixels)"),
    ]
    for key, ok, want in checks:
        if not ok:
            raise UserError(f"{key} must be {want}")
    phases = list(family.phases)

    def number(v) -> bool:
        return not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v)

    # the tables keyed by phase: each key must be one of the family's phases, each value fit
    per_phase = [("train.lr", t["lr"], lambda v: number(v) and v > 0, "a positive number"),
                 ("train.phase_repeats", t["phase_repeats"],
                  lambda v: not isinstance(v, bool) and isinstance(v, int) and 1 <= v <= 100,
                  "a whole number from 1 to 100"),
                 *((f"info.{name}", config["info"][name], number, "a number")
                   for name in ("phase_scale", "fake_invariance_phase_scale"))]
    for key, table, fits, want in per_phase:
        for phase, value in table.items():
            if phase not in phases:
                raise UserError(f"{key}.{phase}: family {config['family']!r} has no phase {phase!r}."
                                f"{suggest(phase, phases)} Phases: {', '.join(phases)}")
            if not fits(value):
                raise UserError(f"{key}.{phase} must be {want}, got {value!r}")
        if key == "train.lr" and (missing := [p for p in phases if p not in table]):
            raise UserError(f"train.lr.{missing[0]} is not set: family {config['family']!r} trains phases "
                            f"{', '.join(phases)} and each needs a learning rate")
    for name, weight in config["info"]["weights"].items():
        if name not in codes:
            raise UserError(f"info.weights.{name}: there is no code {name!r}.{suggest(name, codes.names)} "
                            f"Codes: {', '.join(codes.names) or '(none)'}")
        if not number(weight):
            raise UserError(f"info.weights.{name} must be a number, got {weight!r}")


def _check_types(defaults: dict, config: dict, prefix: str) -> None:
    """Every key the engine defines has a value of its default's type (an integer does for a
    float; floats must be finite)."""
    for key, default in defaults.items():
        if key not in config or key == "model":
            continue
        value, name = config[key], f"{prefix}{key}"
        if isinstance(default, dict):
            if not isinstance(value, dict):
                raise UserError(f"{name} must be a table, got {value!r}")
            if name not in OPEN_TABLES:
                _check_types(default, value, name + ".")
            continue
        if isinstance(default, bool):
            ok, want = isinstance(value, bool), "true or false"
        elif isinstance(default, int):
            ok, want = isinstance(value, int) and not isinstance(value, bool), "an integer"
        elif isinstance(default, float):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            want = "a finite number"
        elif isinstance(default, str):
            ok, want = isinstance(value, str), "a string"
        else:
            ok, want = True, ""
        if not ok:
            raise UserError(f"{name} must be {want}, got {value!r}")


# -- TOML output (config.toml in the run folder) ------------------------------------------------
def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_key(k)} = {_toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def _key(k: str) -> str:
    return k if k.replace("_", "").replace("-", "").isalnum() else json.dumps(k)


def dumps_toml(d: dict) -> str:
    lines: list[str] = []

    def table(node: dict, prefix: str) -> None:
        scalars = {k: v for k, v in node.items() if not (isinstance(v, dict) and v)}
        tables = {k: v for k, v in node.items() if k not in scalars}
        if prefix and scalars:
            lines.append(f"\n[{prefix}]")
        for k, v in scalars.items():
            lines.append(f"{_key(k)} = {_toml_value(v)}")
        for k, v in tables.items():
            table(v, f"{prefix}.{_key(k)}" if prefix else _key(k))

    table(d, "")
    return "\n".join(lines).lstrip("\n") + "\n"


def loads_toml(text: str) -> dict:
    return tomllib.loads(text)
