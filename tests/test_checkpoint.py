"""Self-describing safetensors checkpoints: load, export, sample, traverse, inspect, resume."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file, save_file

import genzoo_infogan
from genzoo_infogan.checkpoint import describe
from genzoo_infogan.cli import cli
from genzoo_infogan.engine import Trainer


def _train(cfg, out, data, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Trainer(cfg, out_dir=out, device="cpu", progress=False, data=data, **kw).run()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """One tiny trained run shared by the tests of this module (they only read it)."""
    from conftest import blob_images, make_tiny_config

    out = tmp_path_factory.mktemp("ckpt") / "run"
    _train(make_tiny_config(), out, blob_images())
    return out


def test_metadata_describes_the_model(run_dir):
    info = describe(run_dir / "model.safetensors")
    assert info["family"] == "infogan" and info["recipe"] == "infogan-mnist"
    assert info["image_shape"] == [1, 28, 28] and info["value_range"] == [0, 1] and info["step"] == 3
    assert info["model"]["noise_dim"] == 62
    assert json.loads(info["codes_json"])[0] == {"name": "c1", "type": "cat", "k": 10}
    assert info["config"]["train"]["steps"] == 3 and "mi" in info["metrics"]
    assert info["version"] == genzoo_infogan.__version__


def test_fresh_process_gives_bit_identical_samples(run_dir, tmp_path):
    model = genzoo_infogan.load(run_dir / "model.safetensors")
    here = model.sample(8, codes={"c1": 3}, seed=5)
    out = tmp_path / "there.safetensors"
    code = (f"import genzoo_infogan, safetensors.torch as st\n"
            f"m = genzoo_infogan.load({str(run_dir / 'model.safetensors')!r})\n"
            f"st.save_file({{'x': m.sample(8, codes={{'c1': 3}}, seed=5).contiguous()}}, {str(out)!r})\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)
    there = load_file(str(out))["x"]
    assert torch.equal(here, there)
    assert not torch.equal(here, model.sample(8, codes={"c1": 4}, seed=5))


def test_load_takes_a_run_folder_as_the_command_line_does(run_dir, tmp_path):
    from_folder = genzoo_infogan.load(run_dir)
    assert torch.equal(from_folder.sample(4, seed=3), genzoo_infogan.load(run_dir / "model.safetensors").sample(4, seed=3))
    with pytest.raises(genzoo_infogan.UserError, match="holds no model.safetensors or checkpoint.safetensors"):
        genzoo_infogan.load(tmp_path)


def test_encode_recovers_the_code_of_samples_shape(run_dir):
    model = genzoo_infogan.load(run_dir / "model.safetensors")
    q = model.encode(model.sample(4, seed=0))
    assert q["c1"]["logits"].shape == (4, 10) and q["c2"]["mean"].shape == (4,)


def test_export_keeps_generator_and_q(run_dir, tmp_path):
    res = CliRunner().invoke(cli, ["export", str(run_dir), "-o", str(tmp_path / "shared.safetensors")])
    assert res.exit_code == 0, res.output
    small = describe(tmp_path / "shared.safetensors")
    assert small["modules"] == ["generator", "trunk", "q_head"]
    assert not any(k.startswith("d_head") for k in small["tensors"])
    full = genzoo_infogan.load(run_dir / "model.safetensors")
    shared = genzoo_infogan.load(tmp_path / "shared.safetensors")
    assert torch.equal(full.sample(6, seed=1), shared.sample(6, seed=1))
    x = full.sample(6, seed=2)
    assert torch.equal(full.encode(x)["c1"]["logits"], shared.encode(x)["c1"]["logits"])
    res = CliRunner().invoke(cli, ["export", str(run_dir), "-o", str(tmp_path / "full.safetensors"), "--full"])
    assert res.exit_code == 0 and "d_head" in describe(tmp_path / "full.safetensors")["modules"]
    res = CliRunner().invoke(cli, ["export", str(tmp_path / "shared.safetensors"), "-o", str(tmp_path / "x.safetensors"), "--full"])
    assert res.exit_code == 2 and "d_head" in res.output


def test_sample_traverse_inspect_commands(run_dir, tmp_path):
    from PIL import Image

    r = CliRunner()
    res = r.invoke(cli, ["sample", str(run_dir / "model.safetensors"), "-n", "16", "--set", "c1=3",
                         "--seed", "0", "-o", str(tmp_path / "grid.png")])
    assert res.exit_code == 0, res.output
    assert Image.open(tmp_path / "grid.png").size == (4 * 30 + 2, 4 * 30 + 2)
    res = r.invoke(cli, ["traverse", str(run_dir), "--code", "c2", "--span", "-2", "2", "--steps", "7",
                         "--rows", "3", "-o", str(tmp_path / "trav.png")])
    assert res.exit_code == 0, res.output
    assert Image.open(tmp_path / "trav.png").size == (7 * 30 + 2, 3 * 30 + 2)
    res = r.invoke(cli, ["inspect", str(run_dir / "model.safetensors")])
    assert res.exit_code == 0
    for text in ("infogan", "c1", "cat:10", "uniform:-1.0:1.0", "2.303", "generator", "q_head"):
        assert text in res.output
    for args, msg in ((["sample", str(run_dir), "--set", "c1=12"], "must be in 0..9"),
                      (["sample", str(run_dir), "--set", "c9=1"], "no code named 'c9'"),
                      (["traverse", str(run_dir), "--code", "c1", "--span", "0", "1"], "continuous codes"),
                      (["traverse", str(run_dir), "--code", "zz"], "no code named 'zz'"),
                      (["sample", str(run_dir), "-o", str(tmp_path / "x.jpg")], "the output must be a .png file")):
        res = r.invoke(cli, args)
        assert res.exit_code == 2 and msg in " ".join(res.output.split()), (args, res.output)


@pytest.mark.parametrize("layout", [(), ("train.channels_last=true",)], ids=["nchw", "channels_last"])
def test_resume_gives_the_weights_of_an_uninterrupted_run(tmp_path, tiny_config, blobs, layout):
    straight = _train(tiny_config("train.steps=6", "model.augment=translate", *layout), tmp_path / "straight", blobs)
    _train(tiny_config("train.steps=3", "model.augment=translate", *layout), tmp_path / "split", blobs)
    resumed = _train(tiny_config("train.steps=6", "model.augment=translate", *layout), tmp_path / "split", blobs,
                     resume=True)
    assert resumed.step == 6
    for (k, a), (_, b) in zip(straight.model.state_dict().items(), resumed.model.state_dict().items()):
        assert torch.equal(a, b), k
    steps = [json.loads(l)["step"] for l in (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()
             if "eval" not in json.loads(l)]
    assert steps == [1, 2, 3, 4, 5, 6]


def _write_header(path: Path, header: dict, data: bytes = b"") -> None:
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)


def bad_files(tmp: Path, good: Path) -> dict[str, tuple[Path, str]]:
    files = {}
    b = good.read_bytes()
    (tmp / "truncated.safetensors").write_bytes(b[: len(b) // 2])
    files["truncated"] = (tmp / "truncated.safetensors", "truncated")
    (tmp / "random.safetensors").write_bytes(os.urandom(4096))
    files["random bytes"] = (tmp / "random.safetensors", "safetensors")
    save_file({"w": torch.zeros(3)}, str(tmp / "other.safetensors"), metadata={"format": "pt"})
    files["another program's file"] = (tmp / "other.safetensors", "not a genzoo checkpoint")
    (tmp / "huge.safetensors").write_bytes(struct.pack("<Q", 2 ** 62) + b"{}")
    files["huge header"] = (tmp / "huge.safetensors", "refusing to read it")
    header = json.loads(b[8: 8 + struct.unpack("<Q", b[:8])[0]])
    header["__metadata__"]["genzoo.model"] = "{not json"
    _write_header(tmp / "badjson.safetensors", header, b[8 + struct.unpack("<Q", b[:8])[0]:])
    files["metadata not JSON"] = (tmp / "badjson.safetensors", "'genzoo.model' is not valid JSON")
    header = json.loads(b[8: 8 + struct.unpack("<Q", b[:8])[0]])
    arch = json.loads(header["__metadata__"]["genzoo.model"])
    arch["noise_dim"] = 30
    header["__metadata__"]["genzoo.model"] = json.dumps(arch)
    _write_header(tmp / "misfit.safetensors", header, b[8 + struct.unpack("<Q", b[:8])[0]:])
    files["weights misfit"] = (tmp / "misfit.safetensors", "do not fit the stated model")
    (tmp / "empty.safetensors").write_bytes(b"")
    files["empty"] = (tmp / "empty.safetensors", "truncated")
    return files


@pytest.mark.parametrize("case", ["truncated", "random bytes", "another program's file", "huge header",
                                  "metadata not JSON", "weights misfit", "empty"])
@pytest.mark.parametrize("command", ["inspect", "sample", "traverse", "eval", "export"])
def test_malformed_files_give_one_clear_error_and_write_nothing(case, command, run_dir, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    path, message = bad_files(bad, run_dir / "model.safetensors")[case]
    out = tmp_path / "out"
    out.mkdir()
    args = {"inspect": ["inspect", str(path)],
            "sample": ["sample", str(path), "-o", str(out / "s.png")],
            "traverse": ["traverse", str(path), "--code", "c2", "-o", str(out / "t.png")],
            "eval": ["eval", str(path)],
            "export": ["export", str(path), "-o", str(out / "e.safetensors")]}[command]
    before = {p: p.read_bytes() for p in bad.iterdir()}
    res = CliRunner().invoke(cli, args)
    if case == "weights misfit" and command == "inspect":
        assert res.exit_code == 0  # inspect reads metadata only; the weights are checked on load
        return
    assert res.exit_code == 2, res.output
    assert message in " ".join(res.output.split()), res.output
    assert "Traceback" not in res.output
    assert list(out.iterdir()) == []
    assert {p: p.read_bytes() for p in bad.iterdir()} == before


def test_family_not_installed_names_family_and_plugin(run_dir, monkeypatch, tmp_path):
    from genzoo_infogan.host import reset_host

    assert describe(run_dir / "model.safetensors")["plugin"] == "infogan (built-in)"
    monkeypatch.setenv("GENZOO_DISABLE_PLUGINS", "infogan")
    reset_host()
    res = CliRunner().invoke(cli, ["sample", str(run_dir / "model.safetensors"), "-o", str(tmp_path / "s.png")])
    assert res.exit_code == 2
    text = " ".join(res.output.split())
    assert "needs model family 'infogan', which is not installed" in text
    assert "plugin infogan (built-in)" in text and "GENZOO_DISABLE_PLUGINS blocks" in text
    assert not (tmp_path / "s.png").exists()
    # inspect reads the metadata of any genzoo file, and says which plugin the family needs
    res = CliRunner(env={"COLUMNS": "200"}).invoke(cli, ["inspect", str(run_dir / "model.safetensors")])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "not installed: provided by plugin infogan (built-in)" in text and "cat:10" in text


def test_eval_json_and_plot(run_dir, tmp_path):
    from PIL import Image

    r = CliRunner()
    res = r.invoke(cli, ["eval", str(run_dir), "--json", "--samples", "300"])
    assert res.exit_code == 0, res.output
    ev = json.loads(res.output)
    assert set(ev["mi"]) == {"c1", "c2", "c3"} and 0.0 <= ev["code_accuracy"] <= 1.0
    assert ev["code_accuracy_code"] == "c1" and ev["entropy"]["c1"] == pytest.approx(2.302585, abs=1e-6)
    assert ev["n_eval_images"] == 300
    res = r.invoke(cli, ["plot", str(run_dir), str(run_dir), "-o", str(tmp_path / "mi.png")])
    assert res.exit_code == 0, res.output
    assert Image.open(tmp_path / "mi.png").size == (720, 440)
    res = r.invoke(cli, ["plot", str(tmp_path), "-o", str(tmp_path / "x.png")])
    assert res.exit_code == 2 and "no metrics.jsonl" in res.output


def test_resume_uses_this_devices_adam_kernel_whatever_the_file_says(tmp_path, tiny_config, blobs):
    from safetensors import safe_open

    _train(tiny_config("train.steps=3"), tmp_path / "run", blobs)
    path = tmp_path / "run" / "train_state.safetensors"
    with safe_open(str(path), "pt") as f:
        meta, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    groups = json.loads(meta["param_groups"])
    assert all(g["fused"] for gs in groups.values() for g in gs)  # saved as trained: fused, on a CPU
    for gs in groups.values():
        for g in gs:
            g["fused"], g["foreach"] = None, True  # as 0.1.0 saved them
    save_file(tensors, str(path), metadata={**meta, "param_groups": json.dumps(groups)})
    tr = Trainer(tiny_config("train.steps=6"), out_dir=tmp_path / "run", device="cpu", progress=False,
                 data=blobs, resume=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tr.run()
    assert tr.step == 6
    assert all(g["fused"] and not g["foreach"] for opt in tr.opts.values() for g in opt.param_groups)
