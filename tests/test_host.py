"""The plugin host: registration through hooks, entry points, broken and disabled plugins."""

from __future__ import annotations

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

from genzoo_infogan import hookimpl, hookspecs
from genzoo_infogan.cli import cli
from genzoo_infogan.host import Host, PluginWarning, get_host, reset_host

from test_codes import Bernoulli  # a code type defined by the tests


class ToyFamily:
    name = "toy"
    description = "a family that only a test registers"

    @staticmethod
    def default_arch():
        return {"noise_dim": 4}

    @staticmethod
    def build(arch, codes, image_shape):  # pragma: no cover - not trained here
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
        register("toy-data", lambda cfg: None, "nothing")

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
        assert "toy" in host.families()
        assert host.recipes()["toy-recipe"]["family"] == "toy"
        assert "toy-data" in host.datasets()
        res = runner.invoke(cli, ["toy-hello", "--name", "pytest"])
        assert res.exit_code == 0 and "hello pytest from toy" in res.output
        res = runner.invoke(cli, ["plugins"])
        assert "toy" in res.output and "family toy" in res.output
    assert "toy" not in host.families()
    assert "toy-recipe" not in host.recipes()
    res = runner.invoke(cli, ["toy-hello"])
    assert res.exit_code == 2 and "No such command" in res.output


def test_builtin_plugins_register_through_the_hooks(host):
    fams = host.families()
    assert "infogan" in fams
    assert {"cat", "uniform", "gaussian"} <= set(host.code_types())
    assert {"mnist", "folder", "svhn"} <= set(host.datasets())
    assert {"infogan-mnist", "gan-mnist", "infogan-folder", "infogan-svhn"} <= set(host.recipes())
    sources = {info.name: info.source for info, _ in host.plugin_table()}
    assert sources["infogan"] == "built-in" and sources["core"] == "built-in"


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
    assert "bern" in host.code_types()
    table = {info.name: (info.source, things) for info, things in host.plugin_table()}
    assert table["bern"][0] == "entry point (genzoo-toy)"
    assert "code type bern" in table["bern"][1]


def test_broken_plugin_warns_and_the_host_carries_on(monkeypatch):
    eps = [FakeEntryPoint("broken", ImportError("No module named 'missing_dependency'"))]
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group=None: eps if group == "genzoo" else [])
    with pytest.warns(PluginWarning, match=r"plugin 'broken' \(entry point \(genzoo-toy\)\) failed to load.*missing_dependency"):
        host = Host()
    assert "infogan" in host.families()
    assert "broken" not in host.info


def test_disable_plugins_by_name(monkeypatch):
    monkeypatch.setenv("GENZOO_DISABLE_PLUGINS", "infogan, nothing-such")
    reset_host()
    host = get_host()
    assert "infogan" not in host.families()
    assert "cat" in host.code_types()
    with pytest.raises(ValueError, match="blocked"):
        host.register(ToyPlugin(), name="infogan")
    res = CliRunner().invoke(cli, ["run", "infogan-mnist", "--steps", "1"])
    assert res.exit_code == 2
    assert "family 'infogan', which is not installed" in res.output


def test_loss_terms_hook_adds_to_a_phase(host):
    import torch

    class Extra:
        @hookimpl
        def loss_terms(self, phase, outputs):
            outputs.setdefault("metrics", {})["seen"] = torch.tensor(1.0)
            return {"extra": torch.tensor(2.0)} if phase == "g" else None

    outputs = {"losses": {}}
    with host.plugin(Extra(), name="extra"):
        assert host.loss_terms("d", None, outputs, {}) == {}
        terms = host.loss_terms("g", None, outputs, {})
    assert float(terms["extra"]) == 2.0 and "seen" in outputs["metrics"]
    assert host.loss_terms("g", None, {"losses": {}}, {}) == {}


HOOKS = [name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
         if hasattr(fn, "genzoo_spec")]


def test_there_are_hooks():
    assert set(HOOKS) == {"register_families", "register_code_types", "register_datasets",
                          "register_recipes", "register_commands", "loss_terms"}


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented_and_tested(hook):
    """Meta-test: a hook without a docstring, or without a test that implements it, fails here."""
    doc = inspect.getdoc(getattr(hookspecs, hook)) or ""
    assert len(doc) > 80, f"hook {hook} needs a docstring a plugin author can work from"
    this = Path(__file__).resolve()
    tests = [p for p in this.parent.glob("test_*.py") if p != this] + [this]
    impl_tests = [p for p in tests
                  if f"def {hook}(" in p.read_text() and "@hookimpl" in p.read_text()]
    assert impl_tests, f"hook {hook} has no test plugin implementing it"
    readme = (this.parents[1] / "README.md").read_text()
    assert hook in readme, f"hook {hook} is not in the README's plugin guide"


@pytest.mark.skipif(shutil.which("genzoo", path=os.path.dirname(sys.executable)) is None,
                    reason="the genzoo script is installed by `make test` (pip install -e .)")
def test_installed_script():
    exe = shutil.which("genzoo", path=os.path.dirname(sys.executable))
    for args, expect in ((["--help"], "genzoo"), (["--version"], "genzoo, version"),
                         (["plugins"], "infogan"), (["recipes"], "infogan-mnist")):
        res = subprocess.run([exe, *args], capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stderr
        assert expect in res.stdout
