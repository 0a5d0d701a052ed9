"""The procedural 3D data sets (heads3d, chairs3d) and the disentanglement metrics on them.

The metric tests use encoders with known answers that read the factors directly (no rendering):
a perfect one (the standardised factor values) and a random one (noise, independent of the image).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genzoo_infogan import disentangle as dis
from genzoo_infogan import render3d
from genzoo_infogan.codes import CodeSet
from genzoo_infogan.data import ImageData
from genzoo_infogan.errors import UserError
from genzoo_infogan.render3d import Chairs3D, Heads3D, load_chairs3d, load_heads3d

from conftest import build_infogan

H32 = Heads3D(32, cache=False)
C32 = Chairs3D(32, cache=False)
SCENES = {"heads3d": H32, "chairs3d": C32}


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def sweep(scene, k: int, base) -> torch.Tensor:
    f = torch.tensor([list(base)] * scene.factor_sizes[k])
    f[:, k] = torch.arange(scene.factor_sizes[k])
    return f


# -- the factor grids ------------------------------------------------------------------------------
def test_factor_grids_follow_the_protocol():
    assert Heads3D.factor_names == ("azimuth", "elevation", "lighting", "width")
    assert Heads3D.factor_sizes == (19, 7, 9, 7) and Heads3D.categorical == ()
    assert Chairs3D.factor_names == ("style", "azimuth", "back_height", "width")
    assert Chairs3D.factor_sizes == (4, 19, 6, 6) and Chairs3D.categorical == (0,)
    assert len(H32) == 19 * 7 * 9 * 7 and len(C32) == 4 * 19 * 6 * 6
    for scene in SCENES.values():
        assert isinstance(scene, dis.GroundTruth) and dis.check_truth(scene) is scene
        assert scene.image_shape == (1, 32, 32)
    assert Heads3D(64, cache=False).image_shape == (1, 64, 64)
    v = H32.factor_values(torch.tensor([[0, 0, 0, 0], [18, 6, 8, 6], [9, 3, 4, 3]]))
    assert v.dtype == torch.float64
    assert v[0].tolist() == pytest.approx([-90, -30, -80, 0.8]) and v[1].tolist() == pytest.approx([90, 30, 80, 1.25])
    assert v[2, :3].tolist() == pytest.approx([0, 0, 0])
    c = C32.factor_values(torch.tensor([[3, 0, 0, 5]]))
    assert c[0].tolist() == pytest.approx([3, -90, 0.5, 1.2])
    with pytest.raises(ValueError):
        H32.render(torch.tensor([[19, 0, 0, 0]]))
    with pytest.raises(ValueError):
        C32.render(torch.zeros((2, 5), dtype=torch.long))
    with pytest.raises(ValueError):
        C32.render(torch.zeros((2, 4)))           # floats are not grid indices
    with pytest.raises(UserError):
        Heads3D(48)
    with pytest.raises(TypeError, match="render"):
        dis.check_truth(object())


def test_the_grid_index_and_the_sweep():
    f = C32.all_factors()
    assert f.shape == (len(C32), 4) and torch.equal(C32.grid_index(f), torch.arange(len(C32)))
    assert torch.equal(f[C32.grid_index(torch.tensor([[2, 7, 1, 4]]))], torch.tensor([[2, 7, 1, 4]]))
    s = H32.sweep()
    assert s.shape == (4 * 19, 4)
    for k, n in enumerate(H32.factor_sizes):
        row = s[k * 19:(k + 1) * 19]
        assert row[0, k] == 0 and row[-1, k] == n - 1 and len(row[:, k].unique()) == n
        others = [j for j in range(4) if j != k]
        assert (row[:, others] == torch.tensor(H32.sweep_base)[others]).all()


def test_samplers_are_consistent():
    for scene in SCENES.values():
        f = scene.sample_factors(3000, gen(0))
        assert f.shape == (3000, 4) and f.dtype == torch.long
        for k, n in enumerate(scene.factor_sizes):
            assert f[:, k].min() == 0 and f[:, k].max() == n - 1 and len(f[:, k].unique()) == n
        assert torch.equal(f, scene.sample_factors(3000, gen(0)))
        assert not torch.equal(f, scene.sample_factors(3000, gen(1)))
        for k, n in enumerate(scene.factor_sizes):
            for value in (0, n - 1):
                g = scene.sample_fixed(300, k, value, gen(k))
                assert g.shape == (300, 4) and (g[:, k] == value).all()
                assert (g >= 0).all() and (g < torch.tensor(scene.factor_sizes)).all()
                assert all(len(g[:, j].unique()) > 1 for j in range(4) if j != k)
        with pytest.raises(ValueError):
            scene.sample_fixed(5, 1, scene.factor_sizes[1])
        with pytest.raises(ValueError):
            scene.sample_fixed(5, 4, 0)


# -- rendering -------------------------------------------------------------------------------------
def test_rendering_is_deterministic_and_sized():
    for scene in SCENES.values():
        f = scene.sample_factors(40, gen(3))
        a = scene.render(f)
        assert a.shape == (40, 1, 32, 32) and a.dtype == torch.float32
        assert a.min() >= 0 and a.max() <= 1
        assert torch.equal(a, scene.render(f))
        assert torch.equal(a, type(scene)(32, chunk=7, cache=False).render(f))    # batching does not matter
        assert torch.equal(a[5:6], scene.render(f[5:6]))
        assert (a.flatten(1).max(1).values > 0.5).all()                           # the object shows
        assert (a[:, :, :, 0] == 0).all() and (a[:, :, :, -1] == 0).all()          # on a black background
    big = Chairs3D(64, cache=False).render(f[:3])
    assert big.shape == (3, 1, 64, 64)


class FewChairs(Chairs3D):
    """chairs3d on a 4 x 3 x 2 x 2 grid: the cache at a test's cost."""

    factor_sizes = (4, 3, 2, 2)
    grids = (Chairs3D.grids[0], (-90.0, 0.0, 40.0), (0.5, 1.1), (0.6, 1.2))


def test_the_grid_cache_gives_the_same_pixels():
    cached, direct = FewChairs(32), FewChairs(32, cache=False)
    f = cached.sample_factors(5, gen(5))
    assert torch.equal(cached.render(f), direct.render(f)) and cached._table is None   # a few: rendered
    g = cached.sample_factors(len(cached) // 8 + 1, gen(6))   # more than an eighth: the whole grid, once
    a = cached.render(g)
    assert cached._table is not None and cached._table.shape == (48, 1, 32, 32)
    assert torch.equal(a, direct.render(g))
    assert torch.equal(cached.render(f), direct.render(f))     # from then on, every request reads the table
    assert torch.equal(cached._table, direct.render(direct.all_factors()))


@pytest.mark.parametrize("name", ["heads3d", "chairs3d"])
def test_every_factor_value_gives_a_different_image(name):
    scene = SCENES[name]
    for k, n in enumerate(scene.factor_sizes):
        imgs = scene.render(sweep(scene, k, scene.sweep_base)).flatten(1)
        diff = (imgs[:, None] - imgs[None]).abs().amax(-1) + torch.eye(n) * 9
        assert diff.min() > 0.2, scene.factor_names[k]        # every pair differs by a visible pixel


def test_head_factors_do_what_they_say():
    h = H32
    # azimuth: turning left is the mirror image of turning right (the head is symmetric, lit from the front)
    im = h.render(sweep(h, 0, (9, 3, 4, 3)))
    assert (im - im.flip(0).flip(-1)).abs().max() < 1e-5
    assert (im[0] - im[9]).abs().mean() > 0.05
    # width: the silhouette grows
    area = (h.render(sweep(h, 3, (9, 3, 4, 0))) > 0.02).sum(dim=(1, 2, 3))
    assert (area[1:] > area[:-1]).all()
    # lighting: the lit half of the face moves from the left to the right
    im = h.render(sweep(h, 2, (9, 3, 0, 3)))[:, 0]
    balance = im[:, :, :16].mean(dim=(1, 2)) - im[:, :, 16:].mean(dim=(1, 2))
    assert (balance[:4] > 0.03).all() and (balance[5:] < -0.03).all() and abs(balance[4]) < 1e-3
    # elevation: seen from above, more of the (dark) hair on top shows, and the silhouette rises
    im = h.render(sweep(h, 1, (9, 0, 4, 3)))[:, 0]
    mask = (im > 0.02).float()
    brightness = im.sum((1, 2)) / mask.sum((1, 2))
    assert brightness[-1] < brightness[0] - 0.1
    centre = (mask * torch.arange(32.0)[:, None]).sum((1, 2)) / mask.sum((1, 2))
    assert (centre[1:] < centre[:-1]).all()


def test_chair_factors_do_what_they_say():
    c = C32
    # back height: the chair's top row rises (seen from the front)
    im = c.render(sweep(c, 2, (0, 9, 0, 3)))[:, 0]
    top = torch.tensor([int((m.amax(1) > 0.05).nonzero()[0]) for m in im])
    assert (top[1:] < top[:-1]).all()
    # width: wider from the front
    im = c.render(sweep(c, 3, (0, 9, 2, 0)))[:, 0]
    span = (im.amax(1) > 0.05).sum(1)
    assert (span[1:] > span[:-1]).all()
    # azimuth: a wide chair is narrow from the sides, wide from the front; the two sides differ
    im = c.render(sweep(c, 1, (0, 0, 2, 5)))[:, 0]
    span = (im.amax(1) > 0.05).sum(1)
    assert span[9] > span[0] + 4 and span[9] > span[18] + 4
    backs = [int((m > 0.05).float().argmax(0).float().masked_fill((m > 0.05).sum(0) == 0, 99).argmin()) for m in im]
    assert (backs[0] < 16) != (backs[18] < 16)                # the back's column: on opposite sides


# -- the data sets ----------------------------------------------------------------------------------
def test_loaders():
    assert [(name, fn) for name, fn, _ in render3d.DATASETS] == [("heads3d", load_heads3d), ("chairs3d", load_chairs3d)]
    assert all(desc and "\n" not in desc for _, _, desc in render3d.DATASETS)
    for load, cls in ((load_heads3d, Heads3D), (load_chairs3d, Chairs3D)):
        data = load({"size": 32, "limit": 48, "seed": 0})
        assert isinstance(data, ImageData) and data.name == cls.name and data.labels is None
        assert data.images.shape == (48, 1, 32, 32) and data.factors.shape == (48, 4)
        assert isinstance(data.truth, cls) and isinstance(data.truth, dis.GroundTruth)
        assert torch.equal(data.images, data.truth.render(data.factors))
        assert torch.equal(load({"size": 32, "limit": 48}).factors, data.factors)
        assert not torch.equal(load({"size": 32, "limit": 48, "seed": 1}).factors, data.factors)
        assert data.limit(10).truth is data.truth
        assert load({"size": 0, "limit": 2}).image_shape == (1, 32, 32)
        assert load({"size": 64, "limit": 2}).image_shape == (1, 64, 64)
        with pytest.raises(UserError, match="32 or 64"):
            load({"size": 28, "limit": 2})
        with pytest.raises(UserError, match="limit"):
            load({"size": 32, "limit": -3})
        with pytest.raises(UserError, match="integers"):
            load({"size": "big"})


# -- the metrics on encoders with known answers ------------------------------------------------------
def perfect_encoder(scene):
    grid = scene.factor_values(scene.all_factors())
    mean, std = grid.mean(0), grid.std(0)
    return dis.reads_factors(lambda f: (scene.factor_values(f) - mean) / std)


def random_encoder(seed=123, d=4):
    g = gen(seed)
    return dis.reads_factors(lambda f: torch.randn((len(f), d), generator=g))


KW = dict(n=2000, seed=0, n_train_votes=200, n_eval_votes=200, dci_points=200)
CODES = ["c1", "c2", "c3", "c4"]


@pytest.fixture(scope="module")
def reports():
    return {(name, kind): dis.ground_truth_scores(enc, scene, code_names=CODES, **KW)
            for name, scene in SCENES.items()
            for kind, enc in (("perfect", perfect_encoder(scene)), ("random", random_encoder()))}


@pytest.mark.parametrize("name", ["heads3d", "chairs3d"])
def test_a_perfect_encoder_scores_near_one(reports, name):
    r = reports[(name, "perfect")]
    s = r["disentanglement"]
    assert s["mig"] > 0.95 and s["factor_vae"] > 0.95
    assert s["dci_disentanglement"] > 0.95 and s["dci_completeness"] > 0.95 and s["dci_informativeness"] > 0.95
    assert set(s["mig_per_factor"]) == set(SCENES[name].factor_names)
    table = r["code_factors"]
    assert list(table) == CODES
    for code, factor in zip(CODES, SCENES[name].factor_names):
        assert table[code]["factor"] == factor and table[code]["nmi"] > 0.95
        assert table[code]["per_factor"][factor] == table[code]["nmi"]
        assert all(v < 0.05 for f, v in table[code]["per_factor"].items() if f != factor)


@pytest.mark.parametrize("name", ["heads3d", "chairs3d"])
def test_a_random_encoder_scores_near_zero(reports, name):
    s = reports[(name, "random")]["disentanglement"]
    assert s["mig"] < 0.05 and s["dci_disentanglement"] < 0.1
    assert s["factor_vae"] < 0.45                                 # chance: 1/4
    assert s["dci_informativeness"] < 0.3
    assert all(row["nmi"] < 0.05 for row in reports[(name, "random")]["code_factors"].values())


def test_dci_with_boosted_trees():
    rng = np.random.default_rng(0)
    f = np.stack([rng.integers(0, 6, 500), rng.integers(0, 10, 500)], 1)
    # a code per factor, through non-monotone maps a linear regressor could not use, plus a dead code
    codes = np.stack([np.cos(f[:, 0] * 2.1), np.sin(f[:, 1] * 1.3), np.zeros(500)], 1)
    d = dis.dci_from_codes(codes, f)
    assert d["disentanglement"] > 0.95 and d["completeness"] > 0.95 and d["informativeness"] > 0.95
    imp = np.array(d["importance"])
    assert imp.shape == (3, 2) and (imp[2] == 0).all() and imp[0, 0] > 0.95 and imp[1, 1] > 0.95
    mixed = dis.dci_from_codes(np.stack([codes[:, 0] + codes[:, 1], codes[:, 0] - codes[:, 1]], 1), f)
    assert mixed["disentanglement"] < 0.5


def test_normalised_mutual_information():
    f = np.repeat(np.arange(8), 50)[:, None]
    assert dis.normalised_mi(f.astype(float), f)[0, 0] == pytest.approx(1.0)
    assert dis.normalised_mi(np.zeros((400, 1)), f)[0, 0] == pytest.approx(0.0)
    half = dis.normalised_mi((f // 2).astype(float), f)[0, 0]      # 4 bins of 8 values: 2 of 3 bits
    assert half == pytest.approx(2 / 3)
    table = dis.code_factors(np.concatenate([f // 2, f % 2], 1).astype(float), np.concatenate([f, f // 4], 1),
                             ["a", "b"], ["eight", "two"])
    assert table["a"]["factor"] == "two" and table["a"]["nmi"] == pytest.approx(1.0)
    assert table["a"]["per_factor"]["eight"] == pytest.approx(2 / 3)
    assert table["b"]["factor"] == "eight" and table["b"]["nmi"] == pytest.approx(1 / 3)


def test_an_image_encoder_goes_through_rendering():
    def light_and_width(images):   # left-minus-right brightness and the silhouette's area
        x = images[:, 0]
        return torch.stack([x[:, :, :16].mean((1, 2)) - x[:, :, 16:].mean((1, 2)),
                            (x > 0.02).float().mean((1, 2))], 1)

    f = H32.sample_factors(300, gen(2))
    z = dis.represent(light_and_width, H32, f, batch_size=128)
    assert z.shape == (300, 2)
    nmi = dis.normalised_mi(z, f.numpy())
    assert nmi[0, 2] == nmi[0].max() > 0.3        # the light balance tells the lighting most
    assert nmi[1, 2] < 0.2                       # and the area does not


# -- models -----------------------------------------------------------------------------------------
def test_the_evaluation_hook_on_a_model():
    torch.manual_seed(0)
    model = build_infogan({"noise_dim": 5, "net": "conv64", "d_batch_norm": False, "q_batch_norm": False},
                          CodeSet.parse("cat:4,uniform*2"), (1, 32, 32))
    data = load_chairs3d({"size": 32, "limit": 16})
    out = dis.ground_truth_metrics(model, data, n=300, n_train_votes=10, n_eval_votes=10, L=8, dci_points=100)
    assert set(out) == {"disentanglement", "code_factors"}
    s = out["disentanglement"]
    assert {"mig", "factor_vae", "dci_disentanglement", "dci_completeness", "dci_informativeness"} <= set(s)
    assert all(0.0 <= s[k] <= 1.0 for k in ("mig", "factor_vae", "dci_disentanglement", "dci_completeness"))
    assert list(out["code_factors"]) == ["c1", "c2", "c3"]
    for row in out["code_factors"].values():
        assert row["factor"] in Chairs3D.factor_names and set(row["per_factor"]) == set(Chairs3D.factor_names)
        assert 0.0 <= row["nmi"] <= 1.0
    assert dis.ground_truth_metrics(model, ImageData(data.images, None, "chairs3d")) == {}   # no truth
    assert dis.ground_truth_metrics(model, None) == {}
    with pytest.raises(ValueError, match="model takes"):
        dis.ground_truth_metrics(model, load_chairs3d({"size": 64, "limit": 2}))
