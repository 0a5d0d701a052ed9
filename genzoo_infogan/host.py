"""The genzoo plugin host: one pluggy ``PluginManager("genzoo")`` and the registries plugins fill.

Built-in plugins (the modules in ``genzoo_infogan.plugins``) are registered through the same door
as outside plugins, which come from the entry-point group ``genzoo``. A plugin that fails to import
gives one warning naming it and the host carries on. ``GENZOO_DISABLE_PLUGINS=name,...`` blocks
plugins by name (built-in ones too).

Registries are read from the hooks each time they are asked for, so a plugin registered for one
test (``with get_host().plugin(obj): ...``) contributes while it is registered and is gone after.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pluggy

from . import hookspecs

BUILTIN_PLUGINS = (
    "genzoo_infogan.plugins.core",
    "genzoo_infogan.plugins.infocodes",
    "genzoo_infogan.plugins.infogan",
    "genzoo_infogan.plugins.vae",
)
ENTRY_POINT_GROUP = "genzoo"


class PluginWarning(UserWarning):
    """A plugin could not be loaded; the host carried on without it."""


@dataclass
class PluginInfo:
    name: str
    source: str  # "built-in" or "entry point <dist>" or "registered"
    module: str


@dataclass
class DatasetEntry:
    name: str
    loader: Callable[[dict], Any]
    description: str = ""
    plugin: str = ""


@dataclass
class Registered:
    """What each plugin registered, for ``genzoo plugins``."""

    by_plugin: dict[str, list[str]] = field(default_factory=dict)

    def add(self, plugin: str, what: str) -> None:
        self.by_plugin.setdefault(plugin, []).append(what)


def _disabled() -> set[str]:
    return {s.strip() for s in os.environ.get("GENZOO_DISABLE_PLUGINS", "").split(",") if s.strip()}


class Host:
    def __init__(self, load_builtins: bool = True, load_entry_points: bool = True):
        self.pm = pluggy.PluginManager("genzoo")
        self.pm.add_hookspecs(hookspecs)
        self.info: dict[str, PluginInfo] = {}
        self.disabled = _disabled()
        for name in self.disabled:
            self.pm.set_blocked(name)
        if load_builtins:
            for modname in BUILTIN_PLUGINS:
                self._load(modname.rsplit(".", 1)[1], lambda m=modname: importlib.import_module(m), "built-in")
        if load_entry_points:
            for ep in self._entry_points():
                dist = getattr(getattr(ep, "dist", None), "name", None) or "?"
                self._load(ep.name, ep.load, f"entry point ({dist})")

    @staticmethod
    def _entry_points():
        return list(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))

    def _load(self, name: str, loader: Callable[[], Any], source: str) -> None:
        if name in self.disabled:
            return
        try:
            plugin = loader()
            self.pm.register(plugin, name=name)
        except Exception as e:  # a broken plugin must not take the host down
            warnings.warn(f"genzoo: plugin {name!r} ({source}) failed to load and was skipped: "
                          f"{type(e).__name__}: {e}", PluginWarning, stacklevel=2)
            return
        self.info[name] = PluginInfo(name, source, getattr(plugin, "__name__", type(plugin).__name__))

    # -- registering plugins by hand (tests, notebooks) ------------------------------------------
    def register(self, plugin: Any, name: str | None = None) -> str:
        name = self.pm.register(plugin, name=name)
        if name is None:
            raise ValueError(f"plugin {name!r} is blocked by GENZOO_DISABLE_PLUGINS")
        self.info[name] = PluginInfo(name, "registered", getattr(plugin, "__name__", type(plugin).__name__))
        return name

    def unregister(self, name: str) -> None:
        self.pm.unregister(name=name)
        self.info.pop(name, None)

    @contextlib.contextmanager
    def plugin(self, plugin: Any, name: str | None = None):
        """Register ``plugin`` for the duration of a ``with`` block."""
        name = self.register(plugin, name)
        try:
            yield name
        finally:
            self.unregister(name)

    # -- registries -----------------------------------------------------------------------------
    def _collect(self, hook: str, record: Registered | None, describe: Callable[..., str],
                 **kwargs) -> list[tuple[str, tuple]]:
        """Call each implementation of ``hook`` with a ``register`` callback; keep who gave what."""
        out: list[tuple[str, tuple]] = []
        caller = getattr(self.pm.hook, hook)
        # pluggy calls the last registered first; we go in registration order so that a later
        # plugin overrides an earlier one with the same name.
        for impl in reversed(caller.get_hookimpls()):
            def register(*args, _p=impl.plugin_name, **kw):
                out.append((_p, args + tuple(kw.values())))
                if record is not None:
                    record.add(_p, describe(*args, **kw))
            impl.function(**{a: register for a in impl.argnames if a == "register"})
        return out

    def families(self, record: Registered | None = None) -> dict[str, Any]:
        got = self._collect("register_families", record, lambda f: f"family {f.name}")
        return {args[0].name: args[0] for _, args in got}

    def code_types(self, record: Registered | None = None) -> dict[str, type]:
        got = self._collect("register_code_types", record, lambda c: f"code type {c.kind}")
        return {args[0].kind: args[0] for _, args in got}

    def datasets(self, record: Registered | None = None) -> dict[str, DatasetEntry]:
        got = self._collect("register_datasets", record, lambda name, *a, **k: f"dataset {name}")
        return {args[0]: DatasetEntry(args[0], args[1], args[2] if len(args) > 2 else "", p) for p, args in got}

    def recipes(self, record: Registered | None = None) -> dict[str, dict]:
        from .config import load_recipe_source

        def describe(r):
            return f"recipe {r['name'] if isinstance(r, dict) else Path(r).stem}"

        out: dict[str, dict] = {}
        for plugin, args in self._collect("register_recipes", record, describe):
            recipe = load_recipe_source(args[0])
            recipe.setdefault("_plugin", plugin)
            out[recipe["name"]] = recipe
        return out

    def add_commands(self, cli) -> None:
        self.pm.hook.register_commands(cli=cli)

    def loss_terms(self, phase: str, model, outputs: dict, config: dict, step: int = 0) -> dict:
        terms: dict = {}
        for result in self.pm.hook.loss_terms(phase=phase, model=model, outputs=outputs, config=config,
                                              step=step):
            if result:
                terms.update(result)
        return terms

    def plugin_table(self) -> list[tuple[PluginInfo, list[str]]]:
        rec = Registered()
        self.families(rec)
        self.code_types(rec)
        self.datasets(rec)
        self.recipes(rec)
        cmd_hook = self.pm.hook.register_commands
        for impl in cmd_hook.get_hookimpls():
            rec.add(impl.plugin_name, "commands")
        loss_hook = self.pm.hook.loss_terms
        for impl in loss_hook.get_hookimpls():
            rec.add(impl.plugin_name, "loss terms")
        return [(info, rec.by_plugin.get(name, [])) for name, info in self.info.items()]


_HOST: Host | None = None


def get_host() -> Host:
    """The process-wide host, created on first use."""
    global _HOST
    if _HOST is None:
        _HOST = Host()
    return _HOST


def reset_host() -> None:
    """Forget the host (tests use this after changing ``GENZOO_DISABLE_PLUGINS``)."""
    global _HOST
    _HOST = None


def plugin_module_of(family: str) -> str | None:
    """Which installed plugin registers ``family`` (used in 'family not installed' messages)."""
    rec = Registered()
    get_host().families(rec)
    for plugin, things in rec.by_plugin.items():
        if f"family {family}" in things:
            return plugin
    return None

