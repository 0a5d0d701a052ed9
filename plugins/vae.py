"""A VAE family and its info-code variant (the ``vae`` family; codes make it the variant).

Networks (:mod:`genzoo_infogan.nets`, the ones InfoGAN builds from): the encoder is the trunk for
the image size (28x28 ``mnist``, 32x32 ``color32``, ``conv64``), the decoder the generator with
logits out (Bernoulli pixels).
The decoder takes ``(z, c)``; Q(c|x) is a head on the encoder's trunk, the same
:class:`~genzoo_infogan.qhead.QHead` InfoGAN uses.

The objective, per batch of real images x (all terms in nats per image)::

    recon      = -log p(x | z, c~)               z ~ q(z|x) (reparameterised), c~ from Q(c|x):
                                                 categorical codes through a Gumbel-softmax
                                                 relaxation of Q's logits (temperature tau),
                                                 continuous codes reparameterised from Q's N(mean, std)
    kl         = beta * KL(q(z|x) || N(0, I))
    kl_codes   = gamma * sum_i KL(Q(c_i|x) || prior_i)   categorical: KL to Uniform(k);
                                                 continuous: KL to the Gaussian with the prior's
                                                 mean and variance (Uniform(a, b): variance (b-a)^2/12)
    info       = -sum_i lambda_i L_I_i           on decoded *prior* samples x' = dec(z', c'),
                                                 z' ~ N(0, I), c' ~ p(c): L_I = E log Q(c'|x') + H(c')

The phase also hands Q(c|x) on the real batch to the ``infocodes`` hook (``PhaseOutput.real``), so the
recipe's ``[info] real_balance``, ``real_confidence`` and ``real_invariance`` apply. Per
categorical code, the ELBO's ``E_x KL(Q(c|x) || U(k))`` equals ``(ln k - H(mean Q)) + (H(mean Q) - mean H(Q))``: the
marginal's distance from uniform plus the mutual information I(x; c) under Q. ``gamma = 1`` with
``real_confidence = 1`` cancels the part that penalises I(x; c), and a ``real_confidence`` above
1 rewards it, in the spirit of InfoVAE (Zhao et al. 2017), which keeps the marginal term and drops
the one that fights information.

``[model] cat_recon_grad = false`` (``infovae-mnist`` sets it; default true, the plain ELBO) stops
``recon``'s gradient at Q's categorical logits: the decoder still reads the code sampled from
Q(c|x), so it learns what Q's categories mean, but the categories are shaped only by ``kl_codes``,
``info`` and the real-data terms, not bent towards whatever split of the digits helps the decoder
most (stroke, slant). Continuous codes and the encoder trunk (through z) still learn from ``recon``.

``[model] q_trunk = "own"`` (default ``"shared"``) gives Q a trunk of its own, the encoder's
architecture with its own weights: Q's features then learn only from ``info``, the real-data terms
and (with ``cat_recon_grad``) the reconstruction through the codes, and z's KL and reconstruction
no longer shape them. It costs one more trunk pass over the real batch per step.

``info`` comes from the built-in ``infocodes`` loss hook, exactly as for InfoGAN: the phase returns
Q's reading of x' with its codes c' as ``PhaseOutput.generated``. It makes the decoder keep each code recognisable in
what it generates, and trains Q (and the shared trunk) on samples whose code is known, which is
what teaches the categorical posterior to follow digit identity. With no codes the family is a
plain VAE (``vae-mnist``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from genzoo_infogan import hookimpl
from genzoo_infogan.codes import CodeSet, Gaussian, Uniform
from genzoo_infogan.losses import categorical_kl_uniform, gaussian_kl
from genzoo_infogan.model import GenerativeModel, PhaseOutput, Reading
from genzoo_infogan.nets import build_generator, build_trunk, pick_net
from genzoo_infogan.qhead import QHead


@dataclass(frozen=True)
class VAESettings:
    """The ``[model]`` table of a VAE recipe."""

    noise_dim: int = 10           # size of z
    net: str = "auto"             # mnist | color32 | conv64 | auto (by image size); see nets.py
    q_hidden: int = 128           # width of the Q head's hidden layer (0: one linear layer)
    beta: float = 1.0             # weight of KL(q(z|x) || N(0, I))
    gamma: float = 1.0            # weight of the codes' KL to their priors
    temperature: float = 0.67     # Gumbel-softmax temperature of categorical codes
    cat_recon_grad: bool = True   # false: the reconstruction does not train Q's categorical logits
    q_trunk: str = "shared"       # shared: Q reads the encoder's features; own: a trunk of its own

    def __post_init__(self) -> None:
        checks = [("noise_dim", 1 <= self.noise_dim <= 4096, "between 1 and 4096 (the size of z)"),
                  ("q_hidden", 0 <= self.q_hidden <= 65536, "between 0 and 65536"),
                  ("beta", self.beta >= 0, "0 or more"), ("gamma", self.gamma >= 0, "0 or more"),
                  ("temperature", self.temperature > 0, "above 0"),
                  ("net", self.net in ("auto", "mnist", "color32", "conv64"), "auto, mnist, color32 or conv64"),
                  ("q_trunk", self.q_trunk in ("shared", "own"), "shared or own")]
        for key, ok, want in checks:
            if not ok:
                raise ValueError(f"{key} must be {want}, got {getattr(self, key)!r}")


def prior_moments(spec) -> tuple[float, float]:
    if isinstance(spec, Uniform):
        return 0.5 * (spec.low + spec.high), (spec.high - spec.low) / math.sqrt(12.0)
    if isinstance(spec, Gaussian):
        return spec.mean, spec.std
    mean = float(getattr(spec, "mean", 0.0))
    return mean, float(getattr(spec, "std", 1.0))


class VAE(GenerativeModel):
    family = "vae"
    phases = ("vae",)

    def __init__(self, settings: VAESettings, codes: CodeSet, image_shape):
        # the KL term and the reparametrised draw need a Gaussian Q (mean, std) for a continuous code
        unfit = [f"{n} ({s.to_token()})" for n, s in codes
                 if not s.discrete and not {"mean", "std"} <= set(s.params(torch.zeros(1, s.n_params)))]
        if unfit:
            raise ValueError(f"the vae family takes categorical codes and continuous codes that Q reads as a "
                             f"Gaussian (uniform, gaussian); not {', '.join(unfit)}")
        super().__init__(settings, codes, image_shape)
        self.net = pick_net(settings.net, self.image_shape)
        self.decoder = build_generator(self.net, self.image_shape, self.noise_dim + codes.input_dim, output="logits")
        self.encoder, width = build_trunk(self.net, self.image_shape)
        self.latent = nn.Linear(width, 2 * self.noise_dim)
        mods = ["encoder", "latent", "decoder"]
        if len(codes):
            if settings.q_trunk == "own":  # Q's features learn only from the info and real-data terms
                self.q_trunk, _ = build_trunk(self.net, self.image_shape)
                mods.append("q_trunk")
            self.q_head = QHead(width, codes, hidden=settings.q_hidden)
            mods.append("q_head")
        self.export_modules = self.full_modules = tuple(mods)
        self.beta, self.gamma = settings.beta, settings.gamma
        self.tau = settings.temperature
        self.cat_recon_grad = settings.cat_recon_grad

    # -- pieces -------------------------------------------------------------------------------------
    def decode_logits(self, z, code_input):
        return self.decoder(torch.cat([z, code_input.to(z.dtype)], dim=1) if code_input is not None else z)

    def generate(self, noise, codes):
        code_input = self.codes.to_input(codes) if len(self.codes) else None
        return torch.sigmoid(self.decode_logits(noise, code_input))

    def features(self, x):
        return self.encoder(x)

    def q_features(self, x, encoder_features=None):
        """What Q's head reads: the encoder's features (given, or computed), or Q's own trunk's."""
        if hasattr(self, "q_trunk"):
            return self.q_trunk(x)
        return self.encoder(x) if encoder_features is None else encoder_features

    def encode(self, x):
        if not len(self.codes):
            return {}
        return self.q_head(self.q_features(x))

    def encode_latent(self, x):
        mu, logvar = self.latent(self.encoder(x)).float().chunk(2, dim=1)
        return mu, logvar

    def phase_parameters(self, phase):
        if phase != "vae":
            raise KeyError(phase)
        return list(self.parameters())

    def _relaxed_codes(self, q: dict, rng: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(decoder input for the codes inferred from x, their KL to the prior)."""
        blocks, kl = [], torch.zeros((), device=self.device)
        for name, spec in self.codes:
            p = q[name]
            if spec.discrete:
                logits = p["logits"]
                # cat_recon_grad off: the relaxed sample the decoder reads carries no gradient to Q
                sample_logits = logits if self.cat_recon_grad else logits.detach()
                u = torch.rand(logits.shape, generator=rng).to(logits.device).clamp_(1e-10, 1 - 1e-7)
                gumbel = -torch.log(-torch.log(u))
                blocks.append(F.softmax((sample_logits + gumbel) / self.tau, dim=1))
                kl = kl + categorical_kl_uniform(logits)
            else:
                mean, std = p["mean"], p["std"]
                eps = torch.randn(mean.shape, generator=rng).to(mean.device)
                blocks.append((mean + std * eps).unsqueeze(1))
                m0, s0 = prior_moments(spec)
                kl = kl + (torch.log(s0 / std) + (std ** 2 + (mean - m0) ** 2) / (2 * s0 ** 2) - 0.5).mean()
        return torch.cat(blocks, dim=1), kl

    def phase_outputs(self, phase, x, rng, step=0):
        if phase != "vae":
            raise KeyError(phase)
        n = x.shape[0]
        f = self.encoder(x)
        mu, logvar = self.latent(f).float().chunk(2, dim=1)
        logvar = logvar.clamp(-12, 8)
        z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=rng).to(mu.device)
        out = PhaseOutput(losses={})
        code_input = None
        if len(self.codes):
            q_real = self.q_head(self.q_features(x, f))
            code_input, kl_c = self._relaxed_codes(q_real, rng)
            out.losses["kl_codes"] = self.gamma * kl_c
            out.real = Reading(x, self.encode, rng, q_given=q_real)
        logits = self.decode_logits(z, code_input).float()
        out.losses["recon"] = F.binary_cross_entropy_with_logits(logits, x.float(), reduction="sum") / n
        kl_z = gaussian_kl(mu, logvar)
        out.losses["kl"] = self.beta * kl_z
        out.metrics["kl_z"] = kl_z.detach()
        if len(self.codes):  # the info loss reads decoded prior samples x' = dec(z', c')
            zp = self.sample_noise(n, rng)
            cp = self.sample_codes(n, rng)
            xp = torch.sigmoid(self.decode_logits(zp, self.codes.to_input(cp)))
            out.generated = Reading(xp, self.encode, rng, c=cp, q_given=self.encode(xp))
        return out


class VAEFamily:
    name = "vae"
    description = "VAE with optional info codes: decoder(z, c), Q(c|x) on the encoder trunk"
    phases = VAE.phases
    settings = VAESettings

    @staticmethod
    def build(settings: VAESettings, codes: CodeSet, image_shape) -> VAE:
        return VAE(settings, codes, image_shape)


@hookimpl
def register_families(register):
    register(VAEFamily())
