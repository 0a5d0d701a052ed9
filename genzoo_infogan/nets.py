"""The networks every family builds from: a generator (or decoder) and a convolutional trunk.

``net`` names an architecture (``auto`` picks one by image size):

* ``mnist`` (28x28): the paper's MNIST networks (Chen et al. 2016, appendix C.1).
  G = FC1024-BN-ReLU, FC 7x7x128-BN-ReLU, up-conv 64 4x4/2-BN-ReLU, up-conv C 4x4/2.
  Trunk = conv 64 4x4/2-lReLU, conv 128 4x4/2-BN-lReLU, FC1024-BN-lReLU.
* ``color32`` (32x32): the paper's SVHN/CelebA networks.
  G = FC 2x2x448-BN-ReLU, up-conv 256-BN-ReLU, up-conv 128-ReLU, up-conv 64-ReLU, up-conv C.
  Trunk = conv 64-lReLU, conv 128-BN-lReLU, conv 256-BN-lReLU (all 4x4/2).
* ``conv64`` (64x64, or any size divisible by 16): the dSprites-style networks of the
  disentanglement literature: trunk conv 32, 32, 64, 64 (4x4/2) then FC 128; G mirrors it.

A generator ends in a sigmoid (pixels in [0, 1]) or, with ``output="logits"``, without it (a VAE's
Bernoulli decoder). A trunk maps images to a flat feature vector; InfoGAN puts D's head and the Q
head on it, the VAE its latent layer and the Q head.

Their linear layers are :class:`genzoo_infogan.weightcast.Linear`: torch's, except that during a
training phase under bf16 autocast they read the engine's kept bf16 copy of the weight.
"""

from __future__ import annotations

import torch
from torch import nn

from .weightcast import Linear

LRELU = 0.1
NETS = ("mnist", "color32", "conv64")


class Reshape(nn.Module):
    def __init__(self, *shape: int):
        super().__init__()
        self.shape = shape

    def forward(self, x):
        return x.view(x.shape[0], *self.shape)


def pick_net(net: str, image_shape) -> str:
    """The architecture for ``image_shape`` (C, H, W): ``net`` itself, checked, or by size for ``auto``."""
    c, h, w = image_shape
    if h != w:
        raise ValueError(f"images must be square, got {h}x{w}")
    if net == "auto":
        if h == 28:
            return "mnist"
        if h == 32:
            return "color32"
        if h % 16 == 0:
            return "conv64"
        raise ValueError(f"no network for {h}x{w} images: use 28x28, 32x32 or a multiple of 16")
    need = {"mnist": h == 28, "color32": h == 32, "conv64": h % 16 == 0}
    if net not in need:
        raise ValueError(f"unknown net {net!r}: use auto, {', '.join(NETS)}")
    if not need[net]:
        size = {"mnist": "28x28", "color32": "32x32", "conv64": "a size divisible by 16"}[net]
        raise ValueError(f"net {net!r} needs {size} images, got {h}x{w}")
    return net


def spectral(module: nn.Module, on: bool) -> nn.Module:
    return nn.utils.parametrizations.spectral_norm(module) if on else module


def _norm(kind, width: int, on: bool) -> nn.Module:
    return kind(width) if on else nn.Identity()


def build_generator(net: str, image_shape, in_dim: int, output: str = "sigmoid", every_layer: int = 0
                    ) -> nn.Module:
    """``in_dim`` -> images of ``image_shape``; ``output`` is ``"sigmoid"`` or ``"logits"``.

    ``every_layer = k > 0``: the input's last ``k`` values (the codes) reach every weighted layer,
    not only the first (:class:`EveryLayer`); each such layer reads ``k`` more inputs or channels.
    """
    c, h, _ = image_shape
    k = every_layer
    if net == "mnist":
        layers = [
            Linear(in_dim, 1024), nn.BatchNorm1d(1024), nn.ReLU(True),
            Linear(1024 + k, 128 * 7 * 7), nn.BatchNorm1d(128 * 7 * 7), nn.ReLU(True), Reshape(128, 7, 7),
            nn.ConvTranspose2d(128 + k, 64, 4, 2, 1), nn.BatchNorm2d(64), nn.ReLU(True),
            nn.ConvTranspose2d(64 + k, c, 4, 2, 1)]
    elif net == "color32":
        layers = [
            Linear(in_dim, 448 * 2 * 2), nn.BatchNorm1d(448 * 2 * 2), nn.ReLU(True), Reshape(448, 2, 2),
            nn.ConvTranspose2d(448 + k, 256, 4, 2, 1), nn.BatchNorm2d(256), nn.ReLU(True),
            nn.ConvTranspose2d(256 + k, 128, 4, 2, 1), nn.ReLU(True),
            nn.ConvTranspose2d(128 + k, 64, 4, 2, 1), nn.ReLU(True),
            nn.ConvTranspose2d(64 + k, c, 4, 2, 1)]
    elif net == "conv64":
        s = h // 16
        layers = [
            Linear(in_dim, 128), nn.BatchNorm1d(128), nn.ReLU(True),
            Linear(128 + k, 64 * s * s), nn.BatchNorm1d(64 * s * s), nn.ReLU(True), Reshape(64, s, s),
            nn.ConvTranspose2d(64 + k, 64, 4, 2, 1), nn.BatchNorm2d(64), nn.ReLU(True),
            nn.ConvTranspose2d(64 + k, 32, 4, 2, 1), nn.BatchNorm2d(32), nn.ReLU(True),
            nn.ConvTranspose2d(32 + k, 32, 4, 2, 1), nn.BatchNorm2d(32), nn.ReLU(True),
            nn.ConvTranspose2d(32 + k, c, 4, 2, 1)]
    else:
        raise ValueError(f"unknown net {net!r}: use {', '.join(NETS)}")
    if output == "sigmoid":
        layers.append(nn.Sigmoid())
    elif output != "logits":
        raise ValueError(f"output must be 'sigmoid' or 'logits', got {output!r}")
    return EveryLayer(layers, k) if k else nn.Sequential(*layers)


class EveryLayer(nn.Module):
    """A generator whose input's last ``k`` values are fed again to every weighted layer after the
    first: concatenated to a vector, or as ``k`` constant channels of a feature map (the codes
    reach the deep layers directly, not only through the first layer's features)."""

    def __init__(self, layers: list[nn.Module], k: int):
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.k = k

    def __getitem__(self, i: int) -> nn.Module:
        return self.layers[i]

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        c = z[:, z.shape[1] - self.k:]
        h = self.layers[0](z)
        for layer in self.layers[1:]:
            if isinstance(layer, (nn.Linear, nn.ConvTranspose2d)):
                extra = c.to(h.dtype)
                if h.dim() == 4:
                    extra = extra[:, :, None, None].expand(-1, -1, h.shape[2], h.shape[3])
                h = torch.cat([h, extra], dim=1)
            h = layer(h)
        return h


def build_trunk(net: str, image_shape, spectral_norm: bool = False, batch_norm: bool = True
                ) -> tuple[nn.Sequential, int]:
    """Images of ``image_shape`` -> ``(n, width)`` features; returns ``(trunk, width)``."""
    c, h, _ = image_shape
    sn, bn1, bn2 = spectral_norm, nn.BatchNorm1d, nn.BatchNorm2d
    if net == "mnist":
        return nn.Sequential(
            spectral(nn.Conv2d(c, 64, 4, 2, 1), sn), nn.LeakyReLU(LRELU, True),
            spectral(nn.Conv2d(64, 128, 4, 2, 1), sn), _norm(bn2, 128, batch_norm), nn.LeakyReLU(LRELU, True),
            nn.Flatten(),
            spectral(Linear(128 * 7 * 7, 1024), sn), _norm(bn1, 1024, batch_norm), nn.LeakyReLU(LRELU, True),
        ), 1024
    if net == "color32":
        return nn.Sequential(
            spectral(nn.Conv2d(c, 64, 4, 2, 1), sn), nn.LeakyReLU(LRELU, True),
            spectral(nn.Conv2d(64, 128, 4, 2, 1), sn), _norm(bn2, 128, batch_norm), nn.LeakyReLU(LRELU, True),
            spectral(nn.Conv2d(128, 256, 4, 2, 1), sn), _norm(bn2, 256, batch_norm), nn.LeakyReLU(LRELU, True),
            nn.Flatten(),
        ), 256 * 4 * 4
    if net == "conv64":
        s = h // 16
        return nn.Sequential(
            spectral(nn.Conv2d(c, 32, 4, 2, 1), sn), nn.LeakyReLU(LRELU, True),
            spectral(nn.Conv2d(32, 32, 4, 2, 1), sn), _norm(bn2, 32, batch_norm), nn.LeakyReLU(LRELU, True),
            spectral(nn.Conv2d(32, 64, 4, 2, 1), sn), _norm(bn2, 64, batch_norm), nn.LeakyReLU(LRELU, True),
            spectral(nn.Conv2d(64, 64, 4, 2, 1), sn), _norm(bn2, 64, batch_norm), nn.LeakyReLU(LRELU, True),
            nn.Flatten(),
            spectral(Linear(64 * s * s, 128), sn), _norm(bn1, 128, batch_norm), nn.LeakyReLU(LRELU, True),
        ), 128
    raise ValueError(f"unknown net {net!r}: use {', '.join(NETS)}")


def translate(x: torch.Tensor, px: int, rng: torch.Generator) -> torch.Tensor:
    """Shift each image by a random integer offset in [-px, px] (zero fill), differentiably
    (DiffAugment's translation, Zhao et al. 2020)."""
    if px <= 0:
        return x
    b, c, h, w = x.shape
    shift = torch.randint(-px, px + 1, (2, b), generator=rng).to(x.device)
    ys = torch.arange(h, device=x.device)[None, :] + shift[0][:, None] + px  # (b, h) rows to read
    xs = torch.arange(w, device=x.device)[None, :] + shift[1][:, None] + px  # (b, w) columns
    flat = (ys[:, :, None] * (w + 2 * px) + xs[:, None, :]).view(b, 1, h * w).expand(b, c, h * w)
    return torch.nn.functional.pad(x, [px, px, px, px]).flatten(2).gather(2, flat).view(b, c, h, w)
