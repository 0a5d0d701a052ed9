"""Built-in code types, datasets and recipes, registered as any plugin would register them."""

from __future__ import annotations

from importlib.resources import files

from genzoo_infogan import hookimpl
from genzoo_infogan.codes import BUILTIN_CODE_TYPES
from genzoo_infogan.data import DATASETS as IMAGE_DATASETS
from genzoo_infogan.render3d import DATASETS as RENDER3D_DATASETS
from genzoo_infogan.sprites import DATASETS as SPRITE_DATASETS


@hookimpl
def register_code_types(register):
    for cls in BUILTIN_CODE_TYPES:
        register(cls)


@hookimpl
def register_datasets(register):
    for name, loader, description in (*IMAGE_DATASETS, *SPRITE_DATASETS, *RENDER3D_DATASETS):
        register(name, loader, description)


@hookimpl
def register_recipes(register):
    for entry in sorted(files("genzoo_infogan.recipes").iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".toml"):
            register(str(entry))
