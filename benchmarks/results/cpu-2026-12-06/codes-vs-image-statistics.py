"""Which image statistic each code of a trained heads3d model follows (issue #22).

    python benchmarks/results/cpu-2026-12-06/codes-vs-image-statistics.py RUN_OR_MODEL_FILE

Encodes the whole heads3d grid (32x32) with the model's Q (the point estimates `genzoo eval`
scores) and prints JSON: per code, NMI with each factor (as `genzoo eval`), NMI with the
silhouette's width and with its centroid's column (the statistics of image-statistics-nmi.py, as
integer labels: columns covered, centroid rounded to a quarter column), and Spearman's rank
correlation with each of them.
"""

import json
import sys

import numpy as np
import torch

import genzoo_infogan
from genzoo_infogan.disentangle import model_code_encoder, normalised_mi, represent
from genzoo_infogan.render3d import Heads3D


def ranks(a):
    return np.argsort(np.argsort(a, kind="stable"), kind="stable").astype(np.float64)


def spearman(a, b):
    return float(np.corrcoef(ranks(a), ranks(b))[0, 1])


torch.set_num_threads(1)
model = genzoo_infogan.load(sys.argv[1])
scene = Heads3D(32)
factors = scene.all_factors()
x = torch.cat([scene.render(factors[i:i + 1000]) for i in range(0, len(factors), 1000)])[:, 0]
mask = (x > 0.01).float()
stats = {"silhouette_width": mask.amax(1).sum(1).numpy(),
         "centroid_x": ((mask * torch.arange(32.0)).sum((1, 2)) / mask.sum((1, 2))).numpy()}
labels = np.stack([stats["silhouette_width"].round(), (stats["centroid_x"] * 4).round()], 1).astype(np.int64)
codes = represent(model_code_encoder(model), scene, factors)
f = factors.numpy()
nmi_factors = normalised_mi(codes, f)
nmi_stats = normalised_mi(codes, labels)
out = {}
for i, (name, _) in enumerate(model.codes):
    out[name] = {
        "nmi": {**{k: round(float(nmi_factors[i, j]), 3) for j, k in enumerate(scene.factor_names)},
                **{k: round(float(nmi_stats[i, j]), 3) for j, k in enumerate(stats)}},
        "spearman": {**{k: round(spearman(codes[:, i], f[:, j]), 3) for j, k in enumerate(scene.factor_names)},
                     **{k: round(spearman(codes[:, i], v), 3) for k, v in stats.items()}},
    }
print(json.dumps({"model": sys.argv[1], "codes": out}, indent=1))
