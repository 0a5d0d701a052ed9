"""Info codes on other models: attach_info_codes (the plugin guide's example) and the VAE variant."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import genzoo_infogan
from genzoo_infogan import attach_info_codes
from genzoo_infogan.cli import cli
from genzoo_infogan.codes import CodeSet
from genzoo_infogan.engine import Trainer
from genzoo_infogan.config import settings_from_table
from genzoo_infogan.plugins.vae import VAEFamily, VAESettings

from conftest import loss_terms

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"


def build_vae(table, codes, image_shape):
    return VAEFamily.build(settings_from_table(VAESettings, table), codes, image_shape)


def guide_example(heading: str) -> str:
    text = GUIDE.read_text()
    section = text.split(f"## {heading}", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert blocks, f"no python example under {heading!r}"
    return blocks[-1]


def test_the_guides_one_phase_example_runs_and_its_l_i_rises(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ns: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exec(compile(guide_example("A one-phase model with info codes"), "docs/plugins.md", "exec"), ns)
    rows = [json.loads(l) for l in (tmp_path / "runs/tiny-codes/metrics.jsonl").read_text().splitlines()]
    li = [r["L_I/c1"] for r in rows if "L_I/c1" in r]
    assert not any("gap_real/c1" in r for r in rows)  # the real-data terms are off by default
    assert li[-1] > li[0] + 0.5, li
    assert ns["result"].eval["mi"]["c1"] > 0.8  # ln 4 = 1.386 at most
    # the family came and went with the plugin; the host and the InfoGAN plugin were not touched
    assert "tiny" not in genzoo_infogan.host.get_host().registry().families
    model = ns["result"].model
    assert hasattr(model, "q_head") and "q_head" in model.export_modules
    # Q's phase offers Q on the real batch for the real-data terms, which then reach Q
    x = torch.rand(8, *model.image_shape)
    out = model.phase_outputs(model.phases[0], x, torch.Generator().manual_seed(0))
    terms = loss_terms(model.phases[0], model, out, {"info": {"real_balance": 1.0}})
    model.zero_grad(set_to_none=True)
    terms["info_real"].backward()
    assert model.q_head.net[0].weight.grad.abs().sum() > 0


def test_attach_refuses_models_that_do_not_declare_features():
    class NoFeatures(torch.nn.Module):
        codes = CodeSet.parse("cat:3")

        def phase_outputs(self, phase, x, rng, step=0):
            return None

        def phase_parameters(self, phase):
            return []

    with pytest.raises(TypeError, match="lacks features, feature_dim"):
        attach_info_codes(NoFeatures())
    with pytest.raises(TypeError, match="GenerativeModel or a family"):
        attach_info_codes(object())


@pytest.mark.parametrize("codes", ["", "c1=cat:10,c2=uniform,c3=gaussian:0:1:fixed"])
def test_vae_shapes_and_objective_terms(codes, host):
    m = build_vae({}, CodeSet.parse(codes), (1, 28, 28))
    x = torch.rand(8, 1, 28, 28)
    out = m.phase_outputs("vae", x, torch.Generator().manual_seed(0))
    want = {"recon", "kl"} | ({"kl_codes"} if codes else set())
    assert set(out.losses) == want
    assert all(torch.isfinite(v) for v in out.losses.values())
    assert m.sample(4, seed=0).shape == (4, 1, 28, 28)
    if codes:
        terms = loss_terms("vae", m, out, {"info": {}})
        assert set(terms) == {"info"}
        terms["info"].backward()
        assert m.decoder[0].weight.grad.abs().sum() > 0 and m.encoder[0].weight.grad.abs().sum() > 0
        assert m.encode(x)["c1"]["logits"].shape == (8, 10)
    else:
        assert out.generated is None and m.encode(x) == {}


def test_vae_kl_codes_is_zero_at_the_prior():
    m = build_vae({}, CodeSet.parse("cat:4,uniform:-1:1"), (1, 28, 28))
    n = 5
    q = {"c1": {"logits": torch.zeros(n, 4)},
         "c2": {"mean": torch.zeros(n), "std": torch.full((n,), 2 / 12 ** 0.5)}}
    _, kl = m._relaxed_codes(q, torch.Generator().manual_seed(0))
    assert abs(float(kl)) < 1e-6


def test_vae_real_data_terms_and_the_kl_decomposition(host):
    import math

    m = build_vae({}, CodeSet.parse("cat:10"), (1, 28, 28))
    x = torch.rand(16, 1, 28, 28)
    out = m.phase_outputs("vae", x, torch.Generator().manual_seed(0))
    terms = loss_terms("vae", m, out, {"info": {"real_balance": 1.0, "real_confidence": 1.0}})
    gap, cond = float(out.metrics["gap_real/c1"]), float(out.metrics["H_real/c1"])
    # E_x KL(Q(c|x) || U) = ln k - mean H(Q): the ELBO's code KL is ln k minus the confidence term
    assert float(out.losses["kl_codes"].detach()) == pytest.approx(math.log(10) - cond, abs=1e-5)
    assert float(terms["info_real"].detach()) == pytest.approx(gap + cond, abs=1e-5)
    # so kl_codes + real_confidence * H_real (gamma = 1, real_confidence = 1) is ln k, constant
    assert "info_real" not in loss_terms("vae", m, out, {"info": {}})


def test_infovae_run_and_the_commands(tmp_path, tiny_config, blobs):
    cfg = tiny_config("train.steps=4", recipe="infovae-mnist")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = Trainer(cfg, out_dir=tmp_path / "vae", device="cpu", progress=False, data=blobs).run()
    run = tmp_path / "vae"
    assert {"model.safetensors", "samples.png", "traverse_c2.png", "traverse_c3.png", "metrics.jsonl"} <= {
        p.name for p in run.iterdir()}
    assert "L_I/c1" in json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
    r = CliRunner()
    assert r.invoke(cli, ["export", str(run), "-o", str(tmp_path / "v.safetensors")]).exit_code == 0
    res = r.invoke(cli, ["inspect", str(tmp_path / "v.safetensors")])
    assert res.exit_code == 0 and "vae" in res.output and "cat:10" in res.output
    assert r.invoke(cli, ["sample", str(tmp_path / "v.safetensors"), "--set", "c1=2", "-o",
                          str(tmp_path / "s.png")]).exit_code == 0
    assert r.invoke(cli, ["traverse", str(tmp_path / "v.safetensors"), "--code", "c2", "-o",
                          str(tmp_path / "t.png")]).exit_code == 0
    loaded = genzoo_infogan.load(tmp_path / "v.safetensors")
    assert torch.equal(loaded.sample(3, seed=1), genzoo_infogan.load(run / "model.safetensors").sample(3, seed=1))


@pytest.mark.parametrize("cat_recon_grad", [True, False])
def test_vae_cat_recon_grad_decides_whether_reconstruction_trains_q(cat_recon_grad):
    m = build_vae({"cat_recon_grad": cat_recon_grad}, CodeSet.parse("cat:10,uniform:-1:1"), (1, 28, 28))
    x = torch.rand(8, 1, 28, 28)
    out = m.phase_outputs("vae", x, torch.Generator().manual_seed(0))
    out.losses["recon"].backward()
    last = m.q_head.net[-1]  # rows 0-9: c1's logits; rows 10-11: c2's mean and std
    assert m.decoder[0].weight.grad.abs().sum() > 0  # the decoder always learns from reconstruction
    assert last.weight.grad[10:].abs().sum() > 0  # and so do continuous codes
    if cat_recon_grad:
        assert last.weight.grad[:10].abs().sum() > 0
    else:  # the decoder reads Q's sample of c1, but c1's logits learn only from the KL and info terms
        assert float(last.weight.grad[:10].abs().sum()) == 0.0
        m.zero_grad(set_to_none=True)
        out = m.phase_outputs("vae", x, torch.Generator().manual_seed(0))
        out.losses["kl_codes"].backward()
        assert last.weight.grad[:10].abs().sum() > 0


def test_a_loss_computed_in_bf16_is_named_once_and_added_in_fp32(tmp_path):
    """The engine runs phases under bf16 autocast; a family whose loss comes back in bf16 hears so."""
    import io

    from rich.console import Console

    console_out = io.StringIO()
    ns: dict = {"__name__": "__main__"}
    code = guide_example("A one-phase model with info codes").replace('"precision": "fp32"', '"precision": "bf16"')
    code = code.replace("moments = (fake.float().mean(0) - x.float().mean(0)).pow(2).sum()",
                        "moments = (fake.bfloat16().mean(0) - x.bfloat16().mean(0)).pow(2).sum()")
    code = code.replace('"steps": 150', '"steps": 3').replace('out_dir="runs/tiny-codes"', f'out_dir={str(tmp_path / "b")!r}')
    code = code.replace("force=True, registry=registry)", "force=True, registry=registry, console=CONSOLE)")
    ns["CONSOLE"] = Console(file=console_out, width=200)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exec(compile(code, "docs/plugins.md", "exec"), ns)
    said = console_out.getvalue()
    assert said.count("loss 'moments' of phase 'g' was computed in torch.bfloat16") == 1, said
    rows = [json.loads(line) for line in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert all(isinstance(r["loss/g_moments"], float) for r in rows if "loss/g_moments" in r)


def test_vae_q_trunk_own_keeps_q_and_the_encoder_apart(host):
    """q_trunk = own: z's KL never reaches Q's trunk (the reconstruction does, through the codes'
    samples, as with a shared trunk), and the info and real-data terms never reach the encoder;
    the trunk is saved with the model."""
    m = build_vae({"q_trunk": "own"}, CodeSet.parse("cat:10,uniform:-1:1"), (1, 28, 28))
    assert "q_trunk" in m.export_modules and "q_trunk" in dict(m.named_children())
    x = torch.rand(8, 1, 28, 28)
    out = m.phase_outputs("vae", x, torch.Generator().manual_seed(0))
    out.losses["kl"].backward()
    assert m.encoder[0].weight.grad.abs().sum() > 0 and m.q_trunk[0].weight.grad is None
    m.zero_grad(set_to_none=True)
    out = m.phase_outputs("vae", x, torch.Generator().manual_seed(0))
    terms = loss_terms("vae", m, out, {"info": {"lambda_cat": 1.0, "real_balance": 1.0, "real_invariance": 1.0}})
    sum(terms.values()).backward()
    assert m.q_trunk[0].weight.grad.abs().sum() > 0 and m.encoder[0].weight.grad is None
    shared = build_vae({}, CodeSet.parse("cat:10"), (1, 28, 28))
    assert not hasattr(shared, "q_trunk") and "q_trunk" not in shared.export_modules
    with pytest.raises(ValueError, match="q_trunk must be shared or own"):
        VAESettings(q_trunk="separate")
