"""How well each factor of a procedural 3D data set can be read from its pixels: a supervised ceiling.

    python benchmarks/readability.py --data heads3d
    python benchmarks/readability.py --data chairs3d [--size 32] [--steps 3000] [--seed 0]

InfoGAN's scores (``disentanglement.py``) ask whether an *unsupervised* Q reads a factor from real
images. This script asks whether any reader can: a small CNN is trained with the factors as labels
(regression of every factor's grid index, scaled to [-1, 1]) on 80% of the factor grid, and its
outputs on the held-out 20% (factor combinations it never saw) are scored with the same
normalised mutual information as the codes (``disentangle.normalised_mi``: 20 equal-width bins,
NMI = I(output; factor) / H(factor)). Prints JSON: each output's NMI with its own factor (the
ceiling for a code's best NMI), the whole output-by-factor matrix, and, where the data set has
``width`` and ``azimuth``, the mean error of the width output per azimuth (a width stretch is seen
edge-on from the side).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from torch import nn


def reader(n_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 64, 4, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(64, 128, 4, 2, 1), nn.LeakyReLU(0.2),
        nn.Conv2d(128, 256, 4, 2, 1), nn.LeakyReLU(0.2), nn.Flatten(), nn.LazyLinear(256), nn.LeakyReLU(0.2),
        nn.Linear(256, n_out))


def main(argv=None) -> int:
    from genzoo_infogan.disentangle import normalised_mi
    from genzoo_infogan.render3d import Chairs3D, Heads3D

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", choices=("heads3d", "chairs3d"), required=True)
    p.add_argument("--size", type=int, choices=(32, 64), default=32)
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)

    torch.manual_seed(a.seed)
    scene = {"heads3d": Heads3D, "chairs3d": Chairs3D}[a.data](a.size)
    factors = scene.all_factors()
    images = scene.render(factors)
    sizes = torch.tensor(scene.factor_sizes)
    target = factors.float() / (sizes - 1).clamp_min(1) * 2 - 1
    order = torch.randperm(len(factors))
    n_train = int(0.8 * len(factors))
    train, test = order[:n_train], order[n_train:]

    net = reader(len(sizes))
    net(images[:2])  # sizes the lazy layer
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    start = time.process_time()
    for _ in range(a.steps):
        i = train[torch.randint(0, n_train, (a.batch_size,))]
        loss = ((net(images[i]) - target[i]) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        out = net(images[test]).numpy()
    truth, wanted = factors[test].numpy(), target[test].numpy()
    nmi = normalised_mi(out, truth)  # (outputs, factors)
    names = scene.factor_names
    result = {
        "data": a.data, "size": a.size, "steps": a.steps, "seed": a.seed,
        "train_images": n_train, "test_images": len(test), "train_cpu_minutes": round((time.process_time() - start) / 60, 2),
        "test_mse": round(float(((out - wanted) ** 2).mean()), 5),
        "nmi_own_factor": {n: round(float(nmi[k, k]), 3) for k, n in enumerate(names)},
        "nmi_matrix": {n: {m: round(float(nmi[k, j]), 3) for j, m in enumerate(names)} for k, n in enumerate(names)},
    }
    if "width" in names and "azimuth" in names:
        w, az = names.index("width"), names.index("azimuth")
        err = np.abs(out[:, w] - wanted[:, w])
        degrees = scene.grids[az]
        result["width_grid_step"] = round(2 / (scene.factor_sizes[w] - 1), 3)
        result["width_mean_abs_error_by_azimuth"] = {
            f"{d:g}": round(float(err[truth[:, az] == k].mean()), 3) for k, d in enumerate(degrees)}
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
