"""InfoGAN (Chen et al. 2016) as a genzoo model family.

Networks (``[model] net``, ``auto`` picks by image size):

* ``mnist`` (28x28): the paper's MNIST networks.
  G = FC1024-BN-ReLU, FC 7x7x128-BN-ReLU, up-conv 64 4x4/2-BN-ReLU, up-conv C 4x4/2-sigmoid.
  D trunk = conv 64 4x4/2-lReLU, conv 128 4x4/2-BN-lReLU, FC1024-BN-lReLU; D head FC1 (logits).
* ``color32`` (32x32): the paper's SVHN/CelebA networks.
  G = FC 2x2x448-BN-ReLU, up-conv 256-BN-ReLU, up-conv 128-ReLU, up-conv 64-ReLU, up-conv C-sigmoid.
  D trunk = conv 64-lReLU, conv 128-BN-lReLU, conv 256-BN-lReLU (all 4x4/2); D head FC1.
* ``conv64`` (64x64, or any size divisible by 16): the dSprites-style networks of the
  disentanglement literature: D trunk conv 32, 32, 64, 64 (4x4/2) then FC 128; G mirrors it.

The Q head (FC128-BN-lReLU-FC) reads the *same* trunk features as D's head, without detaching
them. The info loss reaches the family through the ``loss_terms`` hook in both phases (as the
reference code does): in the D phase it trains Q and the shared trunk on detached fakes; in the G
phase it trains G to make its codes recoverable. ``[info] phase_scale`` turns either off.

Small-data options (the 5,000-digit offline MNIST sample overfits D quickly): ``augment =
"translate"`` shifts real and fake images by up to ``translate_px`` pixels before D, the same
differentiable way for both (DiffAugment, Zhao et al. 2020); ``d_spectral_norm``; ``r1`` (the R1
gradient penalty weight on real images); ``instance_noise`` (std of Gaussian noise on D's inputs).

``d_batch_norm = false`` / ``q_batch_norm = false`` drop batch norm from D's trunk and the Q head
(InfoGAN-CR's "modified InfoGAN", Lin et al. 2020). With batch norm, D sees real and generated
batches separately in training, while Q's running statistics in eval mode mix the two: Q then reads
real images (the disentanglement metrics, ``genzoo eval``) through statistics it never trained on.

``cr_net = true`` adds InfoGAN-CR's contrastive regulariser network: D's trunk architecture on two
generated images stacked along channels, then a linear layer with one logit per code. Each pair
shares one code ``k`` (drawn uniformly) and draws everything else independently; the network
guesses ``k``. Its cross-entropy enters through the ``infocodes`` hook (``[info] contrastive``,
``contrastive_start``): in the D phase it trains the network on detached pairs (half a batch of
pairs, so one batch of images), in the G phase it trains G to make the shared code easy to tell.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from genzoo_infogan import hookimpl
from genzoo_infogan.codes import CodeSet
from genzoo_infogan.images import random_affine
from genzoo_infogan.losses import gan_d_loss, gan_g_loss, r1_penalty
from genzoo_infogan.model import GenerativeModel
from genzoo_infogan.qhead import QHead

LRELU = 0.1


def _sn(module: nn.Module, on: bool) -> nn.Module:
    return nn.utils.parametrizations.spectral_norm(module) if on else module


def pick_net(net: str, image_shape) -> str:
    c, h, w = image_shape
    if h != w:
        raise ValueError(f"images must be square, got {h}x{w}")
    if net != "auto":
        return net
    if h == 28:
        return "mnist"
    if h == 32:
        return "color32"
    if h % 16 == 0:
        return "conv64"
    raise ValueError(f"no InfoGAN network for {h}x{w} images: use 28x28, 32x32 or a multiple of 16")


class Reshape(nn.Module):
    def __init__(self, *shape: int):
        super().__init__()
        self.shape = shape

    def forward(self, x):
        return x.view(x.shape[0], *self.shape)


def _bn(kind, width: int, on: bool) -> nn.Module:
    return kind(width) if on else nn.Identity()


def build_nets(net: str, image_shape, in_dim: int, sn: bool, d_bn: bool = True) -> tuple[nn.Module, nn.Module, int]:
    """(generator, D trunk, trunk feature width). ``d_bn=False`` drops batch norm from D's trunk."""
    c, h, _ = image_shape
    bn1, bn2 = nn.BatchNorm1d, nn.BatchNorm2d
    if net == "mnist":
        if h != 28:
            raise ValueError(f"net 'mnist' needs 28x28 images, got {h}x{h}")
        g = nn.Sequential(
            nn.Linear(in_dim, 1024), nn.BatchNorm1d(1024), nn.ReLU(True),
            nn.Linear(1024, 128 * 7 * 7), nn.BatchNorm1d(128 * 7 * 7), nn.ReLU(True), Reshape(128, 7, 7),
            nn.ConvTranspose2d(128, 64, 4, 2, 1), nn.BatchNorm2d(64), nn.ReLU(True),
            nn.ConvTranspose2d(64, c, 4, 2, 1), nn.Sigmoid())
        d = nn.Sequential(
            _sn(nn.Conv2d(c, 64, 4, 2, 1), sn), nn.LeakyReLU(LRELU, True),
            _sn(nn.Conv2d(64, 128, 4, 2, 1), sn), _bn(bn2, 128, d_bn), nn.LeakyReLU(LRELU, True), nn.Flatten(),
            _sn(nn.Linear(128 * 7 * 7, 1024), sn), _bn(bn1, 1024, d_bn), nn.LeakyReLU(LRELU, True))
        return g, d, 1024
    if net == "color32":
        if h != 32:
            raise ValueError(f"net 'color32' needs 32x32 images, got {h}x{h}")
        g = nn.Sequential(
            nn.Linear(in_dim, 448 * 2 * 2), nn.BatchNorm1d(448 * 2 * 2), nn.ReLU(True), Reshape(448, 2, 2),
            nn.ConvTranspose2d(448, 256, 4, 2, 1), nn.BatchNorm2d(256), nn.ReLU(True),
            nn.ConvTranspose2d(256, 128, 4, 2, 1), nn.ReLU(True),
            nn.ConvTranspose2d(128, 64, 4, 2, 1), nn.ReLU(True),
            nn.ConvTranspose2d(64, c, 4, 2, 1), nn.Sigmoid())
        d = nn.Sequential(
            _sn(nn.Conv2d(c, 64, 4, 2, 1), sn), nn.LeakyReLU(LRELU, True),
            _sn(nn.Conv2d(64, 128, 4, 2, 1), sn), _bn(bn2, 128, d_bn), nn.LeakyReLU(LRELU, True),
            _sn(nn.Conv2d(128, 256, 4, 2, 1), sn), _bn(bn2, 256, d_bn), nn.LeakyReLU(LRELU, True), nn.Flatten())
        return g, d, 256 * 4 * 4
    if net == "conv64":
        if h % 16:
            raise ValueError(f"net 'conv64' needs a size divisible by 16, got {h}")
        s = h // 16
        g = nn.Sequential(
            nn.Linear(in_dim, 128), nn.BatchNorm1d(128), nn.ReLU(True),
            nn.Linear(128, 64 * s * s), nn.BatchNorm1d(64 * s * s), nn.ReLU(True), Reshape(64, s, s),
            nn.ConvTranspose2d(64, 64, 4, 2, 1), nn.BatchNorm2d(64), nn.ReLU(True),
            nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.BatchNorm2d(32), nn.ReLU(True),
            nn.ConvTranspose2d(32, 32, 4, 2, 1), nn.BatchNorm2d(32), nn.ReLU(True),
            nn.ConvTranspose2d(32, c, 4, 2, 1), nn.Sigmoid())
        d = nn.Sequential(
            _sn(nn.Conv2d(c, 32, 4, 2, 1), sn), nn.LeakyReLU(LRELU, True),
            _sn(nn.Conv2d(32, 32, 4, 2, 1), sn), _bn(bn2, 32, d_bn), nn.LeakyReLU(LRELU, True),
            _sn(nn.Conv2d(32, 64, 4, 2, 1), sn), _bn(bn2, 64, d_bn), nn.LeakyReLU(LRELU, True),
            _sn(nn.Conv2d(64, 64, 4, 2, 1), sn), _bn(bn2, 64, d_bn), nn.LeakyReLU(LRELU, True), nn.Flatten(),
            _sn(nn.Linear(64 * s * s, 128), sn), _bn(bn1, 128, d_bn), nn.LeakyReLU(LRELU, True))
        return g, d, 128
    raise ValueError(f"unknown net {net!r}: use auto, mnist, color32 or conv64")


def translate(x: torch.Tensor, px: int, gen: torch.Generator) -> torch.Tensor:
    """Shift each image by a random integer offset in [-px, px] (zero fill), differentiably."""
    if px <= 0:
        return x
    b, c, h, w = x.shape
    shift = torch.randint(-px, px + 1, (2, b), generator=gen).to(x.device)
    ys = torch.arange(h, device=x.device)[None, :] + shift[0][:, None] + px  # (b, h) rows to read
    xs = torch.arange(w, device=x.device)[None, :] + shift[1][:, None] + px  # (b, w) columns
    flat = (ys[:, :, None] * (w + 2 * px) + xs[:, None, :]).view(b, 1, h * w).expand(b, c, h * w)
    return F.pad(x, [px, px, px, px]).flatten(2).gather(2, flat).view(b, c, h, w)


class InfoGAN(GenerativeModel):
    family = "infogan"
    phases = ("d", "g")
    export_modules = ("generator", "trunk", "q_head")
    full_modules = ("generator", "trunk", "d_head", "q_head")

    def __init__(self, arch: dict, codes: CodeSet, image_shape):
        super().__init__(arch, codes, image_shape)
        if len(codes) == 0:
            raise ValueError("InfoGAN needs at least one code (a plain GAN: set [info] phase_scale.g = 0)")
        self.net = pick_net(arch.get("net", "auto"), self.image_shape)
        self.generator, self.trunk, feat = build_nets(self.net, self.image_shape, self.noise_dim + codes.input_dim,
                                                      bool(arch.get("d_spectral_norm", False)),
                                                      bool(arch.get("d_batch_norm", True)))
        self.d_head = _sn(nn.Linear(feat, 1), bool(arch.get("d_spectral_norm", False)))
        self.q_head = QHead(feat, codes, hidden=int(arch.get("q_hidden", 128)),
                            batch_norm=bool(arch.get("q_batch_norm", True)))
        self.augment = str(arch.get("augment", "none"))
        if self.augment not in ("none", "translate"):
            raise ValueError(f"augment must be 'none' or 'translate', got {self.augment!r}")
        self.translate_px = int(arch.get("translate_px", 2))
        self.r1 = float(arch.get("r1", 0.0))
        self.instance_noise = float(arch.get("instance_noise", 0.0))
        self.noise_std = float(arch.get("noise_std", 1.0))
        if not self.noise_std > 0:
            raise ValueError(f"noise_std must be > 0, got {self.noise_std}")
        self.noise = str(arch.get("noise", "gaussian"))
        if self.noise not in ("gaussian", "uniform"):
            raise ValueError(f"noise must be 'gaussian' or 'uniform', got {self.noise!r}")
        self.cr_net = None
        if bool(arch.get("cr_net", False)):
            if len(codes) < 2:
                raise ValueError("cr_net (the contrastive regulariser) needs at least two codes")
            c, h, w = self.image_shape
            _, trunk, feat = build_nets(self.net, (2 * c, h, w), 1, False, True)
            self.cr_net = nn.Sequential(trunk, nn.Linear(feat, len(codes)))
            self.full_modules = (*type(self).full_modules, "cr_net")

    # -- pieces -------------------------------------------------------------------------------------
    def sample_noise(self, n, generator=None):
        """z ~ N(0, noise_std^2), or with ``noise = "uniform"`` z ~ U(-noise_std, noise_std) (InfoGAN-CR's
        latent on dSprites). A small std (ClusterGAN, Mukherjee et al. 2019) leaves the codes most of
        G's input variance."""
        if self.noise == "uniform":
            u = torch.rand((n, self.noise_dim), generator=generator).to(self.device)
            return self.noise_std * (2 * u - 1)
        return self.noise_std * super().sample_noise(n, generator)

    def generate(self, noise, codes):
        z = torch.cat([noise, self.codes.to_input(codes).to(noise.dtype)], dim=1)
        return self.generator(z)

    def _d_input(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        if self.augment == "translate":
            x = translate(x, self.translate_px, gen)
        if self.instance_noise > 0:
            x = x + self.instance_noise * torch.randn(x.shape, generator=gen).to(x.device, x.dtype)
        return x

    def encode(self, x):
        return self.q_head(self.trunk(x))

    def contrastive_pairs(self, n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """InfoGAN-CR's pairs: ``(images (n, 2C, H, W), k (n,))``. For pair j a code index
        ``k_j`` is drawn uniformly; both images get independent noise and codes except code
        ``k_j``, which they share. The two images are stacked along channels."""
        names = self.codes.names
        k = torch.randint(0, len(names), (n,), generator=gen)
        a, b = self.sample_codes(n, gen), self.sample_codes(n, gen)
        for i, name in enumerate(names):
            same = (k == i).to(a[name].device)
            b[name] = torch.where(same.view(-1, *([1] * (b[name].dim() - 1))), a[name], b[name])
        noise = self.sample_noise(2 * n, gen)
        both = self.generate(noise, {name: torch.cat([a[name], b[name]]) for name in names})
        return torch.cat([both[:n], both[n:]], dim=1), k.to(both.device)

    def _contrastive(self, gen: torch.Generator, n: int, grad: bool):
        """The contrastive regulariser's ``(logits, k)`` on ``n`` fresh pairs; G gets gradients
        only if ``grad`` (the G phase)."""
        with torch.set_grad_enabled(grad):
            pairs, k = self.contrastive_pairs(n, gen)
        return self.cr_net(pairs), k

    def phase_parameters(self, phase):
        if phase == "d":
            cr = [] if self.cr_net is None else list(self.cr_net.parameters())
            return [*self.trunk.parameters(), *self.d_head.parameters(), *self.q_head.parameters(), *cr]
        if phase == "g":
            return list(self.generator.parameters())
        raise KeyError(phase)

    def phase_outputs(self, phase, x, gen):
        n = x.shape[0]
        noise = self.sample_noise(n, gen)
        c = self.sample_codes(n, gen)
        if phase == "d":
            with torch.no_grad():
                fake = self.generate(noise, c)
            real_in = self._d_input(x, gen)
            if self.r1 > 0:
                real_in = real_in.detach().requires_grad_(True)
            f_real = self.trunk(real_in)
            f_fake = self.trunk(self._d_input(fake, gen))
            real_logits, fake_logits = self.d_head(f_real), self.d_head(f_fake)
            losses = {"d": gan_d_loss(real_logits, fake_logits)}
            if self.r1 > 0:
                losses["r1"] = 0.5 * self.r1 * r1_penalty(real_logits, real_in)
            metrics = {"d_real": torch.sigmoid(real_logits.detach().float()).mean(),
                       "d_fake": torch.sigmoid(fake_logits.detach().float()).mean()}
            out = {"losses": losses, "metrics": metrics,
                   "info": {"q": self.q_head(f_fake), "c": c,  # q_aug: Q on T(fake), if a hook asks
                            "q_aug": lambda **t: self.q_head(self.trunk(random_affine(fake, gen, **t)))}}
            # Q on the real batch, evaluated only if a loss hook asks (it would move Q's BN statistics)
            out["info_real"] = {"q": lambda: self.q_head(f_real),
                                "q_aug": lambda **t: self.q_head(self.trunk(random_affine(x, gen, **t)))}
            if self.cr_net is not None:  # evaluated only if the contrastive weight is on
                out["contrastive"] = lambda: self._contrastive(gen, max(1, n // 2), grad=False)
            return out
        if phase == "g":
            fake = self.generate(noise, c)
            f = self.trunk(self._d_input(fake, gen))
            out = {"losses": {"g": gan_g_loss(self.d_head(f))}, "metrics": {},
                   "info": {"q": self.q_head(f), "c": c,
                            "q_aug": lambda **t: self.q_head(self.trunk(random_affine(fake, gen, **t)))}}
            if self.cr_net is not None:
                out["contrastive"] = lambda: self._contrastive(gen, max(1, n // 2), grad=True)
            return out
        raise KeyError(phase)


class InfoGANFamily:
    name = "infogan"
    description = "InfoGAN (Chen et al. 2016): G(z, c), D with a shared trunk, Q head on the trunk"

    @staticmethod
    def default_arch() -> dict:
        return {"noise_dim": 62, "net": "auto", "q_hidden": 128, "d_spectral_norm": False,
                "d_batch_norm": True, "q_batch_norm": True, "cr_net": False,
                "augment": "none", "translate_px": 2, "r1": 0.0, "instance_noise": 0.0,
                "noise_std": 1.0, "noise": "gaussian"}

    @staticmethod
    def build(arch: dict, codes: CodeSet, image_shape) -> InfoGAN:
        return InfoGAN({**InfoGANFamily.default_arch(), **arch}, codes, image_shape)


@hookimpl
def register_families(register):
    register(InfoGANFamily())
