"""Multi-process training with torch.distributed (gloo on CPU), launched through torchrun."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from test_reliability import write_pngs

HERE = Path(__file__).resolve().parent


@pytest.mark.parametrize("precision,extra", [("fp32", ()), ("bf16", ()), ("fp32", ("train.channels_last=true",))],
                         ids=["fp32", "bf16", "channels_last"])  # bf16: autocast and the kept weight copies
def test_two_ranks_hold_identical_weights_and_write_one_run_folder(tmp_path, precision, extra):
    data = write_pngs(tmp_path / "imgs", 64)
    dump = tmp_path / "dump"
    dump.mkdir()
    runs = tmp_path / "out"
    runs.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                          "--standalone", str(HERE / "ddp_worker.py"),
                          str(runs / "run"), str(data), str(dump), precision, *extra],
                         capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    a, b = load_file(str(dump / "rank0.safetensors")), load_file(str(dump / "rank1.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    saved = load_file(str(runs / "run" / "model.safetensors"))
    assert saved and all(torch.equal(saved[k], a[k]) for k in saved)  # rank 0 saved these weights
    assert [p.name for p in runs.iterdir()] == ["run"]  # one run folder, written by rank 0 alone
    assert not (tmp_path / "runs").exists()  # and no default run folder from another rank
    assert sorted(p.name for p in (runs / "run").iterdir()) == sorted(
        ["checkpoint.safetensors", "config.toml", "eval.json", "metrics.jsonl", "model.safetensors",
         "samples.png", "traverse_c2.png", "traverse_c3.png", "train_state.safetensors"])
