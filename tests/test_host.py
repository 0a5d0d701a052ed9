"""The plugin host: registration through hooks, entry points, precedence, broken and disabled plugins."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import inspect
import os
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from genzoo_infogan import UserError, hookimpl, hookspecs
from genzoo_infogan.cli import cli
from genzoo_infogan.host import Host, PluginWarning, get_host, reset_host

from test_codes import Bernoulli  # a code type defined by the tests

ROOT = Path(__file__).resolve().parents[1]


@dataclasses.dataclass(frozen=True)
class ToySettings:
    noise_dim: int = 4


class ToyFamily:
    name = "toy"
    description = "a family that only a test registers"
    phases = ("only",)
    settings = ToySettings

    @staticmethod
    def build(settings, codes, image_shape):  # pragma: no cover - not trained here
        raise AssertionError("not built in this test")


class ToyPlugin:
    @hookimpl
    def register_families(self, register):
        register(ToyFamily())

    @hookimpl
    def register_recipes(self, register):
        register({"name": "toy-recipe", "family": "toy", "description": "a recipe from a test plugin",
                  "codes": "cat:3", "data": {"name": "mnist"}})

    @hookimpl
    def register_datasets(self, register):
        register(name="toy-data", loader=lambda cfg: None, description="given as keywords")

    @hookimpl
    def register_commands(self, cli):
        @cli.command("toy-hello")
        @click.option("--name", default="world")
        def hello(name):
            """Say hello (a command from a test plugin)."""
            click.echo(f"hello {name} from toy")


def test_plugin_registered_for_one_test_contributes_and_is_gone_after(host):
    runner = CliRunner()
    with host.plugin(ToyPlugin(), name="toy"):
        reg = host.registry()
        assert "toy" in reg.families
        assert reg.recipes["toy-recipe"]["family"] == "toy"
        assert reg.provider("family", "toy") == "toy (registered in code)"
        res = runner.invoke(cli, ["toy-hello", "--name", "pytest"])
        assert res.exit_code == 0 and "hello pytest from toy" in res.output
        res = runner.invoke(cli, ["plugins"])
        assert "toy" in res.output and "family toy" in res.output
    assert "toy" not in host.registry().families
    assert "toy-recipe" not in host.registry().recipes
    res = runner.invoke(cli, ["toy-hello"])
    assert res.exit_code == 2 and "No such command" in res.output


def test_register_takes_keyword_arguments(host):
    with host.plugin(ToyPlugin(), name="toy"):
        entry = host.registry().datasets["toy-data"]
    assert entry.name == "toy-data" and entry.description == "given as keywords"


def test_builtin_plugins_register_through_the_hooks(host):
    reg = host.registry()
    assert {"infogan", "vae"} <= set(reg.families)
    assert {"cat", "uniform", "gaussian"} <= set(reg.code_types)
    assert {"mnist", "folder", "svhn", "sprites"} <= set(reg.datasets)
    assert {"infogan-mnist", "gan-mnist", "infogan-folder", "infogan-svhn"} <= set(reg.recipes)
    sources = {info.name: info.source for info, _ in host.plugin_table()}
    assert sources["infogan"] == "built-in" and sources["core"] == "built-in"
    assert reg.provider("family", "infogan") == "infogan (built-in)"


def test_the_registry_is_built_once_and_rebuilt_after_a_change(host):
    assert host.registry() is host.registry()
    before = host.registry()
    with host.plugin(ToyPlugin(), name="toy"):
        assert host.registry() is not before


class LaterRecipe:
    @hookimpl
    def register_recipes(self, register):
        register({"name": "infogan-mnist", "family": "infogan", "description": "an outside plugin's own",
                  "codes": "cat:10", "data": {"name": "mnist"}})


def test_a_later_plugin_replaces_an_earlier_ones_entry_with_a_warning(host):
    with pytest.warns(PluginWarning, match=r"recipe 'infogan-mnist': plugin 'outside' replaces plugin 'core'"):
        with host.plugin(LaterRecipe(), name="outside"):
            reg = host.registry()
            assert reg.recipes["infogan-mnist"]["description"] == "an outside plugin's own"
            assert reg.providers[("recipe", "infogan-mnist")] == "outside"
            table = {info.name: things for info, things in host.plugin_table()}
            assert "recipe infogan-mnist (replaced by outside)" in table["core"]


def test_an_entry_point_plugin_overrides_a_builtin_recipe(monkeypatch):
    monkeypatch.setattr(importlib.metadata, "entry_points",
                        lambda group=None: [FakeEntryPoint("outside", LaterRecipe())] if group == "genzoo" else [])
    with pytest.warns(PluginWarning, match="replaces plugin 'core'"):
        reg = Host().registry()
    assert reg.recipes["infogan-mnist"]["description"] == "an outside plugin's own"


def test_two_entries_of_one_name_in_one_plugin_warn(host):
    class Twice:
        @hookimpl
        def register_datasets(self, register):
            register("twice", lambda cfg: None, "first")
            register("twice", lambda cfg: None, "second")

    with pytest.warns(PluginWarning, match="dataset 'twice': the same plugin registers it twice"):
        with host.plugin(Twice(), name="twice"):
            assert host.registry().datasets["twice"].description == "second"


def test_registering_a_plugin_twice_is_a_clear_error(host):
    plugin = ToyPlugin()
    with host.plugin(plugin, name="toy"):
        with pytest.raises(UserError, match=r"a plugin named 'toy' is already registered \(registered in code\)"):
            host.register(ToyPlugin(), name="toy")
        with pytest.raises(UserError, match="this plugin object is already registered, as 'toy'"):
            host.register(plugin, name="toy2")
    with pytest.raises(UserError, match="no plugin named 'toy' is registered"):
        host.unregister("toy")


class FakeDist:
    name = "genzoo-toy"


class FakeEntryPoint:
    def __init__(self, name, target):
        self.name, self.target, self.dist = name, target, FakeDist()

    def load(self):
        if isinstance(self.target, Exception):
            raise self.target
        return self.target


def test_outside_plugin_found_through_an_entry_point(monkeypatch):
    class BernPlugin:
        @hookimpl
        def register_code_types(self, register):
            register(Bernoulli)

    eps = [FakeEntryPoint("bern", BernPlugin())]
    monkeypatch.setattr(importlib.metadata, "entry_points",
                        lambda group=None: eps if group == "genzoo" else [])
    host = Host()
    assert "bern" in host.registry().code_types
    table = {info.name: (info.source, things) for info, things in host.plugin_table()}
    assert table["bern"][0] == "entry point (genzoo-toy)"
    assert "code type bern" in table["bern"][1]
    with pytest.raises(UserError, match=r"'bern' is already registered \(entry point \(genzoo-toy\)\)"):
        host.register(BernPlugin(), name="bern")


def test_broken_plugin_warns_and_the_host_carries_on(monkeypatch):
    eps = [FakeEntryPoint("broken", ImportError("No module named 'missing_dependency'"))]
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group=None: eps if group == "genzoo" else [])
    with pytest.warns(PluginWarning, match=r"plugin 'broken' \(entry point \(genzoo-toy\)\) failed to load.*missing_dependency"):
        host = Host()
    assert "infogan" in host.registry().families
    assert "broken" not in host.info


def test_disable_plugins_by_name(monkeypatch):
    monkeypatch.setenv("GENZOO_DISABLE_PLUGINS", "infogan, nothing-such")
    reset_host()
    host = get_host()
    assert "infogan" not in host.registry().families
    assert "cat" in host.registry().code_types
    with pytest.raises(UserError, match="plugin 'infogan' is blocked by GENZOO_DISABLE_PLUGINS"):
        host.register(ToyPlugin(), name="infogan")
    res = CliRunner().invoke(cli, ["run", "infogan-mnist", "--steps", "1"])
    assert res.exit_code == 2
    assert "recipe 'infogan-mnist' needs model family 'infogan', which is not installed" in res.output


def test_loss_terms_hook_adds_to_a_phase(host):
    import torch

    from genzoo_infogan.model import PhaseOutput

    class Extra:
        @hookimpl
        def loss_terms(self, phase, outputs):
            outputs.metrics["seen"] = torch.tensor(1.0)
            return {"extra": torch.tensor(2.0)} if phase == "g" else None

    outputs = PhaseOutput(losses={})
    with host.plugin(Extra(), name="extra"):
        reg = host.registry()
        assert "extra" not in reg.loss_terms("d", None, outputs, {})
        terms = reg.loss_terms("g", None, outputs, {})
    assert float(terms["extra"]) == 2.0 and "seen" in outputs.metrics
    assert "extra" not in host.registry().loss_terms("g", None, PhaseOutput(losses={}), {})


HOOKS = [name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
         if hasattr(fn, "genzoo_spec")]


def test_there_are_hooks():
    assert set(HOOKS) == {"register_families", "register_code_types", "register_datasets",
                          "register_recipes", "register_commands", "loss_terms"}


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented_and_tested(hook):
    """Meta-test: a hook without a docstring, a section in the plugin guide, or a test that
    implements it, fails here (datasette's tests/test_docs.py does the same)."""
    doc = inspect.getdoc(getattr(hookspecs, hook)) or ""
    assert len(doc) > 80, f"hook {hook} needs a docstring a plugin author can work from"
    guide = (ROOT / "docs" / "plugins.md").read_text()
    assert f"### {hook}(" in guide, f"hook {hook} has no section in docs/plugins.md"
    this = Path(__file__).resolve()
    tests = list(this.parent.glob("test_*.py"))
    impl_tests = [p for p in tests if f"def {hook}(" in p.read_text() and "@hookimpl" in p.read_text()]
    assert impl_tests, f"hook {hook} has no test plugin implementing it"


@pytest.mark.skipif(shutil.which("genzoo", path=os.path.dirname(sys.executable)) is None,
                    reason="the genzoo script is installed by `make test` (pip install -e .)")
def test_installed_script():
    exe = shutil.which("genzoo", path=os.path.dirname(sys.executable))
    for args, expect in ((["--help"], "genzoo"), (["--version"], "genzoo, version"),
                         (["plugins"], "infogan"), (["recipes"], "infogan-mnist")):
        res = subprocess.run([exe, *args], capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stderr
        assert expect in res.stdout


def test_core_modules_import_without_the_host_or_any_plugin():
    """The import graph goes one way: parsing a spec and building ImageData load no plugin."""
    code = (
        "import sys, torch\n"
        "import genzoo_infogan.codes, genzoo_infogan.config, genzoo_infogan.data, genzoo_infogan.checkpoint\n"
        "import genzoo_infogan.nets, genzoo_infogan.model, genzoo_infogan.losses, genzoo_infogan.qhead\n"
        "from genzoo_infogan.codes import CodeSet\n"
        "from genzoo_infogan.data import ImageData\n"
        "cs = CodeSet.parse('cat:10,uniform*2')\n"
        "assert cs.names == ['c1', 'c2', 'c3']\n"
        "d = ImageData(torch.zeros(2, 1, 28, 28))\n"
        "bad = sorted(m for m in sys.modules if m == 'genzoo_infogan.host' or m.startswith('genzoo_infogan.plugins'))\n"
        "print(bad)\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"
