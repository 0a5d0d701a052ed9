"""What simple image statistics tell about each factor of heads3d and chairs3d (issue #22).

    python benchmarks/results/cpu-2026-12-06/image-statistics-nmi.py

Renders each data set's whole factor grid at 32x32 and scores four statistics of the pixels, each
as if it were a code: NMI(statistic; factor), the same 20-bin estimate as a code's NMI in
`genzoo eval` (disentangle.normalised_mi). The object is whatever is brighter than 0.01 (the
background is 0). Prints JSON.
"""

import json

import torch

from genzoo_infogan.disentangle import normalised_mi
from genzoo_infogan.render3d import Chairs3D, Heads3D

torch.set_num_threads(1)
out = {}
for cls in (Heads3D, Chairs3D):
    scene = cls(32)
    factors = scene.all_factors()
    x = torch.cat([scene.render(factors[i:i + 1000]) for i in range(0, len(factors), 1000)])[:, 0]
    mask = (x > 0.01).float()
    columns = torch.arange(x.shape[-1], dtype=torch.float32)
    stats = {
        "silhouette_width": mask.amax(1).sum(1),                          # columns the object covers
        "silhouette_area": mask.sum((1, 2)),
        "mean_brightness": x.mean((1, 2)),
        "centroid_x": (mask * columns).sum((1, 2)) / mask.sum((1, 2)),    # where the object's mass is, left-right
    }
    out[cls.__name__] = {
        name: dict(zip(scene.factor_names, (round(max(float(v), 0.0), 3) for v in
                                            normalised_mi(s.numpy()[:, None], factors.numpy())[0])))
        for name, s in stats.items()}
print(json.dumps(out, indent=1))
