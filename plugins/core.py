"""Built-in code types, datasets and recipes."""

from __future__ import annotations

from importlib.resources import files

from genzoo_infogan import hookimpl
from genzoo_infogan.codes import BUILTIN_CODE_TYPES
from genzoo_infogan.data import BUILTIN_DATASETS


@hookimpl
def register_code_types(register):
    for cls in BUILTIN_CODE_TYPES:
        register(cls)


@hookimpl
def register_datasets(register):
    for name, loader, description in BUILTIN_DATASETS:
        register(name, loader, description)


@hookimpl
def register_recipes(register):
    for entry in sorted(files("genzoo_infogan.recipes").iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".toml"):
            register(str(entry))
