"""The Q head: shared features -> the parameters of Q(c|x) for every code in a CodeSet."""

from __future__ import annotations

import torch
from torch import nn

from .codes import CodeSet


class QHead(nn.Module):
    """``QHead(in_features, codes, hidden=128)``: FC(hidden)-BN-lReLU-FC(codes.n_params).

    ``hidden=0`` gives a single linear layer (for small models). ``forward`` returns a dict
    ``{code name: {param name: tensor}}``: ``logits`` for categorical codes, ``mean`` and ``std``
    for continuous ones (std learned through a softplus, or fixed at 1, per code). The features
    are *not* detached: the info loss trains whatever produced them (InfoGAN's shared D trunk).
    """

    def __init__(self, in_features: int, codes: CodeSet, hidden: int = 128, batch_norm: bool = True):
        super().__init__()
        if len(codes) == 0:
            raise ValueError("a Q head needs at least one code")
        self.codes = codes
        if hidden:
            layers: list[nn.Module] = [nn.Linear(in_features, hidden)]
            if batch_norm:
                layers.append(nn.BatchNorm1d(hidden))
            layers += [nn.LeakyReLU(0.1), nn.Linear(hidden, codes.n_params)]
            self.net = nn.Sequential(*layers)
        else:
            self.net = nn.Sequential(nn.Linear(in_features, codes.n_params))

    def raw(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features.flatten(1)).float()

    def forward(self, features: torch.Tensor) -> dict[str, dict[str, torch.Tensor]]:
        return self.codes.split_params(self.raw(features))
