"""InfoGAN (Chen et al. 2016) as a genzoo model family: one training step, top to bottom.

The model: a generator G(z, c) and a discriminator whose convolutional *trunk* is shared by two
heads, D's (real or fake) and the Q head (Q(c|x)); networks from :mod:`genzoo_infogan.nets`.

One step is two phases, each with its own Adam optimizer (the engine, ``engine.py``, runs them):

* ``d``: D and Q (and the trunk they share) learn. G draws a batch from fresh noise and codes
  without gradients; D scores the real and the generated batch (``gan_d_loss``). The phase hands
  the ``infocodes`` loss hook Q's reading of the generated batch (the info loss trains Q and the
  trunk to recover c) and of the real batch (used only by the recipe's optional real-data terms).
* ``g``: G learns. It draws a batch with gradients; D's verdict gives the non-saturating loss
  (``gan_g_loss``); Q's reading of the same batch gives the info loss, which now trains G to
  make its codes recoverable. ``[info] phase_scale`` can switch the info loss off in either phase.

Settings beyond the paper (all off by default; :class:`InfoGANSettings` documents each):
``augment = "translate"`` (DiffAugment, for the 5,000-digit offline MNIST), ``d_spectral_norm``,
``r1``, ``instance_noise``, batch norm off in D's trunk or Q (InfoGAN-CR's "modified InfoGAN"),
uniform noise, ``code_injection = "every_layer"`` (the codes reach every layer of G, not only its
first), ``ortho_jacobian`` (G's phase also asks the continuous codes to move the pixels in
directions at right angles: :meth:`InfoGAN.ortho_jacobian_loss`; its weight may start higher and
fall: :meth:`InfoGAN.ortho_jacobian_weight`), ``code_release`` (a continuous code held at its
prior's centre, with no info term, until a given step: :meth:`InfoGAN.held_codes`), ``q_trunk = "own"`` (Q reads a
trunk of its own, which learns only from the info terms, so D's loss never shapes Q's features nor
the info loss D's), and InfoGAN-CR's contrastive regulariser (Lin et al. 2020): with
``contrastive > 0`` a second network sees pairs of generated images that share exactly one code
and guesses which; it learns in the ``d`` phase, and G, in the ``g`` phase, learns to make the
shared code easy to tell, from step ``contrastive_start`` on.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from genzoo_infogan import hookimpl
from genzoo_infogan.codes import CodeSet, Gaussian, Uniform
from genzoo_infogan.losses import gan_d_loss, gan_g_loss, jacobian_overlap, prior_stds, r1_penalty
from genzoo_infogan.model import GenerativeModel, PhaseOutput, Reading
from genzoo_infogan.nets import build_generator, build_trunk, pick_net, spectral, translate
from genzoo_infogan.qhead import QHead


@dataclass(frozen=True)
class InfoGANSettings:
    """The ``[model]`` table of an InfoGAN recipe."""

    noise_dim: int = 62            # size of the noise z (the paper: 62 on MNIST)
    net: str = "auto"              # mnist | color32 | conv64 | auto (by image size); see nets.py
    q_hidden: int = 128            # width of the Q head's hidden layer (0: one linear layer)
    q_batch_norm: bool = True      # batch norm in the Q head (and in Q's own trunk)
    q_trunk: str = "shared"        # shared: Q reads D's trunk (the paper); own: a trunk of Q's own
    code_injection: str = "input"  # input: codes enter G's first layer (the paper); every_layer: all
    d_batch_norm: bool = True      # batch norm in D's trunk
    d_spectral_norm: bool = False  # spectral norm on D's layers
    augment: str = "none"          # none | translate: shift real and fake images before D (DiffAugment)
    translate_px: int = 2          # the largest shift, in pixels
    r1: float = 0.0                # weight of the R1 gradient penalty on real images
    instance_noise: float = 0.0    # std of Gaussian noise added to D's inputs
    noise: str = "gaussian"        # gaussian: z ~ N(0, noise_std^2); uniform: z ~ U(-noise_std, noise_std)
    noise_std: float = 1.0
    contrastive: float = 0.0       # InfoGAN-CR's contrastive weight; > 0 adds the pair network
    contrastive_start: int = 0     # steps before the contrastive term starts
    ortho_jacobian: float = 0.0    # weight of the continuous codes' Jacobian overlap in G's phase (OroJaR)
    ortho_jacobian_batch: int = 4  # images of each G batch whose Jacobian columns it measures (+13% a heads3d step)
    ortho_jacobian_from: float = 0.0      # the weight at step 0, when ortho_jacobian_anneal_steps > 0
    ortho_jacobian_anneal_steps: int = 0  # steps over which the weight moves linearly to ortho_jacobian
    code_release: dict[str, int] = field(default_factory=dict)  # {code: step}: held at its prior's centre until then

    def __post_init__(self) -> None:
        checks = [
            ("noise_dim", 0 <= self.noise_dim <= 4096, "between 0 and 4096"),
            ("q_hidden", 0 <= self.q_hidden <= 65536, "between 0 and 65536"),
            ("augment", self.augment in ("none", "translate"), "'none' or 'translate'"),
            ("translate_px", 0 <= self.translate_px <= 16, "between 0 and 16"),
            ("r1", self.r1 >= 0, "0 (off) or more"),
            ("instance_noise", self.instance_noise >= 0, "0 (off) or more"),
            ("noise", self.noise in ("gaussian", "uniform"), "'gaussian' or 'uniform'"),
            ("noise_std", self.noise_std > 0, "above 0"),
            ("contrastive", self.contrastive >= 0, "0 (off) or more"),
            ("contrastive_start", self.contrastive_start >= 0, "0 or more (steps)"),
            ("ortho_jacobian", self.ortho_jacobian >= 0, "0 (off) or more"),
            ("ortho_jacobian_batch", 1 <= self.ortho_jacobian_batch <= 4096, "between 1 and 4096"),
            ("ortho_jacobian_from", self.ortho_jacobian_from >= 0, "0 or more"),
            ("ortho_jacobian_anneal_steps", self.ortho_jacobian_anneal_steps >= 0, "0 (a constant weight) or more (steps)"),
            ("net", self.net in ("auto", "mnist", "color32", "conv64"), "auto, mnist, color32 or conv64"),
            ("q_trunk", self.q_trunk in ("shared", "own"), "shared or own"),
            ("code_injection", self.code_injection in ("input", "every_layer"), "input or every_layer"),
        ]
        for key, ok, want in checks:
            if not ok:
                raise ValueError(f"{key} must be {want}, got {getattr(self, key)!r}")
        if not isinstance(self.code_release, dict):
            raise ValueError(f"code_release must be a table of code = step, got {self.code_release!r}")
        for name, at in self.code_release.items():
            if isinstance(at, bool) or not isinstance(at, int) or at < 0:
                raise ValueError(f"code_release.{name} must be a step (an integer, 0 or more), got {at!r}")


class InfoGAN(GenerativeModel):
    family = "infogan"
    phases = ("d", "g")
    export_modules = ("generator", "trunk", "q_head")
    full_modules = ("generator", "trunk", "d_head", "q_head")

    def __init__(self, settings: InfoGANSettings, codes: CodeSet, image_shape):
        super().__init__(settings, codes, image_shape)
        if len(codes) == 0:
            raise ValueError("InfoGAN needs at least one code (a plain GAN: set [info] phase_scale.g = 0)")
        s = settings
        self.net = pick_net(s.net, self.image_shape)
        every = codes.input_dim if s.code_injection == "every_layer" else 0
        self.generator = build_generator(self.net, self.image_shape, self.noise_dim + codes.input_dim,
                                         every_layer=every)
        self.trunk, width = build_trunk(self.net, self.image_shape, s.d_spectral_norm, s.d_batch_norm)
        self.d_head = spectral(nn.Linear(width, 1), s.d_spectral_norm)
        self.q_head = QHead(width, codes, hidden=s.q_hidden, batch_norm=s.q_batch_norm)
        self.q_trunk = None
        if s.q_trunk == "own":  # Q's features learn only from the info terms, D's only from D's loss
            self.q_trunk, _ = build_trunk(self.net, self.image_shape, batch_norm=s.q_batch_norm)
            self.export_modules = (*type(self).export_modules, "q_trunk")
            self.full_modules = (*type(self).full_modules, "q_trunk")
        self.cr_net = None
        if s.contrastive > 0:
            if len(codes) < 2:
                raise ValueError("the contrastive regulariser needs at least two codes")
            c, h, w = self.image_shape
            pair_trunk, pair_width = build_trunk(self.net, (2 * c, h, w))
            self.cr_net = nn.Sequential(pair_trunk, nn.Linear(pair_width, len(codes)))
            self.full_modules = (*self.full_modules, "cr_net")
        # the weight is linear in the step: on at some step if it is above 0 at the first or the last
        if max(self.ortho_jacobian_weight(0), s.ortho_jacobian) > 0 and len(codes.continuous) < 2:
            raise ValueError(f"ortho_jacobian needs at least two continuous codes, these codes have "
                             f"{len(codes.continuous)} (turn it off: --set model.ortho_jacobian=0)")
        self._held_values: dict[str, float] = {}  # code_release's codes: the value each is held at
        for name in s.code_release:
            if name not in codes:
                raise ValueError(f"code_release names {name!r}, not a code; codes: {', '.join(codes.names)}")
            spec = codes[name]
            if not isinstance(spec, (Uniform, Gaussian)):
                raise ValueError(f"code_release holds uniform and gaussian codes; {name} is {spec.to_token()}")
            self._held_values[name] = (spec.low + spec.high) / 2 if isinstance(spec, Uniform) else spec.mean

    # -- pieces -------------------------------------------------------------------------------------
    def ortho_jacobian_weight(self, step: int) -> float:
        """``ortho_jacobian``, or with ``ortho_jacobian_anneal_steps`` > 0 the weight moving
        linearly from ``ortho_jacobian_from`` at step 0 to ``ortho_jacobian`` at that step, and
        ``ortho_jacobian`` after it: strong early, while the codes choose their directions, and
        weaker once G refines what each draws."""
        s = self.settings
        if s.ortho_jacobian_anneal_steps <= 0:
            return s.ortho_jacobian
        t = min(1.0, step / s.ortho_jacobian_anneal_steps)
        return s.ortho_jacobian_from + t * (s.ortho_jacobian - s.ortho_jacobian_from)

    def held_codes(self, step: int | None) -> frozenset[str]:
        """The codes ``code_release`` still holds at training ``step`` (none outside training,
        ``step=None``): G reads each at its prior's centre (for a prior centred on 0, G's weights
        for it keep their initial values) and it has no info term and no ``ortho_jacobian``
        column, until its step; then it is drawn from its prior like the others (progressive
        codes: the codes released first take the most visible factors, a later one what is left)."""
        if step is None:
            return frozenset()
        return frozenset(n for n, at in self.settings.code_release.items() if step < at)

    def sample_codes(self, n, rng=None, step: int | None = None):
        """Codes from the prior; at a training ``step``, those :meth:`held_codes` holds fixed."""
        c = super().sample_codes(n, rng)
        for name in self.held_codes(step):
            c[name] = torch.full_like(c[name], self._held_values[name])
        return c

    def sample_noise(self, n, rng=None):
        if self.settings.noise == "uniform":
            u = torch.rand((n, self.noise_dim), generator=rng).to(self.device)
            return self.settings.noise_std * (2 * u - 1)
        return self.settings.noise_std * super().sample_noise(n, rng)

    def generate(self, noise, codes):
        z = torch.cat([noise, self.codes.to_input(codes).to(noise.dtype)], dim=1)
        return self.generator(z)

    def q_features(self, x: torch.Tensor, d_features: torch.Tensor | None = None) -> torch.Tensor:
        """What Q's head reads of images ``x``: D's trunk features (given, or computed), or, with
        ``q_trunk = "own"``, Q's own trunk's features of ``x`` as it is (not D's shifted or noised
        input)."""
        if self.q_trunk is not None:
            return self.q_trunk(x)
        return self.trunk(x) if d_features is None else d_features

    def encode(self, x):
        return self.q_head(self.q_features(x))

    def d_input(self, x: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
        """What D sees of a batch: shifted (``augment``) and noised (``instance_noise``) if set."""
        if self.settings.augment == "translate":
            x = translate(x, self.settings.translate_px, rng)
        if self.settings.instance_noise > 0:
            x = x + self.settings.instance_noise * torch.randn(x.shape, generator=rng).to(x.device, x.dtype)
        return x

    def contrastive_pairs(self, n: int, rng: torch.Generator, step: int | None = None
                          ) -> tuple[torch.Tensor, torch.Tensor]:
        """InfoGAN-CR's pairs: ``(images (n, 2C, H, W), k (n,))``. For pair j a code index ``k_j`` is
        drawn uniformly; both images get independent noise and codes except code ``k_j``, which
        they share. The two images are stacked along channels."""
        names = self.codes.names
        k = torch.randint(0, len(names), (n,), generator=rng)
        a, b = self.sample_codes(n, rng, step), self.sample_codes(n, rng, step)
        for i, name in enumerate(names):
            same = (k == i).to(a[name].device)
            b[name] = torch.where(same.view(-1, *([1] * (b[name].dim() - 1))), a[name], b[name])
        both = self.generate(self.sample_noise(2 * n, rng), {name: torch.cat([a[name], b[name]]) for name in names})
        return torch.cat([both[:n], both[n:]], dim=1), k.to(both.device)

    def contrastive_loss(self, n: int, rng: torch.Generator, train_g: bool, step: int | None = None
                         ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(weighted cross-entropy of the pair network's guess, its accuracy)`` on ``n`` fresh pairs."""
        with torch.set_grad_enabled(train_g):
            pairs, k = self.contrastive_pairs(n, rng, step)
        logits = self.cr_net(pairs).float()
        accuracy = (logits.detach().argmax(1) == k).float().mean()
        return self.settings.contrastive * F.cross_entropy(logits, k), accuracy

    def ortho_jacobian_loss(self, noise: torch.Tensor, c: dict[str, torch.Tensor], step: int | None = None
                            ) -> torch.Tensor:
        """The mean squared cosine between the continuous codes' Jacobian columns (pixels per unit
        of code), over the first ``ortho_jacobian_batch`` images of a G batch: 0 when each code
        moves the pixels at right angles to every other (OroJaR, Wei et al. 2021, normalised:
        :func:`~genzoo_infogan.losses.jacobian_overlap`). A code that mixes two factors (a head's
        turn with its width) overlaps the code that follows one of them; the prior is blind to
        such a rotation of the codes, and InfoGAN's L_I too.

        The columns are finite differences: the same images with one code moved by a tenth of
        its prior's standard deviation, all in one fp32 pass of G (bf16's rounding is as large
        as the differences), so that batch norm normalises them alike; the pass leaves G's
        running statistics as they were. A code :meth:`held_codes` holds at ``step`` is left out
        (0 when fewer than two are left)."""
        held = self.held_codes(step)
        names = [n for n in self.codes.continuous if n not in held]
        if len(names) < 2:
            return noise.new_zeros((), dtype=torch.float32)
        m = min(self.settings.ortho_jacobian_batch, len(noise))
        steps = prior_stds(tuple(self.codes[n] for n in names))
        blocks = [{n: v[:m] for n, v in c.items()}]
        for name, std in zip(names, steps):
            blocks.append({**blocks[0], name: blocks[0][name] + 0.1 * std})
        values = {n: torch.cat([b[n] for b in blocks]) for n in c}
        with torch.autocast(self.device.type, enabled=False), _running_stats_kept(self.generator):
            images = self.generate(noise[:m].float().repeat(len(blocks), 1), values)
            images = images.view(len(blocks), m, *images.shape[1:])
            return jacobian_overlap(images[0], images[1:])

    def phase_parameters(self, phase):
        if phase == "d":
            extra = [m for m in (self.q_trunk, self.cr_net) if m is not None]
            return [*self.trunk.parameters(), *self.d_head.parameters(), *self.q_head.parameters(),
                    *(p for m in extra for p in m.parameters())]
        if phase == "g":
            return list(self.generator.parameters())
        raise KeyError(phase)

    # -- one step -----------------------------------------------------------------------------------
    def phase_outputs(self, phase, x, rng, step=0):
        n = x.shape[0]
        noise = self.sample_noise(n, rng)
        c = self.sample_codes(n, rng, step)
        if phase == "d":
            with torch.no_grad():
                fake = self.generate(noise, c)
            real_in = self.d_input(x, rng)
            if self.settings.r1 > 0:
                real_in = real_in.detach().requires_grad_(True)
            f_real = self.trunk(real_in)
            f_fake = self.trunk(self.d_input(fake, rng))
            real_logits, fake_logits = self.d_head(f_real), self.d_head(f_fake)
            out = PhaseOutput(
                losses={"gan": gan_d_loss(real_logits, fake_logits)},
                metrics={"d_real": torch.sigmoid(real_logits.detach().float()).mean(),
                         "d_fake": torch.sigmoid(fake_logits.detach().float()).mean()},
                generated=Reading(fake, self.encode, rng, c=c, q_given=self.q_head(self.q_features(fake, f_fake))),
                # Q on the real batch runs only if a loss asks for it (it moves Q's batch-norm statistics)
                real=Reading(x, self.encode, rng, compute_q=lambda: self.q_head(self.q_features(x, f_real))))
            if self.settings.r1 > 0:
                out.losses["r1"] = 0.5 * self.settings.r1 * r1_penalty(real_logits, real_in)
        elif phase == "g":
            fake = self.generate(noise, c)
            f = self.trunk(self.d_input(fake, rng))
            out = PhaseOutput(losses={"gan": gan_g_loss(self.d_head(f))},
                              generated=Reading(fake, self.encode, rng, c=c, q_given=self.q_head(self.q_features(fake, f))))
            weight = self.ortho_jacobian_weight(step)
            if weight > 0:
                overlap = self.ortho_jacobian_loss(noise, c, step)
                out.losses["ortho"] = weight * overlap
                out.metrics["ortho"] = overlap.detach()
        else:
            raise KeyError(phase)
        if self.cr_net is not None and step >= self.settings.contrastive_start:
            out.losses["contrastive"], out.metrics["cr_acc"] = self.contrastive_loss(
                max(1, n // 2), rng, train_g=phase == "g", step=step)
        return out


@contextmanager
def _running_stats_kept(module: nn.Module):
    """Batch norm in ``module`` normalises by the batch's statistics but does not update its
    running ones (momentum 0) while the context is open."""
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in norms]
    for m in norms:
        m.momentum = 0.0
    try:
        yield
    finally:
        for m, momentum in zip(norms, saved):
            m.momentum = momentum


class InfoGANFamily:
    name = "infogan"
    description = "InfoGAN (Chen et al. 2016): G(z, c), D with a shared trunk, Q head on the trunk"
    phases = InfoGAN.phases
    settings = InfoGANSettings

    @staticmethod
    def build(settings: InfoGANSettings, codes: CodeSet, image_shape) -> InfoGAN:
        return InfoGAN(settings, codes, image_shape)

    @staticmethod
    def upgrade_settings(table: dict) -> dict:
        """Settings of 0.1.0 files: ``cr_net = true`` built the pair network that ``contrastive > 0``
        builds now (its weight was an [info] setting then)."""
        if "cr_net" in table:
            on = bool(table.pop("cr_net"))
            table.setdefault("contrastive", 1.0 if on else 0.0)
        return table


@hookimpl
def register_families(register):
    register(InfoGANFamily())
