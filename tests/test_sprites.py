"""Procedural dSprites and the disentanglement metrics (MIG, FactorVAE score, DCI) on it.

The metric tests use encoders with known answers that read the factors directly (no rendering):
an oracle (the standardised true factor values), a random one (noise, independent of the image)
and a mixing one (the oracle's vector rotated by a fixed random rotation). The same metrics on
the 3D data sets: tests/test_render3d.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from genzoo_infogan import disentangle as dis
from genzoo_infogan.codes import CodeSet
from genzoo_infogan.data import ImageData, load_dataset
from genzoo_infogan.errors import UserError
from genzoo_infogan import sprites as sprites_module
from genzoo_infogan.sprites import FACTOR_NAMES, FACTOR_SIZES, Sprites, load_sprites

from conftest import build_infogan

S64 = Sprites(64)
S32 = Sprites(32)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def factors(*rows) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.long)


def centroid(img: torch.Tensor) -> tuple[float, float]:
    """(x, y) centre of mass of one (1, H, W) image, in pixels."""
    h, w = img.shape[-2:]
    m = img[0]
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    return float((m * xs).sum() / m.sum()), float((m * ys).sum() / m.sum())


# -- the factor grid ------------------------------------------------------------------------------------
def test_factor_grid():
    assert FACTOR_NAMES == ("shape", "scale", "orientation", "pos_x", "pos_y")
    assert FACTOR_SIZES == (3, 6, 40, 32, 32)
    assert isinstance(S32, dis.GroundTruth) and S32.categorical == (0,) and S32.image_shape == (1, 32, 32)
    assert len(S64) == 737_280
    v = Sprites.factor_values(factors([0, 0, 0, 0, 0], [2, 5, 39, 31, 31], [1, 2, 10, 15, 16]))
    assert v.dtype == torch.float64
    assert v[0].tolist() == [0.0, 0.5, 0.0, 0.0, 0.0]
    assert v[1, :2].tolist() == [2.0, 1.0] and v[1, 3:].tolist() == [1.0, 1.0]
    assert v[1, 2] == pytest.approx(2 * math.pi * 39 / 40) and v[1, 2] < 2 * math.pi
    assert v[2, 1] == pytest.approx(0.7) and v[2, 2] == pytest.approx(math.pi / 2)
    assert v[2, 3] == pytest.approx(15 / 31)
    with pytest.raises(ValueError):
        S32.render(factors([3, 0, 0, 0, 0]))
    with pytest.raises(ValueError):
        S32.render(torch.zeros((2, 4), dtype=torch.long))
    with pytest.raises(UserError):
        Sprites(48)


def test_rendering_is_deterministic_binary_and_sized():
    f = S64.sample_factors(40, gen(3))
    a = S64.render(f)
    assert a.shape == (40, 1, 64, 64) and a.dtype == torch.float32
    assert set(a.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(a, Sprites(64, chunk=7).render(f))    # batching does not matter
    assert torch.equal(a[5:6], S64.render(f[5:6]))
    assert (a.sum(dim=(1, 2, 3)) > 0).all()                   # every sprite shows
    b = S32.render(f)
    assert b.shape == (40, 1, 32, 32) and set(b.unique().tolist()) <= {0.0, 1.0}
    assert (b.sum(dim=(1, 2, 3)) > 0).all()


def test_every_factor_value_gives_a_different_image():
    base = [2, 3, 0, 15, 15]  # a heart: no rotational symmetry
    for k, n in enumerate(FACTOR_SIZES):
        f = torch.tensor([base] * n)
        f[:, k] = torch.arange(n)
        imgs = S64.render(f).flatten(1)
        assert len(torch.unique(imgs, dim=0)) == n, FACTOR_NAMES[k]


def test_scale_grows_the_pixel_count():
    for shape in range(3):
        f = torch.tensor([[shape, s, 7, 15, 15] for s in range(6)])
        counts = S64.render(f).sum(dim=(1, 2, 3))
        assert (counts[1:] > counts[:-1]).all(), counts
        assert counts[-1] / counts[0] == pytest.approx(4, rel=0.2)   # area goes with scale squared


def test_a_quarter_turn_leaves_a_square_and_a_half_turn_an_ellipse():
    for scale, x, y in ((5, 15, 15), (2, 3, 27), (0, 20, 9)):
        sq = S64.render(factors([0, scale, 4, x, y], [0, scale, 14, x, y], [0, scale, 24, x, y]))
        assert (sq[0] != sq[1]).sum() <= 2 and (sq[0] != sq[2]).sum() <= 2
        assert (sq[0] != S64.render(factors([0, scale, 9, x, y]))[0]).sum() > 10   # 45 degrees is not
        el = S64.render(factors([1, scale, 3, x, y], [1, scale, 23, x, y], [1, scale, 13, x, y]))
        assert (el[0] != el[1]).sum() <= 2 and (el[0] != el[2]).sum() > 10
    heart = S64.render(factors([2, 5, 0, 15, 15], [2, 5, 10, 15, 15], [2, 5, 20, 15, 15]))
    assert (heart[0] != heart[1]).sum() > 20 and (heart[0] != heart[2]).sum() > 20


@pytest.mark.parametrize("k,axis", [(3, 0), (4, 1)])
def test_positions_move_the_centroid_monotonically(k, axis):
    for shape in range(3):
        f = torch.tensor([[shape, 2, 5, 10, 20]] * 32)
        f[:, k] = torch.arange(32)
        c = torch.tensor([centroid(im) for im in S64.render(f)])
        moving, still = c[:, axis], c[:, 1 - axis]
        assert (moving[1:] > moving[:-1]).all()
        assert moving[-1] - moving[0] > 30                     # spread over the image
        assert still.max() - still.min() < 1.0


def test_sampling_factors():
    f = S32.sample_factors(3000, gen(0))
    assert f.shape == (3000, 5) and f.dtype == torch.long
    for k, n in enumerate(FACTOR_SIZES):
        assert f[:, k].min() == 0 and f[:, k].max() == n - 1
    assert torch.equal(f, S32.sample_factors(3000, gen(0)))
    for k, value in ((0, 2), (2, 17), (4, 0)):
        g = S32.sample_fixed(500, k, value, gen(1))
        assert (g[:, k] == value).all()
        others = [j for j in range(5) if j != k]
        assert all(len(g[:, j].unique()) > 1 for j in others)
    with pytest.raises(ValueError):
        S32.sample_fixed(5, 1, 6)


# -- the dataset ------------------------------------------------------------------------------------
def test_sprites_dataset_is_registered_through_the_host(registry):
    assert [(name, fn) for name, fn, _ in sprites_module.DATASETS] == [("sprites", load_sprites)]
    assert "dSprites" in sprites_module.DATASETS[0][2]
    entry = registry.datasets["sprites"]
    assert "dSprites" in entry.description
    data = load_dataset({"name": "sprites", "size": 32, "limit": 64}, registry)
    assert isinstance(data, ImageData) and data.name == "sprites"
    assert data.images.shape == (64, 1, 32, 32) and data.labels is None
    assert data.factors.shape == (64, 5) and data.factors.dtype == torch.long
    assert torch.equal(data.images, S32.render(data.factors))
    assert isinstance(data.truth, Sprites) and data.truth.size == 32 and data.limit(8).truth is data.truth
    again = load_sprites({"size": 32, "limit": 64})
    assert torch.equal(again.factors, data.factors)
    other = load_sprites({"size": 32, "limit": 64, "seed": 1})
    assert not torch.equal(other.factors, data.factors)
    assert load_sprites({"size": 0, "limit": 3}).image_shape == (1, 64, 64)
    assert len(load_sprites({"limit": 0, "size": 32})) == 20000
    with pytest.raises(UserError, match="32 or 64"):
        load_dataset({"name": "sprites", "size": 28, "limit": 4}, registry)
    with pytest.raises(UserError, match="limit"):
        load_sprites({"size": 32, "limit": -1})


# -- the metrics: parts ----------------------------------------------------------------------------
def test_dci_of_known_importance_matrices():
    assert dis.dci_from_importance(np.eye(5)) == pytest.approx({"disentanglement": 1.0, "completeness": 1.0})
    assert dis.dci_from_importance(np.ones((5, 5))) == pytest.approx({"disentanglement": 0.0, "completeness": 0.0})
    assert dis.dci_from_importance(np.zeros((5, 5))) == {"disentanglement": 0.0, "completeness": 0.0}
    one_factor = np.zeros((5, 5))
    one_factor[:, 1] = 1.0   # every code about the same factor: disentangled codes, incomplete factor
    r = dis.dci_from_importance(one_factor)
    assert r["disentanglement"] == pytest.approx(1.0) and r["completeness"] == pytest.approx(0.0)


def test_mutual_information_and_binning():
    a = np.repeat(np.arange(4), 48)
    assert dis.discrete_mutual_info(a, a) == pytest.approx(math.log(4))
    assert dis.discrete_entropy(a) == pytest.approx(math.log(4))
    assert dis.discrete_mutual_info(a, np.tile(np.arange(4), 48)) == pytest.approx(0.0, abs=1e-12)
    z = dis.discretize(np.linspace(0, 1, 200)[:, None], 20)
    assert z.min() == 0 and z.max() == 19 and (np.bincount(z[:, 0]) == 10).all()


# -- the metrics on encoders with known answers ------------------------------------------------------
_GRID = Sprites.factor_values(torch.tensor([[min(i, n - 1) for n in FACTOR_SIZES] for i in range(40)]))
_MEAN = torch.tensor([_GRID[:n, k].mean() for k, n in enumerate(FACTOR_SIZES)], dtype=torch.float64)
_STD = torch.tensor([_GRID[:n, k].std() for k, n in enumerate(FACTOR_SIZES)], dtype=torch.float64)
_ROTATION = torch.linalg.qr(torch.randn((5, 5), generator=gen(7), dtype=torch.float64))[0]


@dis.reads_factors
def oracle(f):
    return (Sprites.factor_values(f) - _MEAN) / _STD


@dis.reads_factors
def mixing(f):
    return oracle(f) @ _ROTATION


def random_encoder(seed=123):
    g = gen(seed)
    return dis.reads_factors(lambda f: torch.randn((len(f), 5), generator=g))


# DCI's boosted trees fit one tree per class and stage, 113 classes here: 20 stages rather than 100
# keep the test quick (tests/test_render3d.py checks DCI with the default 100)
KW = dict(n=2000, seed=0, n_train_votes=300, n_eval_votes=300, dci_points=500, dci_estimators=20)


@pytest.fixture(scope="module")
def scores():
    return {"oracle": dis.disentanglement_scores(oracle, S32, **KW),
            "random": dis.disentanglement_scores(random_encoder(), S32, **KW),
            "mixing": dis.disentanglement_scores(mixing, S32, **KW)}


def test_oracle_encoder_scores_near_one(scores):
    s = scores["oracle"]
    # MIG < 1 only because 20 bins cannot resolve 40 orientations or 32 positions (ln 20 / ln 40 ...)
    assert s["mig"] > 0.8
    assert s["factor_vae"] > 0.95
    assert s["dci_disentanglement"] > 0.9 and s["dci_completeness"] > 0.9
    assert s["mig_per_factor"]["shape"] > 0.95


def test_random_encoder_scores_near_zero(scores):
    s = scores["random"]
    assert s["mig"] < 0.05
    assert s["dci_disentanglement"] < 0.15
    assert s["factor_vae"] < 0.4          # chance: 1/5
    assert s["dci_informativeness"] < 0.4


def test_mixing_encoder_scores_in_between(scores):
    r, m, o = scores["random"], scores["mixing"], scores["oracle"]
    for key in ("mig", "dci_disentanglement"):
        assert r[key] + 0.02 < m[key] < o[key] - 0.2, key


def test_the_single_metrics_agree_with_the_bundle(scores):
    assert dis.mig(oracle, S32, n=2000, seed=0) == pytest.approx(scores["oracle"]["mig"])
    f = S32.sample_factors(2000, gen(0))
    assert dis.mig_from_codes(dis.represent(mixing, S32, f), f.numpy())["mig"] == pytest.approx(scores["mixing"]["mig"])
    assert dis.factor_vae_score(oracle, S32, seed=0, n_variance=500, n_train_votes=100, n_eval_votes=100) > 0.95


def test_factor_vae_prunes_collapsed_dimensions():
    @dis.reads_factors
    def collapsed(f):
        z = oracle(f)
        z[:, 2] = 0.01 * torch.randn(len(f), generator=gen(0), dtype=torch.float64)   # orientation lost
        return z

    std = dis.represent(collapsed, S32, S32.sample_factors(1000, gen(0))).std(axis=0)
    r = dis.factor_vae_from_std(collapsed, S32, std, n_train_votes=200, n_eval_votes=200)
    assert r["active_dims"] == 4
    assert 0.7 < r["factor_vae"] < 0.9     # the votes for orientation cannot be right: about 4/5
    none = dis.factor_vae_from_std(collapsed, S32, np.full(5, 0.01))
    assert none["factor_vae"] == 0.0 and none["active_dims"] == 0


def test_an_image_encoder_goes_through_rendering():
    def centroid_encoder(images):   # x, y centre of mass and pixel count: positions and scale
        return torch.tensor([[*centroid(im), float(im.sum())] for im in images])

    f = S32.sample_factors(600, gen(2))
    z = dis.represent(centroid_encoder, S32, f, batch_size=128)
    assert z.shape == (600, 3)
    per = dis.mig_from_codes(z, f.numpy(), factor_names=FACTOR_NAMES)["per_factor"]
    assert per["pos_x"] > 0.5 and per["pos_y"] > 0.5 and per["orientation"] < 0.1


# -- models -----------------------------------------------------------------------------------------
def test_model_code_encoder_and_the_ground_truth_metrics_hook():
    torch.manual_seed(0)
    model = build_infogan({"noise_dim": 5, "net": "conv64"}, CodeSet.parse("cat:3,uniform*2"), (1, 32, 32))
    model.train()
    encode = dis.model_code_encoder(model, batch_size=16)
    x = S32.render(S32.sample_factors(40, gen(0)))
    z = encode(x)
    assert z.shape == (40, 3) and z.dtype == torch.float32 and model.training
    assert set(z[:, 0].tolist()) <= {0.0, 1.0, 2.0}
    model.eval()
    q = model.encode(x)
    assert torch.equal(z[:, 1], q["c2"]["mean"]) and torch.equal(z[:, 0], q["c1"]["logits"].argmax(1).float())

    data = load_sprites({"size": 32, "limit": 16})
    out = dis.ground_truth_metrics(model, data, n=300, n_train_votes=20, n_eval_votes=20, L=8, dci_points=300,
                                   dci_estimators=5)
    assert set(out) == {"disentanglement", "code_factors"}
    s = out["disentanglement"]
    assert set(s) == {"mig", "factor_vae", "dci_disentanglement", "dci_completeness", "dci_informativeness",
                      "mig_per_factor"}
    assert all(0.0 <= v <= 1.0 for k, v in s.items() if k != "mig_per_factor")
    assert list(out["code_factors"]) == ["c1", "c2", "c3"]
    assert all(row["factor"] in FACTOR_NAMES for row in out["code_factors"].values())
    assert dis.ground_truth_metrics(model, ImageData(data.images, None, "mnist")) == {}
