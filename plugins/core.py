"""Built-in code types, datasets and recipes, registered as any plugin would register them."""

from __future__ import annotations

from importlib.resources import files

from genzoo_infogan import hookimpl
from genzoo_infogan.codes import BUILTIN_CODE_TYPES
from genzoo_infogan.data import DATASETS as IMAGE_DATASETS
from genzoo_infogan.sprites import load_sprites


@hookimpl
def register_code_types(register):
    for cls in BUILTIN_CODE_TYPES:
        register(cls)


@hookimpl
def register_datasets(register):
    for name, loader, description in IMAGE_DATASETS:
        register(name, loader, description)
    register("sprites", load_sprites,
             "procedural dSprites: 3 shapes x 6 scales x 40 rotations x 32 x 32 positions (64x64 or 32x32)")


@hookimpl
def register_recipes(register):
    for entry in sorted(files("genzoo_infogan.recipes").iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".toml"):
            register(str(entry))
