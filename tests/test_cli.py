"""The command line: messages and exit status for bad input."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from genzoo_infogan import __version__
from genzoo_infogan.cli import cli


def run(*args):
    return CliRunner().invoke(cli, list(args))


def test_version():
    res = run("--version")
    assert res.exit_code == 0 and __version__ in res.output


def test_recipes_table_lists_the_builtin_recipes():
    res = run("recipes")
    assert res.exit_code == 0
    for name in ("infogan-mnist", "gan-mnist", "infogan-folder", "infogan-svhn"):
        assert name in res.output


@pytest.mark.parametrize("args,message", [
    (["run", "infogan-mnsit"], "unknown recipe 'infogan-mnsit'. Did you mean 'infogan-mnist'"),
    (["run", "infogan-mnist", "--set", "train.stpes=5"], "unknown key 'train.stpes'. Did you mean 'train.steps'"),
    (["run", "infogan-mnist", "--set", "train.steps=many"], "train.steps takes an integer, got 'many'"),
    (["run", "infogan-mnist", "--set", "train.batch_size=1.5"], "train.batch_size takes an integer"),
    (["run", "infogan-mnist", "--set", "info.lambda_cat=[1]"], "info.lambda_cat takes a finite number"),
    (["run", "infogan-mnist", "--set", "codes=cat:1"], "codes: bad code spec 'cat:1'"),
    (["run", "infogan-mnist", "--set", "nokey"], "expected key=value"),
    (["run", "infogan-mnist", "--set", "train.precision=fp8"], "train.precision must be auto, fp32 or bf16"),
    (["run", "infogan-mnist", "--device", "cuda:7"], "device 'cuda:7' is not available"),
    (["run", "infogan-mnist", "--device", "tpu"], "unknown device 'tpu'"),
    (["run"], "give a recipe name"),
    (["run", "no-such.toml"], "recipe file 'no-such.toml' does not exist"),
    (["smaple"], "Did you mean 'sample'"),
])
def test_bad_input_is_one_message_and_exit_2(args, message):
    res = run(*args)
    assert res.exit_code == 2, res.output
    assert message in " ".join(res.output.split())
    assert "Traceback" not in res.output


def test_messages_with_brackets_print_as_written(tmp_path):
    # the message names a TOML table, [model], which rich would otherwise read as markup
    res = run("run", "infogan-mnist", "--out", str(tmp_path / "run"), "--steps", "1", "--set", "model.noise=laplace")
    assert res.exit_code == 2, res.output
    text = " ".join(res.output.split())
    assert "[model] noise must be 'gaussian' or 'uniform', got 'laplace'" in text
    assert "Traceback" not in res.output
    assert not (tmp_path / "run").exists()


def test_the_progress_line_keeps_its_essentials_at_80_columns():
    import io

    from rich.console import Console

    from genzoo_infogan.codes import CodeSet
    from genzoo_infogan.engine import make_progress, progress_fields

    buf = io.StringIO()
    console = Console(file=buf, width=80, force_terminal=True, color_system=None, legacy_windows=False)
    progress = make_progress(True, console)
    metrics = {"loss/d_gan": 1.072, "loss/d_info_aug": -2.077, "loss/d_info_real": 0.069, "loss/g_gan": 1.112,
               "L_I/c1": 2.2981, "L_I/c2": 0.51, "L_I/c3": 0.49}
    task = progress.add_task("infogan-mnist", total=3000, completed=0, head="", info="")
    progress.update(task, completed=1500, **progress_fields(metrics, CodeSet.parse("cat:10,uniform*2")))
    console.print(progress.get_renderable())
    lines = [line.rstrip() for line in buf.getvalue().splitlines() if line.strip()]
    top = lines[-2]
    assert len(top) <= 80
    for part in ("infogan-mnist", "1500/3000", "it/s", "L_I c1 2.30"):
        assert part in top, (part, top)
    assert lines[-1].strip().startswith("d_gan 1.072")  # the other readouts, on a line of their own
