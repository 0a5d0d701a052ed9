"""Info codes: specs, CodeSet parsing and JSON, the Q head and the mutual-information bound."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from genzoo_infogan import Angle, Categorical, CodeSet, CodeSpec, Gaussian, QHead, Uniform, hookimpl
from genzoo_infogan.codes import BUILTIN_CODE_TYPES
from genzoo_infogan.losses import (code_weights, independence_terms, info_loss, invariance_terms, jacobian_overlap,
                                   mi_lower_bound, mmd, normalised_hsic, prior_terms, real_code_terms)

TYPES = {c.kind: c for c in BUILTIN_CODE_TYPES}


def test_widths_and_param_counts():
    cs = CodeSet.parse("cat:10,uniform,gaussian:0:1:fixed", TYPES)
    assert cs.names == ["c1", "c2", "c3"]
    assert [s.input_dim for _, s in cs] == [10, 1, 1]
    assert [s.n_params for _, s in cs] == [10, 2, 1]
    assert cs.input_dim == 12 and cs.n_params == 13
    values = cs.sample(5, torch.Generator().manual_seed(0))
    x = cs.to_input(values)
    assert x.shape == (5, 12)
    assert torch.equal(x[:, :10].argmax(1), values["c1"]) and torch.allclose(x[:, :10].sum(1), torch.ones(5))


@pytest.mark.parametrize("k", [2, 10, 37])
def test_perfect_q_gives_ln_k(k):
    cs = CodeSet.of(Categorical(k))
    c = torch.arange(100) % k
    logits = 1e4 * F.one_hot(c, k).float()
    li = mi_lower_bound(cs, {"c1": {"logits": logits}}, {"c1": c})["c1"]
    assert abs(float(li) - math.log(k)) < 1e-5
    assert abs(cs["c1"].entropy() - math.log(k)) < 1e-12


def test_uninformative_q_gives_zero_and_wrong_q_less():
    cs = CodeSet.of(Categorical(10))
    c = torch.arange(200) % 10
    li = mi_lower_bound(cs, {"c1": {"logits": torch.zeros(200, 10)}}, {"c1": c})["c1"]
    assert abs(float(li)) < 1e-6
    wrong = mi_lower_bound(cs, {"c1": {"logits": 5 * F.one_hot((c + 1) % 10, 10).float()}}, {"c1": c})["c1"]
    assert float(wrong) < 0


def test_categorical_uses_logits_not_probabilities():
    spec = Categorical(4)
    logits = torch.randn(8, 4)
    c = torch.randint(0, 4, (8,))
    expected = torch.log_softmax(logits, 1).gather(1, c[:, None]).squeeze(1)
    assert torch.allclose(spec.log_q({"logits": logits}, c), expected, atol=1e-6)


@pytest.mark.parametrize("spec", [Uniform(), Uniform(-2, 3), Gaussian(), Gaussian(1.5, 0.3), Uniform(q_std="fixed")])
def test_continuous_log_q_matches_torch_normal(spec):
    raw = torch.randn(32, spec.n_params)
    params = spec.params(raw)
    value = spec.sample(32, torch.Generator().manual_seed(1))
    ref = torch.distributions.Normal(params["mean"], params["std"]).log_prob(value)
    assert torch.allclose(spec.log_q(params, value), ref, atol=1e-5)
    if spec.q_std == "fixed":
        assert torch.equal(params["std"], torch.ones(32))


def test_entropies_are_the_analytic_values():
    assert Uniform(-1, 1).entropy() == pytest.approx(math.log(2))
    assert Uniform(0, 5).entropy() == pytest.approx(math.log(5))
    assert Gaussian(0, 1).entropy() == pytest.approx(0.5 * math.log(2 * math.pi * math.e))
    assert Gaussian(3, 0.1).entropy() == pytest.approx(0.5 * math.log(2 * math.pi * math.e * 0.01))


def test_priors_sample_their_distribution():
    g = torch.Generator().manual_seed(0)
    u = Uniform(-1, 1).sample(20000, g)
    assert u.min() >= -1 and u.max() <= 1 and abs(float(u.mean())) < 0.02 and abs(float(u.var()) - 1 / 3) < 0.02
    n = Gaussian(2, 0.5).sample(20000, g)
    assert abs(float(n.mean()) - 2) < 0.02 and abs(float(n.std()) - 0.5) < 0.02
    cat = Categorical(5).sample(20000, g)
    assert torch.bincount(cat, minlength=5).min() > 3700


def test_traversal_values():
    assert torch.allclose(Uniform().traversal(5), torch.tensor([-2.0, -1.0, 0.0, 1.0, 2.0]))
    assert torch.allclose(Uniform().traversal(3, (0.0, 1.0)), torch.tensor([0.0, 0.5, 1.0]))
    assert torch.equal(Categorical(4).traversal(), torch.arange(4))
    assert torch.allclose(Gaussian(0, 1).traversal(3), torch.tensor([-2.0, 0.0, 2.0]))


# -- the angle code ---------------------------------------------------------------------------------
def test_angle_code_widths_sampling_and_generator_input():
    spec = Angle(180)
    assert (spec.input_dim, spec.n_params, spec.low, spec.high) == (2, 2, -90.0, 90.0)
    v = spec.sample(20000, torch.Generator().manual_seed(0))
    assert v.min() >= -90 and v.max() <= 90 and abs(float(v.mean())) < 1.0
    assert abs(float(v.var()) - 180 ** 2 / 12) < 60
    x = spec.to_input(torch.tensor([0.0, 90.0, -90.0, 180.0]))
    assert torch.allclose(x, torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, -1.0], [-1.0, 0.0]]), atol=1e-6)
    assert spec.entropy() == pytest.approx(math.log(180)) and Angle().entropy() == pytest.approx(math.log(360))
    assert torch.allclose(spec.traversal(3), torch.tensor([-90.0, 0.0, 90.0]))
    assert torch.allclose(Angle().traversal(3), torch.tensor([-180.0, 0.0, 180.0]))


def test_angle_log_q_is_torch_von_mises_per_degree():
    spec = Angle(180)
    raw = 3 * torch.randn(64, 2)
    params = spec.params(raw)
    value = spec.sample(64, torch.Generator().manual_seed(2))
    kappa = raw.norm(dim=1)
    loc = torch.atan2(raw[:, 1], raw[:, 0])
    ref = torch.distributions.VonMises(loc, kappa).log_prob(value * math.pi / 180) + math.log(math.pi / 180)
    assert torch.allclose(spec.log_q(params, value), ref, atol=1e-4)
    assert torch.allclose(spec.point_estimate(params), loc * 180 / math.pi, atol=1e-4)
    assert torch.allclose(params["kappa"], kappa, atol=1e-5)


def test_angle_density_integrates_to_one_and_knows_nothing_at_zero():
    spec = Angle()
    grid = torch.arange(-180.0, 180.0, 0.05)
    for m in ([0.0, 0.0], [2.0, -1.0], [40.0, 25.0]):
        params = spec.params(torch.tensor([m]).expand(len(grid), 2))
        assert float(spec.log_q(params, grid).exp().sum() * 0.05) == pytest.approx(1.0, abs=1e-3)
    # Q that says nothing: the uniform density on the circle, so L_I = ln(span) - ln 360
    half = CodeSet.of(Angle(180))
    li = mi_lower_bound(half, {"c1": half["c1"].params(torch.zeros(50, 2))}, {"c1": torch.linspace(-90, 90, 50)})
    assert float(li["c1"]) == pytest.approx(math.log(180) - math.log(360), abs=1e-5)


def test_angle_maximum_likelihood_recovers_direction_and_concentration():
    """Fitting Q's two outputs to draws from a von Mises(40 deg, kappa 4) finds them again: the
    density is the one the gradient climbs."""
    torch.manual_seed(0)
    draws = torch.distributions.VonMises(torch.tensor(math.radians(40)), torch.tensor(4.0)).sample((20000,))
    deg = draws * 180 / math.pi
    raw = torch.zeros(1, 2, requires_grad=True)
    opt = torch.optim.Adam([raw], lr=0.05)
    spec = Angle()
    for _ in range(600):
        opt.zero_grad()
        loss = -spec.log_q(spec.params(raw.expand(len(deg), 2)), deg).mean()
        loss.backward()
        opt.step()
    p = spec.params(raw.detach())
    assert float(p["mean"]) == pytest.approx(40.0, abs=1.5)
    assert float(p["kappa"]) == pytest.approx(4.0, rel=0.05)


def test_angle_gradient_is_finite_when_q_knows_nothing_or_everything():
    spec = Angle(180)
    for m in ([0.0, 0.0], [500.0, 0.0]):
        raw = torch.tensor([m], requires_grad=True)
        spec.log_q(spec.params(raw), torch.tensor([30.0])).sum().backward()
        assert torch.isfinite(raw.grad).all() and float(raw.grad.norm()) <= 1.0 + 1e-5


def test_fixed_angle_pulls_like_a_fixed_uniform_code():
    """With Q's concentration fixed, only m's direction counts, and the arc laid onto (-1, 1) has the
    curvature of uniform:fixed's log Q (1 per unit squared) at Q's reading."""
    spec = Angle(180, q_kappa="fixed")
    assert spec.fixed_kappa == pytest.approx(4 / math.pi ** 2)
    small, large = spec.params(torch.tensor([[0.01, 0.02]])), spec.params(torch.tensor([[10.0, 20.0]]))
    value = torch.tensor([25.0])
    assert torch.allclose(spec.log_q(small, value), spec.log_q(large, value), atol=1e-6)
    # second derivative in u = theta / 90 at theta = Q's mean: -kappa (pi/2)^2 = -1
    u = torch.tensor([0.0], requires_grad=True)
    lq = spec.log_q(spec.params(torch.tensor([[1.0, 0.0]])), u * 90)
    (g,) = torch.autograd.grad(lq.sum(), u, create_graph=True)
    (h,) = torch.autograd.grad(g.sum(), u)
    assert float(h) == pytest.approx(-1.0, abs=1e-4)
    assert CodeSet.parse("angle:90:fixed", TYPES)["c1"] == Angle(90, "fixed")
    with pytest.raises(ValueError, match="q_kappa must be 'learned' or 'fixed'"):
        Angle(180, "wobbly")


def test_angle_code_in_a_generated_round_trip():
    cs = CodeSet.parse("az=angle:180,uniform:fixed*2", TYPES)
    assert cs.names == ["az", "c2", "c3"] and cs.input_dim == 4 and cs.n_params == 4
    assert CodeSet.parse(cs.to_spec(), TYPES) == cs and CodeSet.from_json(cs.to_json(), TYPES) == cs
    assert CodeSet.parse("circular", TYPES)["c1"] == Angle(360)


# -- independence of Q's readings on real images --------------------------------------------------
def test_normalised_hsic_sees_dependence_of_any_shape():
    g = torch.Generator().manual_seed(0)
    x, y = 2 * torch.rand(256, generator=g) - 1, 2 * torch.rand(256, generator=g) - 1
    assert float(normalised_hsic(x, x)) == pytest.approx(1.0, abs=1e-5)
    assert float(normalised_hsic(x, 5 * x + 3)) == pytest.approx(1.0, abs=1e-4)  # bandwidth follows the scale
    independent, square = float(normalised_hsic(x, y)), float(normalised_hsic(x, x * x))
    assert abs(float(torch.corrcoef(torch.stack([x, x * x]))[0, 1])) < 0.15  # uncorrelated, yet:
    assert independent < 0.03 and square > 0.2
    assert float(normalised_hsic(y, x)) == pytest.approx(independent, abs=1e-6)


def test_descending_the_independence_term_unmixes_two_readings():
    """Two readings of (a, b), drawn independently: the second starts as a mix of both; descending
    the term on it turns the second into b alone, up to sign."""
    g = torch.Generator().manual_seed(1)
    a, b = 2 * torch.rand(256, generator=g) - 1, 2 * torch.rand(256, generator=g) - 1
    angle = torch.tensor(0.7, requires_grad=True)  # reading 2 = cos * b + sin * a
    opt = torch.optim.Adam([angle], lr=0.02)
    for _ in range(300):
        opt.zero_grad()
        normalised_hsic(a, torch.cos(angle) * b + torch.sin(angle) * a).backward()
        opt.step()
    assert abs(math.sin(angle.item())) < 0.1


def test_independence_terms_pair_the_continuous_codes():
    cs = CodeSet.parse("cat:10,uniform*2,angle:180:fixed", TYPES)
    raw = torch.randn(32, cs.n_params)
    terms = independence_terms(cs, cs.split_params(raw))
    assert sorted(terms) == ["c2,c3", "c2,c4", "c3,c4"]
    assert all(0 <= float(v) <= 1 + 1e-5 for v in terms.values())


# -- Q's readings of real images against the prior ----------------------------------------------
def test_mmd_is_zero_for_one_distribution_and_sees_a_rotated_mix():
    """Unbiased: its mean over draws of one distribution is 0; readings that collapse, or two
    independent uniform factors read through a 45-degree mix (a rhombus, even with each marginal
    spread over [-1, 1]), score above what one distribution's draws do."""
    g = torch.Generator().manual_seed(0)

    def u(n):
        return 2 * torch.rand(n, 2, generator=g) - 1

    same = torch.stack([mmd(u(64), u(64)) for _ in range(500)])
    assert abs(float(same.mean())) < 4 * float(same.std()) / math.sqrt(500)  # 4 standard errors
    assert float(mmd(0.1 * u(64), u(64))) > 10 * float(same.std())
    a = u(4096)
    mixed = torch.stack([a[:, 0] - a[:, 1], a[:, 0] + a[:, 1]], dim=1) / 2
    mixed = mixed / mixed.abs().amax(dim=0)  # each marginal spread over [-1, 1] again
    assert float(mmd(mixed, u(4096))) > 20 * abs(float(mmd(u(4096), u(4096))))
    x, y = u(64), u(64)
    assert float(mmd(x, y)) == pytest.approx(float(mmd(y, x)), abs=1e-6)


def test_prior_terms_read_the_continuous_codes_together_in_prior_units():
    cs = CodeSet.parse("cat:10,uniform,gaussian:0:3", TYPES)
    g = torch.Generator().manual_seed(3)
    values = cs.sample(512, g)

    def q_reading(c2, c3):  # a Q whose point estimates are the given values
        raw = torch.zeros(512, cs.n_params)
        raw[:, 10], raw[:, 12] = c2, c3
        return cs.split_params(raw)

    as_drawn = float(prior_terms(cs, q_reading(values["c2"], values["c3"]), g))
    squeezed = float(prior_terms(cs, q_reading(values["c2"], values["c3"] / 3), g))
    dependent = float(prior_terms(cs, q_reading(values["c2"], 3 * values["c2"] * 3 ** 0.5), g))
    assert abs(as_drawn) < 0.01 and squeezed > 0.05 and dependent > 0.05
    assert prior_terms(CodeSet.parse("cat:10", TYPES), {"c1": {"logits": torch.zeros(4, 10)}}) is None


# -- how far the codes' Jacobian columns are from orthogonal -------------------------------------
def test_jacobian_overlap_is_the_mean_squared_cosine_of_the_columns():
    """Columns at right angles give 0, along one line 1 (either sign, any length), at 45 degrees
    0.5; over three codes the mean of the three pairs; with one code, nothing to overlap."""
    base = torch.rand(5, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    e = torch.eye(16).view(16, 1, 4, 4)

    def nudged(*cols):
        return torch.stack([base + c for c in cols])

    assert float(jacobian_overlap(base, nudged(e[0], e[1]))) == pytest.approx(0.0, abs=1e-6)
    assert float(jacobian_overlap(base, nudged(e[0], -3 * e[0]))) == pytest.approx(1.0, abs=1e-5)
    assert float(jacobian_overlap(base, nudged(e[0], 0.2 * (e[0] + e[1])))) == pytest.approx(0.5, abs=1e-5)
    assert float(jacobian_overlap(base, nudged(e[0], e[0], e[2]))) == pytest.approx(1 / 3, abs=1e-5)
    assert float(jacobian_overlap(base, nudged(e[0]))) == 0.0


def test_info_loss_gradient_reaches_the_features():
    cs = CodeSet.parse("cat:10,uniform*2", TYPES)
    trunk = torch.nn.Linear(20, 32)
    head = QHead(32, cs, hidden=16)
    feats = trunk(torch.randn(16, 20))
    feats.retain_grad()
    values = cs.sample(16, torch.Generator().manual_seed(0))
    loss, li = info_loss(cs, head(feats), values, code_weights(cs, 1.0, 0.1))
    loss.backward()
    assert feats.grad is not None and feats.grad.abs().sum() > 0
    assert trunk.weight.grad is not None and trunk.weight.grad.abs().sum() > 0
    assert set(li) == {"c1", "c2", "c3"}


def test_weighted_loss_is_minus_weighted_sum():
    cs = CodeSet.parse("cat:3,uniform", TYPES)
    q = {"c1": {"logits": torch.randn(8, 3)}, "c2": {"mean": torch.randn(8), "std": torch.ones(8)}}
    v = cs.sample(8, torch.Generator().manual_seed(0))
    w = code_weights(cs, 1.0, 0.25)
    assert w == {"c1": 1.0, "c2": 0.25}
    loss, li = info_loss(cs, q, v, w)
    assert torch.allclose(loss, -(li["c1"] + 0.25 * li["c2"]))
    with pytest.raises(ValueError, match="unknown code"):
        code_weights(cs, overrides={"nope": 1.0})


def test_real_code_terms_analytic_values():
    cs = CodeSet.parse("cat:4,uniform", TYPES)
    big = 30.0
    # certain and balanced: each category twice, one-hot posteriors -> gap 0, entropy 0
    certain = big * F.one_hot(torch.tensor([0, 1, 2, 3, 0, 1, 2, 3]), 4).float()
    gap, cond = real_code_terms(cs, {"c1": {"logits": certain}})["c1"]
    assert float(gap) == pytest.approx(0.0, abs=1e-6) and float(cond) == pytest.approx(0.0, abs=1e-6)
    # certain but collapsed onto one category -> gap ln 4
    collapsed = big * F.one_hot(torch.zeros(8, dtype=torch.long), 4).float()
    gap, cond = real_code_terms(cs, {"c1": {"logits": collapsed}})["c1"]
    assert float(gap) == pytest.approx(math.log(4), abs=1e-5) and float(cond) == pytest.approx(0.0, abs=1e-6)
    # uncertain: uniform posteriors -> balanced marginal (gap 0) but entropy ln 4
    gap, cond = real_code_terms(cs, {"c1": {"logits": torch.zeros(8, 4)}})["c1"]
    assert float(gap) == pytest.approx(0.0, abs=1e-6) and float(cond) == pytest.approx(math.log(4), abs=1e-6)
    # two of four categories used, certain -> gap ln 4 - ln 2; continuous codes have no term
    half = big * F.one_hot(torch.tensor([0, 1] * 4), 4).float()
    terms = real_code_terms(cs, {"c1": {"logits": half}})
    assert set(terms) == {"c1"}
    assert float(terms["c1"][0]) == pytest.approx(math.log(2), abs=1e-5)


def test_invariance_terms_analytic_values():
    cs = CodeSet.parse("cat:4,uniform", TYPES)
    logits = torch.randn(8, 4)
    same = invariance_terms(cs, {"c1": {"logits": logits}}, {"c1": {"logits": logits + 3.0}})
    assert set(same) == {"c1"} and float(same["c1"]) == pytest.approx(0.0, abs=1e-6)  # softmax ignores shifts
    sure = 40.0 * F.one_hot(torch.arange(8) % 4, 4).float()
    kl = invariance_terms(cs, {"c1": {"logits": sure}}, {"c1": {"logits": torch.zeros(8, 4)}})["c1"]
    assert float(kl) == pytest.approx(math.log(4), abs=1e-5)  # KL(one-hot || uniform) = ln k
    aug = torch.zeros(8, 4, requires_grad=True)
    invariance_terms(cs, {"c1": {"logits": sure.requires_grad_(True)}}, {"c1": {"logits": aug}})["c1"].backward()
    assert sure.grad is None and aug.grad.abs().sum() > 0  # Q(c|x) is the fixed target


def test_qhead_output_shapes_and_positive_std():
    cs = CodeSet.parse("d=cat:7,r=uniform,g=gaussian:0:1:fixed", TYPES)
    out = QHead(64, cs)(torch.randn(5, 64))
    assert out["d"]["logits"].shape == (5, 7)
    assert out["r"]["mean"].shape == (5,) and (out["r"]["std"] > 0).all()
    assert torch.equal(out["g"]["std"], torch.ones(5))
    assert QHead(64, cs, hidden=0).net[0].out_features == cs.n_params


@pytest.mark.parametrize("text,names", [
    ("cat:10,uniform*2", ["c1", "c2", "c3"]),
    ("digit=cat:10,uniform:-1:1,gaussian", ["digit", "c2", "c3"]),
    ("c2=cat:3,uniform", ["c2", "c3"]),
    (" Categorical:4 , normal:0:2 ", ["c1", "c2"]),
    ("", []),
])
def test_parse_examples(text, names):
    assert CodeSet.parse(text, TYPES).names == names


BAD = [
    ("cat", "cat"), ("cat:1", "cat:1"), ("cat:x", "cat:x"), ("cat:3:4", "cat:3:4"),
    ("uniform:1:-1", "uniform:1:-1"), ("uniform:0", "uniform:0"), ("uniform:a:b", "uniform:a:b"),
    ("gaussian:0:0", "gaussian:0:0"), ("gaussian:0:-1", "gaussian:0:-1"), ("bogus:3", "bogus:3"),
    ("cat:10,,uniform", ""), ("x y=cat:3", "x y=cat:3"), ("a=cat:3,a=uniform", "a=cat:3,a=uniform"),
    ("uniform*0", "uniform*0"), ("uniform*x", "uniform*x"), ("a=uniform*2", "a=uniform*2"),
    ("uniform:nan:1", "uniform:nan:1"), ("gaussian:0:inf", "gaussian:0:inf"), ("uniform*1000", "uniform*1000"),
    ("uniform:-1:1:wiggly", "uniform:-1:1:wiggly"),
    ("angle:0", "angle:0"), ("angle:400", "angle:400"), ("angle:x", "angle:x"), ("angle:90:180", "angle:90:180"), ("angle:90:wiggly", "angle:90:wiggly"),
    ("angle:nan", "angle:nan"),
]


@pytest.mark.parametrize("text,quoted", BAD)
def test_bad_specs_raise_a_clear_error(text, quoted):
    with pytest.raises(ValueError) as e:
        CodeSet.parse(text, TYPES)
    msg = str(e.value)
    assert quoted in msg
    assert "Accepted forms" in msg or "unique" in msg or "at most" in msg
    assert "cat:K" in msg or "unique" in msg or "at most" in msg


spec_strategy = st.one_of(
    st.builds(Categorical, st.integers(2, 50)),
    st.builds(Uniform, st.floats(-5, 0, allow_nan=False), st.floats(0.01, 5, allow_nan=False),
              st.sampled_from(["learned", "fixed"])),
    st.builds(Gaussian, st.floats(-5, 5, allow_nan=False), st.floats(0.01, 5, allow_nan=False),
              st.sampled_from(["learned", "fixed"])),
    st.builds(Angle, st.floats(0.01, 360, allow_nan=False), st.sampled_from(["learned", "fixed"])),
)
name_strategy = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(name_strategy, spec_strategy), max_size=6, unique_by=lambda t: t[0]))
def test_parse_and_json_round_trip(items):
    cs = CodeSet(tuple(items))
    assert CodeSet.parse(cs.to_spec(), TYPES) == cs
    assert CodeSet.from_json(cs.to_json(), TYPES) == cs
    assert CodeSet.from_json(CodeSet.from_json(cs.to_json(), TYPES).to_json(), TYPES).to_json() == cs.to_json()


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_parser_never_crashes_on_junk(text):
    try:
        CodeSet.parse(text, TYPES)
    except ValueError as e:
        assert str(e)


@dataclass(frozen=True)
class Bernoulli(CodeSpec):
    """A binary code with P(c = 1) = p, fed to G as 0/1; Q outputs one logit."""

    p: float = 0.5
    kind: ClassVar[str] = "bern"
    forms: ClassVar[tuple[str, ...]] = ("bern:P",)
    discrete: ClassVar[bool] = False

    @classmethod
    def from_args(cls, args):
        return cls(float(args[0]) if args else 0.5)

    def to_token(self):
        return f"bern:{self.p!r}"

    input_dim = 1
    n_params = 1

    def sample(self, n, rng=None, device="cpu"):
        return (torch.rand((n,), generator=rng, device=device) < self.p).float()

    def entropy(self):
        return -(self.p * math.log(self.p) + (1 - self.p) * math.log(1 - self.p))

    def params(self, raw):
        return {"logit": raw[:, 0]}

    def log_q(self, params, value):
        return -F.binary_cross_entropy_with_logits(params["logit"], value, reduction="none")

    def point_estimate(self, params):
        return (params["logit"] > 0).float()

    def traversal(self, steps=10, span=None):
        return torch.tensor([0.0, 1.0])


class BernoulliPlugin:
    @hookimpl
    def register_code_types(self, register):
        register(Bernoulli)


def test_outside_plugin_adds_a_code_type(host):
    with pytest.raises(ValueError, match="unknown code type 'bern'"):
        CodeSet.parse("bern:0.5", host.registry().code_types)
    with host.plugin(BernoulliPlugin(), name="bernoulli"):
        types = host.registry().code_types
        cs = CodeSet.parse("flag=bern:0.5,cat:3", types)
        assert isinstance(cs["flag"], Bernoulli)
        assert CodeSet.from_json(cs.to_json(), types) == cs
        v = torch.tensor([0.0, 1.0])
        li = mi_lower_bound(CodeSet.of(Bernoulli()), {"c1": {"logit": torch.tensor([-1e4, 1e4])}}, {"c1": v})
        assert float(li["c1"]) == pytest.approx(math.log(2), abs=1e-6)
        assert "bern:P" in str(pytest.raises(ValueError, CodeSet.parse, "zzz", types).value)
    with pytest.raises(ValueError, match="unknown code type"):
        CodeSet.parse("bern:0.5", host.registry().code_types)
    with pytest.raises(ValueError, match="unknown code type"):
        CodeSet.parse("bern:0.5")  # without a registry: the built-in types only
