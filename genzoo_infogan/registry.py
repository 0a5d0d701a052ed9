"""The registry: what the installed plugins provide, as one frozen object.

The host (:mod:`genzoo_infogan.host`) builds a :class:`Registry` from the plugins' hooks; the CLI
and the engine pass it down to :func:`~genzoo_infogan.config.resolve`,
:func:`~genzoo_infogan.checkpoint.load` and :func:`~genzoo_infogan.data.load_dataset`. This module
is plain data: nothing here imports the host or any plugin, so the core can be used (and tested)
with a registry built by hand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Mapping

from .errors import UserError, suggest


@dataclass(frozen=True)
class DatasetEntry:
    name: str
    loader: Callable[[dict], Any]
    description: str = ""


@dataclass(frozen=True)
class LossHook:
    plugin: str
    function: Callable[..., Any]
    argnames: tuple[str, ...]


@dataclass(frozen=True)
class Registry:
    """Families, code types, datasets and recipes by name, each with the plugin that supplied it.

    ``providers[(kind, name)]`` is that plugin's name; ``loss_hooks`` are the ``loss_terms``
    implementations in registration order; ``commands`` adds the plugins' click commands to a group.
    """

    families: Mapping[str, Any] = field(default_factory=dict)
    code_types: Mapping[str, type] = field(default_factory=dict)
    datasets: Mapping[str, DatasetEntry] = field(default_factory=dict)
    recipes: Mapping[str, dict] = field(default_factory=dict)
    providers: Mapping[tuple[str, str], str] = field(default_factory=dict)
    loss_hooks: tuple[LossHook, ...] = ()
    commands: Callable[[Any], None] = lambda cli: None
    sources: Mapping[str, str] = field(default_factory=dict)  # plugin -> where it came from
    blocked: frozenset[str] = frozenset()                      # plugins GENZOO_DISABLE_PLUGINS blocks

    def __post_init__(self) -> None:
        for name in ("families", "code_types", "datasets", "recipes", "providers", "sources"):
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))

    # -- lookups with messages a user can act on -------------------------------------------------
    def family(self, name: str, needed_by: str = ""):
        fam = self.families.get(name)
        if fam is None:
            who = f"{needed_by} needs" if needed_by else "unknown"
            raise UserError(f"{who} model family {name!r}, which is not installed.{suggest(name, self.families)} "
                            f"Installed families: {', '.join(sorted(self.families)) or '(none)'}")
        return fam

    def recipe(self, name: str) -> dict:
        if name not in self.recipes:
            raise UserError(f"unknown recipe {name!r}.{suggest(name, self.recipes)} "
                            f"Recipes: {', '.join(sorted(self.recipes))} (or give a .toml file)")
        return self.recipes[name]

    def dataset(self, name: str) -> DatasetEntry:
        if name not in self.datasets:
            raise UserError(f"unknown dataset {name!r}.{suggest(name, self.datasets)} "
                            f"Installed: {', '.join(sorted(self.datasets))}")
        return self.datasets[name]

    def provider(self, kind: str, name: str) -> str:
        """'plugin (where it came from)' for ``kind`` ``name``, or '' (for checkpoints' metadata)."""
        plugin = self.providers.get((kind, name))
        if plugin is None:
            return ""
        return f"{plugin} ({self.sources.get(plugin, 'registered in code')})"

    # -- hooks -----------------------------------------------------------------------------------
    def loss_terms(self, phase: str, model, outputs, config: dict, step: int = 0) -> dict:
        """Every ``loss_terms`` implementation's terms for this phase, in registration order (a
        later plugin's term of the same name replaces an earlier one's)."""
        kwargs = {"phase": phase, "model": model, "outputs": outputs, "config": config, "step": step}
        terms: dict = {}
        for hook in self.loss_hooks:
            result = hook.function(**{a: kwargs[a] for a in hook.argnames})
            if result:
                terms.update(result)
        return terms
