"""The genzoo plugin host: one pluggy ``PluginManager("genzoo")`` whose plugins fill a
:class:`~genzoo_infogan.registry.Registry`.

Built-in plugins (the modules in ``genzoo_infogan.plugins``) are registered through the same door
as outside plugins, which come from the entry-point group ``genzoo``; built-in ones first, then
entry points, then plugins registered in code (``host.register(obj)``). Where two plugins register
a family, code type, dataset or recipe of the same name, **the one registered later wins**, with a
warning that names both: an outside plugin can replace a built-in recipe or family.

A plugin that fails to import gives one warning naming it and the host carries on.
``GENZOO_DISABLE_PLUGINS=name,...`` blocks plugins by name (built-in ones too).

The registry is built once and kept until a plugin is registered or unregistered.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import os
import warnings
from dataclasses import dataclass
from typing import Any, Callable

import pluggy

from . import hookspecs
from .config import load_recipe_source
from .errors import UserError
from .registry import DatasetEntry, LossHook, Registry

BUILTIN_PLUGINS = (
    "genzoo_infogan.plugins.core",
    "genzoo_infogan.plugins.infocodes",
    "genzoo_infogan.plugins.infogan",
    "genzoo_infogan.plugins.vae",
    "genzoo_infogan.plugins.explore",
)
ENTRY_POINT_GROUP = "genzoo"


class PluginWarning(UserWarning):
    """A plugin could not be loaded, or one plugin's entry replaced another's."""


@dataclass
class PluginInfo:
    name: str
    source: str  # "built-in", "entry point (<dist>)" or "registered in code"
    module: str


def disabled_plugins() -> set[str]:
    return {s.strip() for s in os.environ.get("GENZOO_DISABLE_PLUGINS", "").split(",") if s.strip()}


class Host:
    def __init__(self, load_builtins: bool = True, load_entry_points: bool = True):
        self.pm = pluggy.PluginManager("genzoo")
        self.pm.add_hookspecs(hookspecs)
        self.info: dict[str, PluginInfo] = {}
        self.disabled = disabled_plugins()
        self._registry: Registry | None = None
        self._registered: dict[str, list[str]] = {}
        for name in self.disabled:
            self.pm.set_blocked(name)
        if load_builtins:
            for modname in BUILTIN_PLUGINS:
                self._load(modname.rsplit(".", 1)[1], lambda m=modname: importlib.import_module(m), "built-in")
        if load_entry_points:
            for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
                dist = getattr(getattr(ep, "dist", None), "name", None) or "?"
                self._load(ep.name, ep.load, f"entry point ({dist})")

    def _load(self, name: str, loader: Callable[[], Any], source: str) -> None:
        if name in self.disabled:
            return
        try:
            plugin = loader()
            self._register(plugin, name, source)
        except Exception as e:  # a broken plugin must not take the host down
            warnings.warn(f"genzoo: plugin {name!r} ({source}) failed to load and was skipped: "
                          f"{type(e).__name__}: {e}", PluginWarning, stacklevel=2)

    def _register(self, plugin: Any, name: str | None, source: str) -> str:
        name = name or self.pm.get_canonical_name(plugin)
        if name in self.disabled:
            raise UserError(f"plugin {name!r} is blocked by GENZOO_DISABLE_PLUGINS")
        if self.pm.has_plugin(name):
            raise UserError(f"a plugin named {name!r} is already registered ({self.info[name].source}); "
                            "unregister it first or register this one under another name")
        if self.pm.is_registered(plugin):
            raise UserError(f"this plugin object is already registered, as {self.pm.get_name(plugin)!r}")
        self.pm.register(plugin, name=name)
        self.info[name] = PluginInfo(name, source, getattr(plugin, "__name__", type(plugin).__name__))
        self._registry = None
        return name

    # -- registering plugins by hand (tests, notebooks) ------------------------------------------
    def register(self, plugin: Any, name: str | None = None) -> str:
        """Register ``plugin`` (a module or an object with hook implementations); returns its name."""
        return self._register(plugin, name, "registered in code")

    def unregister(self, name: str) -> None:
        if not self.pm.has_plugin(name):
            raise UserError(f"no plugin named {name!r} is registered")
        self.pm.unregister(name=name)
        self.info.pop(name, None)
        self._registry = None

    @contextlib.contextmanager
    def plugin(self, plugin: Any, name: str | None = None):
        """Register ``plugin`` for the duration of a ``with`` block."""
        name = self.register(plugin, name)
        try:
            yield name
        finally:
            self.unregister(name)

    # -- the registry ----------------------------------------------------------------------------
    def registry(self) -> Registry:
        if self._registry is None:
            self._registry = self._build()
        return self._registry

    def _impls(self, hook: str) -> list:
        """A hook's implementations in registration order (pluggy calls them in reverse)."""
        order = {name: i for i, name in enumerate(self.info)}
        impls = getattr(self.pm.hook, hook).get_hookimpls()
        return sorted(impls, key=lambda impl: order.get(impl.plugin_name, len(order)))

    def _build(self) -> Registry:
        tables: dict[str, dict[str, Any]] = {kind: {} for kind in ("family", "code type", "dataset", "recipe")}
        providers: dict[tuple[str, str], str] = {}
        registered: dict[str, list[str]] = {}

        def put(kind: str, name: str, value: Any, plugin: str) -> None:
            if not isinstance(name, str) or not name:
                raise UserError(f"plugin {plugin!r} registered a {kind} without a name")
            old = providers.get((kind, name))
            if old is not None:
                where = "the same plugin registers it twice" if old == plugin else f"plugin {plugin!r} replaces plugin {old!r}'s"
                warnings.warn(f"genzoo: {kind} {name!r}: {where} (the later registration is used)",
                              PluginWarning, stacklevel=4)
            tables[kind][name] = value
            providers[(kind, name)] = plugin
            registered.setdefault(plugin, []).append(f"{kind} {name}")

        def family(plugin):
            def register(family):
                for attr in ("name", "build", "settings", "phases"):
                    if not hasattr(family, attr):
                        raise UserError(f"plugin {plugin!r}: a family needs {attr!r} (see docs/plugins.md)")
                put("family", family.name, family, plugin)
            return register

        def code_type(plugin):
            def register(cls):
                put("code type", getattr(cls, "kind", ""), cls, plugin)
            return register

        def dataset(plugin):
            def register(name, loader, description=""):
                put("dataset", name, DatasetEntry(name, loader, description), plugin)
            return register

        def recipe(plugin):
            def register(recipe):
                r = load_recipe_source(recipe)
                r["_plugin"] = plugin
                put("recipe", r["name"], r, plugin)
            return register

        for hook, make in (("register_families", family), ("register_code_types", code_type),
                           ("register_datasets", dataset), ("register_recipes", recipe)):
            for impl in self._impls(hook):
                impl.function(**{a: make(impl.plugin_name) for a in impl.argnames if a == "register"})
        loss_hooks = tuple(LossHook(impl.plugin_name, impl.function, tuple(impl.argnames))
                           for impl in self._impls("loss_terms"))
        for impl in self._impls("register_commands"):
            registered.setdefault(impl.plugin_name, []).append("commands")
        for hook in loss_hooks:
            registered.setdefault(hook.plugin, []).append("loss terms")
        self._registered = registered
        return Registry(families=tables["family"], code_types=tables["code type"], datasets=tables["dataset"],
                        recipes=tables["recipe"], providers=providers, loss_hooks=loss_hooks,
                        commands=self._add_commands,
                        sources={n: i.source for n, i in self.info.items()}, blocked=frozenset(self.disabled))

    def _add_commands(self, cli) -> None:
        for impl in self._impls("register_commands"):
            impl.function(**{a: cli for a in impl.argnames if a == "cli"})

    def plugin_table(self) -> list[tuple[PluginInfo, list[str]]]:
        """Each plugin with what it registered (for ``genzoo plugins``)."""
        reg = self.registry()
        rows = []
        for name, info in self.info.items():
            things = []
            for what in self._registered.get(name, []):
                kind, _, thing = what.rpartition(" ")
                winner = reg.providers.get((kind, thing)) if kind else None
                things.append(what if winner in (None, name) else f"{what} (replaced by {winner})")
            rows.append((info, things))
        return rows


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


def default_registry() -> Registry:
    """The registry of the installed plugins (built-in and entry points)."""
    return get_host().registry()
