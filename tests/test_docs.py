"""The README and the plugin guide: every Python block and every `genzoo` command in them runs."""

from __future__ import annotations

import json
import re
import shlex
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner

from genzoo_infogan.cli import cli

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
GUIDE = (ROOT / "docs" / "plugins.md").read_text()


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, re.S)


def shorter(code: str) -> str:
    """A full-length training in an example becomes a short one: the test checks that it runs."""
    return re.sub(r'"--steps", "\d+"', '"--steps", "20"', code)


def test_the_readme_is_a_page_not_a_log():
    assert len(README.splitlines()) <= 250
    assert "{DEMO_TIME}" not in README and "{EXPLORE}" not in README


@pytest.mark.parametrize("index", range(len(python_blocks(README))))
def test_every_python_block_in_the_readme_runs(index, tmp_path, monkeypatch):
    code = python_blocks(README)[index]
    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exec(compile(shorter(code), "README.md", "exec"), {"__name__": "__main__"})


def readme_commands() -> list[str]:
    """`genzoo` lines of the README's plain code blocks, and `genzoo ...` spans in its text."""
    lines, fence, prose = [], None, []
    for line in README.splitlines():
        if line.startswith("```"):
            fence = None if fence is not None else line[3:].strip()
            continue
        if fence == "" and line.startswith("genzoo "):
            lines.append(line.split("#")[0].strip())
        elif fence is None:
            prose.append(line)
    lines += re.findall(r"`(genzoo [^`]*)`", "\n".join(prose))
    return lines


def test_every_genzoo_command_in_the_readme_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    commands = readme_commands()
    assert any(c.startswith("genzoo run ") for c in commands) and any(c.startswith("genzoo export") for c in commands)
    runner = CliRunner()
    for command in commands:
        args = shlex.split(command)[1:]
        if args[:1] == ["run"] and "--help" not in args:
            args = [a if not (i and args[i - 1] == "--steps") else "20" for i, a in enumerate(args)]
            args += ["--no-progress", "--set", "log.eval_samples=200"]
        if args[:1] == ["eval"]:
            args += ["--samples", "200"]
        if args[:1] == ["explore"]:
            continue  # a server: tests/test_explore.py starts it and drives it in a browser
        res = runner.invoke(cli, args)
        assert res.exit_code == 0, (command, res.output)


def test_the_plugin_guide_has_both_examples():
    assert len(python_blocks(GUIDE)) == 2  # the one-phase one runs in tests/test_attach_vae.py


def test_the_plugin_guide_example_trains_a_two_phase_family(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ns: dict = {"__name__": "__main__"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exec(compile(python_blocks(GUIDE)[-1], "docs/plugins.md", "exec"), ns)
    result, model = ns["result"], ns["model"]
    assert result.eval["mi"]["c1"] > 0.8, result.eval  # ln 4 = 1.386 at most
    rows = [json.loads(line) for line in (tmp_path / "runs/two-phase/metrics.jsonl").read_text().splitlines()]
    assert {"loss/d_gan", "loss/g_gan", "loss/d_info", "loss/g_info", "L_I/c1", "d_real"} <= set(rows[0])
    assert "q_head" in model.export_modules and model.family == "two-phase-gan"
    assert set(model.loaded_modules) == {"generator", "critic", "d_head", "q_head"}
