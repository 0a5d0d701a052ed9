"""Reliability: signals, SIGKILL + resume, non-finite losses, and every bad input through the CLI."""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from genzoo_infogan import hookimpl
from genzoo_infogan.checkpoint import describe
from genzoo_infogan.cli import cli
from genzoo_infogan.engine import Trainer
from genzoo_infogan.errors import TrainingStopped, UserError

GENZOO = [sys.executable, "-m", "genzoo_infogan"]


def write_pngs(folder: Path, n: int = 40, size: int = 28, mode: str = "L") -> Path:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        shape = (size, size) if mode == "L" else (size, size, 3)
        Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8), mode).save(folder / f"{i:03d}.png")
    return folder


def folder_args(folder: Path, *extra: str) -> list[str]:
    """infogan-mnist on a folder of generated 28x28 grey images, small and fast."""
    return ["run", "infogan-mnist", "--set", "data.name=folder", "--set", f"data.path={folder}",
            "--set", "data.channels=1", "--set", "data.size=28", "--set", "train.batch_size=8",
            "--set", "log.sample_every=0", "--set", "log.every=1", "--set", "log.eval_samples=16",
            "--precision", "fp32", "--no-progress", *extra]


def wait_for(pred, timeout=240.0):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if pred():
            return True
        time.sleep(0.2)
    return False


def steps_logged(run: Path) -> list[int]:
    f = run / "metrics.jsonl"
    if not f.exists():
        return []
    return [json.loads(l)["step"] for l in f.read_text().splitlines() if l.strip() and "eval" not in l]


def _env():
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_writes_a_usable_checkpoint(tmp_path, sig, code):
    data = write_pngs(tmp_path / "imgs")
    run = tmp_path / "run"
    p = subprocess.Popen(GENZOO + folder_args(data, "--out", str(run), "--steps", "100000",
                                              "--set", "log.checkpoint_every=0"),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(), text=True)
    try:
        assert wait_for(lambda: len(steps_logged(run)) >= 3), "training did not start"
        p.send_signal(sig)
        out, err = p.communicate(timeout=120)
    finally:
        p.kill()
    assert p.returncode == code, err
    assert "checkpoint saved" in err and "--resume" in err
    info = describe(run / "checkpoint.safetensors")
    assert info["step"] >= 3
    import genzoo_infogan

    assert genzoo_infogan.load(run / "checkpoint.safetensors").sample(2).shape == (2, 1, 28, 28)


def test_sigkill_then_resume_matches_an_uninterrupted_run(tmp_path):
    data = write_pngs(tmp_path / "imgs")
    steps = "60"
    straight = tmp_path / "straight"
    subprocess.run(GENZOO + folder_args(data, "--out", str(straight), "--steps", steps,
                                        "--set", "log.checkpoint_every=10"), check=True, env=_env(),
                   capture_output=True, timeout=600)
    run = tmp_path / "killed"
    p = subprocess.Popen(GENZOO + folder_args(data, "--out", str(run), "--steps", steps,
                                              "--set", "log.checkpoint_every=10"),
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env())
    try:
        assert wait_for(lambda: (run / "train_state.safetensors").exists() and len(steps_logged(run)) >= 13)
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=60)
    finally:
        p.kill()
    assert not (run / "model.safetensors").exists()
    assert describe(run / "checkpoint.safetensors")["step"] >= 10
    res = subprocess.run(GENZOO + ["run", "--resume", str(run), "--no-progress"], env=_env(),
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    assert describe(run / "model.safetensors")["step"] == 60
    assert steps_logged(run) == list(range(1, 61)) == steps_logged(straight)
    assert {p.name for p in run.iterdir()} == {p.name for p in straight.iterdir()}
    from safetensors.torch import load_file

    a, b = load_file(str(straight / "model.safetensors")), load_file(str(run / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


class NaNAt:
    """A loss hook that poisons the G phase of one step (1-based)."""

    def __init__(self, step):
        self.step = step

    @hookimpl
    def loss_terms(self, phase, step):
        if phase == "g" and step == self.step - 1:
            return {"poison": torch.tensor(float("nan"))}
        return None


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, tiny_config, blobs, host):
    cfg = tiny_config("train.steps=10", "log.checkpoint_every=2")
    with host.plugin(NaNAt(5), name="nan"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(TrainingStopped) as e:
            Trainer(cfg, out_dir=tmp_path / "run", device="cpu", progress=False, data=blobs).run()
    msg = str(e.value)
    assert "step 5" in msg and "phase 'g'" in msg and "poison=nan" in msg and e.value.exit_code == 3
    assert "weights of step 4 (before the bad update) are saved" in msg
    assert describe(tmp_path / "run" / "checkpoint.safetensors")["step"] == 4
    assert not (tmp_path / "run" / "model.safetensors").exists()


def test_on_nan_skip_carries_on(tmp_path, tiny_config, blobs, host):
    cfg = tiny_config("train.steps=6", "train.on_nan=skip")
    with host.plugin(NaNAt(3), name="nan"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = Trainer(cfg, out_dir=tmp_path / "run", device="cpu", progress=False, data=blobs).run()
    assert res.step == 6
    assert all(torch.isfinite(p).all() for p in res.model.parameters())
    rows = [json.loads(l) for l in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r.get("skipped") for r in rows if "eval" not in r] == [None, None, 1.0, None, None, None]


def bad_inputs(tmp: Path) -> list[tuple[str, list[str], str]]:
    imgs28 = write_pngs(tmp / "imgs28", 20)
    imgs32 = write_pngs(tmp / "imgs32", 20, size=32, mode="RGB")
    (tmp / "empty").mkdir()
    existing = tmp / "existing"
    existing.mkdir()
    (existing / "model.safetensors").write_bytes(b"precious")
    (tmp / "a-file").write_text("not a folder")
    bad_toml = tmp / "bad.toml"
    bad_toml.write_text("name = 'x'\n[train\n")
    unknown_toml = tmp / "unknown.toml"
    unknown_toml.write_text('name = "u"\nfamily = "infogan"\ncodes = "cat:10"\n[trian]\nsteps = 3\n')
    run = ["run", "infogan-mnist", "--no-progress"]
    return [
        ("unknown recipe", ["run", "infogan-mnits"], "Did you mean 'infogan-mnist'"),
        ("unknown --set key", run + ["--set", "model.noise_dims=10"], "Did you mean 'model.noise_dim'"),
        ("wrong --set type", run + ["--set", "train.steps=ten"], "train.steps takes an integer"),
        ("negative schedule", run + ["--set", "info.cont_start=-5"], "info.cont_start must be 0 or more"),
        ("bad noise std", run + ["--set", "model.noise_std=0", "--out", str(tmp / "o6")], "[model] noise_std must be above 0, got 0.0"),
        ("bad code spec", run + ["--set", "codes=cat:10,uniform:2:1"], "bad code spec 'uniform:2:1'"),
        ("missing dataset path", run + ["--set", "data.name=folder", "--set", f"data.path={tmp / 'nope'}",
                                        "--out", str(tmp / "o1")], "is not a folder"),
        ("empty dataset path", run + ["--set", "data.name=folder", "--set", f"data.path={tmp / 'empty'}",
                                      "--out", str(tmp / "o2")], "holds no images"),
        ("images of the wrong shape", run + ["--set", "data.name=folder", "--set", f"data.path={imgs32}",
                                             "--out", str(tmp / "o3")], "needs 28x28 images"),
        ("existing output folder", folder_args(imgs28, "--out", str(existing)), "exists and is not empty"),
        ("unwritable output folder", folder_args(imgs28, "--out", str(tmp / "a-file" / "run")), "cannot be created"),
        ("device not there", run + ["--device", "cuda", "--out", str(tmp / "o4")], "not available"),
        ("unknown dataset", run + ["--set", "data.name=imagenet"], "unknown dataset 'imagenet'"),
        ("bad TOML", ["run", str(bad_toml)], "is not valid TOML"),
        ("unknown recipe key", ["run", str(unknown_toml)], "unknown recipe key 'trian'"),
        ("resume a non-run", ["run", "--resume", str(tmp / "empty")], "no config.toml"),
        ("batch larger than data", folder_args(imgs28, "--set", "train.batch_size=500", "--out", str(tmp / "o5")),
         "larger than the dataset"),
    ]


def snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))}


def test_every_bad_input_is_one_message_exit_2_and_changes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cases = bad_inputs(tmp_path)
    runner = CliRunner()
    for name, args, message in cases:
        before = snapshot(tmp_path)
        res = runner.invoke(cli, args)
        text = " ".join(res.output.split())
        assert res.exit_code == 2, (name, res.output)
        assert message in text, (name, text)
        assert "Traceback" not in res.output, name
        assert snapshot(tmp_path) == before, f"{name}: files changed"


def test_cli_error_has_no_traceback_in_a_real_process(tmp_path):
    res = subprocess.run(GENZOO + ["run", "infogan-mnits"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    assert "unknown recipe" in res.stderr and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) <= 3


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=300))
def test_header_reader_fuzz_random_bytes(tmp_path_factory, blob):
    p = tmp_path_factory.mktemp("fuzz") / "f.safetensors"
    p.write_bytes(blob)
    try:
        describe(p)
    except UserError as e:
        assert str(e)


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                           lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3),
                           max_leaves=8)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.sampled_from(["genzoo.format", "genzoo.family", "genzoo.model", "genzoo.arch", "genzoo.codes",
                                        "genzoo.modules", "genzoo.image_shape", "genzoo.metrics",
                                        "genzoo.config", "genzoo.step"]),
                       st.one_of(st.text(max_size=20), json_values.map(json.dumps)), max_size=9),
       st.dictionaries(st.text(max_size=6), json_values, max_size=3))
def test_metadata_reader_fuzz(tmp_path_factory, meta, tensors):
    from genzoo_infogan.checkpoint import build_from_info
    from genzoo_infogan.host import get_host

    header = {"__metadata__": meta, **{f"t{k}": v for k, v in tensors.items()}}
    raw = json.dumps(header).encode()
    p = tmp_path_factory.mktemp("fuzz") / "m.safetensors"
    p.write_bytes(struct.pack("<Q", len(raw)) + raw)
    try:
        build_from_info(describe(p), get_host().registry())
    except UserError as e:
        assert str(e)
