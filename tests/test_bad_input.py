"""Bad input never leaves a traceback or a file (issue #20): the cases users reported, --force,
real divergence, precision, and a fuzzer over the whole command line."""

from __future__ import annotations

import json
import random
import shutil
import struct
import subprocess
import warnings

import pytest
import torch
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import genzoo_infogan
from genzoo_infogan.cli import cli
from genzoo_infogan.engine import Trainer, cpu_description, cpu_supports_bf16, resolve_precision
from genzoo_infogan.host import get_host

from test_reliability import GENZOO, _env, folder_args, snapshot, write_pngs

BF16 = pytest.mark.skipif(not cpu_supports_bf16(), reason="this CPU has no native bf16 (AVX512-BF16 or AMX); "
                          "the default precision here is fp32, which the fp32 variant covers")


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def text(res) -> str:
    return " ".join(res.output.split())


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory):
    """A finished 3-step infogan-folder run on generated images, and its image folder."""
    tmp = tmp_path_factory.mktemp("folder-run")
    imgs = write_pngs(tmp / "imgs", 24, size=32, mode="RGB")
    res = invoke("run", "infogan-folder", "--set", f"data.path={imgs}", "--steps", "3", "--out", str(tmp / "run"),
                 "--set", "train.batch_size=8", "--set", "log.eval_samples=16", "--no-progress", "--precision", "fp32")
    assert res.exit_code == 0, res.output
    return tmp / "run", imgs


# -- the four cases of the issue, with the exact message each gives ---------------------------------
def test_an_unknown_code_in_info_weights_is_refused_before_the_folder(tmp_path):
    res = invoke("run", "infogan-mnist", "--out", str(tmp_path / "run"), "--set", "info.weights.c9=0.5")
    assert res.exit_code == 2, res.output
    assert text(res) == ("error: info.weights.c9: there is no code 'c9'. Did you mean 'c3' or 'c2' or 'c1'? "
                         "Codes: c1, c2, c3")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("setting,message", [
    ("info.contrastive=1.0", "unknown key 'info.contrastive'. Did you mean 'model.contrastive'"),
    ("model.contrastive=-1", "[model] contrastive must be 0 (off) or more, got -1.0"),
])
def test_the_contrastive_weight_is_a_model_setting(tmp_path, setting, message):
    res = invoke("run", "infogan-mnist", "--out", str(tmp_path / "run"), "--set", setting)
    assert res.exit_code == 2, res.output
    assert message in text(res) and "Traceback" not in res.output
    assert not (tmp_path / "run").exists()


def test_a_model_that_fails_to_build_leaves_no_folder(tmp_path):
    res = invoke("run", "infogan-mnist", "--out", str(tmp_path / "run"), "--set", "codes=cat:10",
                 "--set", "model.contrastive=1", "--set", "data.limit=64", "--set", "train.batch_size=16")
    assert res.exit_code == 2, res.output
    assert "the contrastive regulariser needs at least two codes" in text(res)
    assert not (tmp_path / "run").exists()


def test_the_vae_refuses_a_code_it_cannot_reparametrise(tmp_path):
    res = invoke("run", "infovae-mnist", "--out", str(tmp_path / "run"), "--set", "codes=cat:10,angle:180",
                 "--set", "data.limit=64", "--set", "train.batch_size=16")
    assert res.exit_code == 2, res.output
    assert ("the vae family takes categorical codes and continuous codes that Q reads as a Gaussian "
            "(uniform, gaussian); not c2 (angle:180.0)") in text(res) and "Traceback" not in res.output
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("dest,message", [
    ("/proc/x.safetensors", "cannot write '/proc/x.safetensors': No such file or directory"),
    ("{tmp}/no-such-folder/x.safetensors", "folder '{tmp}/no-such-folder' does not exist"),
    ("{tmp}", "File '{tmp}' is a directory"),
    ("{tmp}/x.bin", "'{tmp}/x.bin': the output must be a .safetensors file"),
])
def test_export_to_an_unwritable_place_is_one_message(folder_run, tmp_path, dest, message):
    run, _ = folder_run
    dest, message = dest.format(tmp=tmp_path), message.format(tmp=tmp_path)
    before = snapshot(tmp_path)
    res = invoke("export", str(run), "-o", dest)
    assert res.exit_code == 2, res.output
    assert message in text(res) and "Traceback" not in res.output
    assert snapshot(tmp_path) == before


def test_eval_says_once_when_its_data_cannot_be_loaded(folder_run, tmp_path):
    run, imgs = folder_run
    moved = tmp_path / "moved"
    shutil.copytree(run, moved)
    shutil.move(str(imgs), str(tmp_path / "imgs-elsewhere"))
    try:
        res = invoke("eval", str(moved), "--samples", "16")
        assert res.exit_code == 0, res.output
        said = text(res)
        assert said.count("the data set could not be loaded") == 1
        assert f"data.path '{imgs}' is not a folder" in said and "L_I" in said
        res = invoke("eval", str(moved), "--samples", "16", "--json")
        assert json.loads(res.output[res.output.index("{"):])["notes"][0].startswith("the data set could not")
        res = invoke("eval", str(moved), "--samples", "16", "--set", f"data.path={tmp_path / 'nowhere'}")
        assert res.exit_code == 2 and f"data.path '{tmp_path / 'nowhere'}' is not a folder" in text(res)
    finally:
        shutil.move(str(tmp_path / "imgs-elsewhere"), str(imgs))


@pytest.mark.parametrize("command", ["sample", "traverse", "plot"])
def test_every_writing_command_refuses_an_unwritable_destination(folder_run, tmp_path, command):
    run, _ = folder_run
    args = {"sample": ["sample", str(run)], "traverse": ["traverse", str(run), "--code", "c2"],
            "plot": ["plot", str(run)]}[command]
    res = invoke(*args, "-o", str(tmp_path / "missing" / "x.png"))
    assert res.exit_code == 2 and f"folder '{tmp_path / 'missing'}' does not exist" in text(res)
    res = invoke(*args, "-o", "/proc/x.png")
    assert res.exit_code == 2 and "cannot write '/proc/x.png'" in text(res), res.output


# -- what the fuzzer found, kept as plain cases ------------------------------------------------------
@pytest.mark.parametrize("setting,message", [
    ("train.beta2=-0.3", "train.beta2 must be at least 0 and below 1 (Adam's beta2)"),
    ("train.beta1=1.0", "train.beta1 must be at least 0 and below 1 (Adam's beta1)"),
    ("seed=-1", "seed must be an integer from 0 to 2^40"),
    ("log.eval_samples=0", "log.eval_samples must be at least 1"),
    ("data.channels=2", "data.channels must be 1 (grey) or 3 (colour)"),
    ("train.lr_schedule=cosine", "train.lr_schedule must be constant or linear"),
    ("train.lr_decay_start=-5", "train.lr_decay_start must be 0 or more (a step)"),
    ("info.invariance_batch=-1", "info.invariance_batch must be 0 (the whole batch) or more"),
    ("info.confidence_ramp=-1", "info.confidence_ramp must be 0 or more (steps)"),
    ("info.real_vat=-1", "info.real_vat must be 0 (off) or more"),
    ("info.vat_eps=0", "info.vat_eps must be above 0 (an L2 length in pixel units)"),
    ("info.real_independence=-1", "info.real_independence must be 0 (off) or more"),
    ("info.real_prior=-1", "info.real_prior must be 0 (off) or more"),
    ("info.invariance_stroke=1.5", "info.invariance_stroke must be between 0 (off) and 1"),
    ("info.fake_invariance_phase_scale.e=0", "info.fake_invariance_phase_scale.e: family 'infogan' has no phase 'e'. Phases: d, g"),
    ("info.fake_invariance_phase_scale.g=off",
     "--set 'info.fake_invariance_phase_scale.g=off': info.fake_invariance_phase_scale.g takes a number, got 'off'"),
])
def test_settings_the_fuzzer_found_unchecked(tmp_path, setting, message):
    res = invoke("run", "infogan-mnist", "--out", str(tmp_path / "run"), "--set", setting)
    assert res.exit_code == 2, res.output
    assert f"error: {message}" == text(res)
    assert not (tmp_path / "run").exists()


# -- --force, divergence, precision ------------------------------------------------------------------
def test_force_starts_the_run_afresh(tmp_path):
    imgs = write_pngs(tmp_path / "imgs", 24)
    out = tmp_path / "run"
    assert invoke(*folder_args(imgs, "--out", str(out), "--steps", "4", "--set", "log.checkpoint_every=2",
                               "--set", "log.sample_every=2")).exit_code == 0
    (out / "notes.txt").write_text("the user's own file in the old run")
    res = invoke(*folder_args(imgs, "--out", str(out), "--steps", "2", "--force"))
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "eval" not in r] == [1, 2]  # the old run's lines are gone
    assert not (out / "notes.txt").exists() and not (out / "samples" / "step_000002.png").exists()
    assert genzoo_infogan.load(out / "model.safetensors").checkpoint["step"] == 2
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".run.replaced")]


def test_a_real_divergence_exits_3_with_a_loadable_checkpoint(tmp_path):
    imgs = write_pngs(tmp_path / "imgs", 24)
    out = tmp_path / "run"
    res = subprocess.run(GENZOO + folder_args(imgs, "--out", str(out), "--steps", "30",
                                              "--set", "train.lr.d=1e30", "--set", "train.lr.g=1e30",
                                              "--precision", "auto"),
                         env=_env(), capture_output=True, text=True, timeout=300)
    assert res.returncode == 3, res.stderr
    said = " ".join(res.stderr.split())
    assert "stopped: non-finite loss at step" in said and "Traceback" not in said
    model = genzoo_infogan.load(out / "checkpoint.safetensors")  # the last finite weights
    assert all(torch.isfinite(t).all() for t in model.state_dict().values() if t.is_floating_point())
    assert not (out / "model.safetensors").exists()


def test_finite_loss_with_non_finite_gradients_is_not_stepped(tmp_path, tiny_config, blobs):
    cfg = tiny_config("train.steps=3")
    trainer = Trainer(cfg, out_dir=tmp_path / "run", device="cpu", progress=False, data=blobs)
    trainer._setup()
    before = {k: v.clone() for k, v in trainer.model.generator.state_dict().items()}
    # the G phase's loss stays finite, but its gradient is made infinite on the way back
    hook = trainer.model.generator[0].weight.register_hook(lambda g: g * float("inf"))
    from genzoo_infogan.errors import TrainingStopped

    with pytest.raises(TrainingStopped, match="finite losses but non-finite gradients"):
        trainer.train_step()
    hook.remove()
    after = trainer.model.generator.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before if "running" not in k and "num_batches" not in k)
    assert all(torch.isfinite(p).all() for p in trainer.model.generator.parameters())


def test_resolve_precision():
    cpu = torch.device("cpu")
    assert resolve_precision("fp32", cpu) == "fp32" and resolve_precision("bf16", cpu) == "bf16"
    assert resolve_precision("auto", cpu) == ("bf16" if cpu_supports_bf16() else "fp32")


def test_cpu_description_names_the_first_cpu_and_tolerates_missing_fields():
    two = ("processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 17\n"
           "model name\t: AMD EPYC\nflags\t\t: avx512_bf16\n\n"
           "processor\t: 1\ncpu family\t: 6\nmodel\t\t: 143\nmodel name\t: Intel Xeon\n")
    assert cpu_description(two) == "AMD EPYC, family 25, model 17"
    assert cpu_description("processor\t: 0\nBogoMIPS\t: 50.00\nCPU part\t: 0xd0c\n") == ""  # an ARM board
    assert cpu_description("model name\t: Some CPU\n") == "Some CPU"


@pytest.mark.parametrize("precision", ["fp32", pytest.param("auto", marks=BF16)])
def test_determinism_and_resume_under_each_precision(tmp_path, tiny_config, blobs, precision):
    def train(name, steps, resume=False):
        cfg = tiny_config(f"train.steps={steps}", f"train.precision={precision}", "log.checkpoint_every=2")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return Trainer(cfg, out_dir=tmp_path / name, device="cpu", progress=False, data=blobs,
                           resume=resume).run()

    a, b = train("a", 4), train("b", 4)
    assert a.model.state_dict().keys() == b.model.state_dict().keys()
    assert all(torch.equal(v, b.model.state_dict()[k]) for k, v in a.model.state_dict().items())
    train("split", 2)
    c = train("split", 4, resume=True)
    assert all(torch.equal(v, c.model.state_dict()[k]) for k, v in a.model.state_dict().items())


# -- the fuzzer ---------------------------------------------------------------------------------------
def _recipe_keys() -> list[str]:
    """Every settable key the built-in recipes know, after resolving (model settings included)."""
    from genzoo_infogan.config import find_recipe, resolve

    reg = get_host().registry()
    keys: set[str] = set()
    for name in ("infogan-mnist", "infovae-mnist"):
        cfg = resolve(find_recipe(name, reg), reg, [])

        def walk(d, prefix=""):
            for k, v in d.items():
                if isinstance(v, dict) and v:
                    walk(v, f"{prefix}{k}.")
                elif not k.startswith("_"):
                    keys.add(f"{prefix}{k}")
        walk(cfg)
    return sorted(keys - {"data.root", "data.download", "data.name", "data.path", "train.steps", "log.progress"})


VALUES = st.one_of(st.integers(-3, 300).map(str), st.floats(-5, 5, allow_nan=False).map(lambda f: f"{f:.3g}"),
                   st.sampled_from(["true", "false", "nan", "inf", "-1e999", "\"x\"", "[1, 2]", "{a = 1}", "",
                                    "fp32", "bf16", "auto", "translate", "uniform", "mnist", "cat:3", "gaussian*2",
                                    "c1=cat:5,c2=uniform", "cat:0", "uniform:1:1", "d", "g", "1e-4", "0"]))


@pytest.fixture(scope="module")
def fuzz_data(tmp_path_factory):
    return write_pngs(tmp_path_factory.mktemp("fuzz-data") / "imgs", 16)


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(st.lists(st.tuples(st.sampled_from(_recipe_keys()), VALUES), max_size=3),
       st.sampled_from(["infogan-mnist", "infovae-mnist", "gan-mnist"]), st.integers(1, 2),
       st.sampled_from(["", "cat:3", "uniform*2", "cat:2,gaussian", "c1=cat:4,w=uniform:-2:2:fixed"]))
def test_fuzz_the_run_command(tmp_path_factory, fuzz_data, overrides, recipe, steps, codes):
    out = tmp_path_factory.mktemp("fuzz") / "run"
    args = ["run", recipe, "--out", str(out), "--steps", str(steps), "--no-progress",
            *folder_args(fuzz_data)[2:-3]]  # the folder data set, small batches, no pictures
    if codes:
        args += ["--set", f"codes={codes}"]
    for key, value in overrides:
        args += ["--set", f"{key}={value}"]
    args += ["--set", "log.eval_samples=16", "--set", "train.batch_size=8"]
    res = CliRunner().invoke(cli, args)
    OUTCOMES.append(res.exit_code)
    assert "Traceback" not in res.output and "warn" not in res.output.lower(), (args, res.output)
    if res.exit_code == 3:  # a learning rate the fuzzer drew made training diverge: stopped, state kept
        assert "stopped: non-finite loss" in res.output and (out / "checkpoint.safetensors").exists()
        return
    assert res.exit_code in (0, 2), (args, res.output, res.exception)
    if res.exit_code == 2:
        assert not out.exists(), (args, res.output)
    else:
        assert (out / "model.safetensors").exists()


OUTCOMES: list[int] = []


def test_the_fuzzer_ran_real_trainings_too():
    """Runs after the fuzzer (pytest keeps file order): it must not only have found bad input."""
    assert len(OUTCOMES) >= 10 and OUTCOMES.count(0) >= 3, OUTCOMES


@pytest.fixture(scope="module")
def good_file(folder_run):
    return folder_run[0] / "model.safetensors"


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(st.sampled_from(["flip", "cut", "meta"]), st.integers(0, 10**9), st.sampled_from(
    ["inspect", "sample", "traverse", "eval", "export"]))
def test_fuzz_the_file_commands_on_mutated_checkpoints(tmp_path_factory, good_file, how, seed, command):
    tmp = tmp_path_factory.mktemp("mutant")
    data = bytearray(good_file.read_bytes())
    rng = random.Random(seed)
    (n,) = struct.unpack("<Q", data[:8])
    if how == "flip":
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(len(data))
            data[i] ^= 1 << rng.randrange(8)
    elif how == "cut":
        data = data[:rng.randrange(len(data))]
    else:
        header = json.loads(data[8:8 + n])
        key = rng.choice(sorted(header["__metadata__"]))
        header["__metadata__"][key] = rng.choice(["", "{}", "[]", "null", "-1", "[1, 2, 3]", '{"x": 1}', "zz"])
        raw = json.dumps(header).encode()
        data = bytearray(struct.pack("<Q", len(raw)) + raw) + data[8 + n:]
    bad = tmp / "m.safetensors"
    bad.write_bytes(bytes(data))
    out = tmp / "out"
    out.mkdir()
    args = {"inspect": ["inspect", str(bad)], "sample": ["sample", str(bad), "-n", "4", "-o", str(out / "s.png")],
            "traverse": ["traverse", str(bad), "--code", "c2", "--rows", "2", "-o", str(out / "t.png")],
            "eval": ["eval", str(bad), "--samples", "16"],
            "export": ["export", str(bad), "-o", str(out / "e.safetensors")]}[command]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code in (0, 2), (how, seed, command, res.output, res.exception)
    assert "Traceback" not in res.output
    if res.exit_code == 2:
        assert list(out.iterdir()) == []
