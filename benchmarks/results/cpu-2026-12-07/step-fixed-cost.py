"""How much of infogan-mnist's step (version 4's whole objective) does not grow with the batch.

    python benchmarks/results/cpu-2026-12-07/step-fixed-cost.py > step-fixed-cost.json

The engine's step (``Trainer.train_step``) at batch 128, 16 and 8 (the transformed images half of
each batch, as the recipe's ``invariance_batch = 64`` of 128), in one process, five rounds of 20
steps in the same order, medians in ms; then ``torch.profiler`` over ten steps at batch 8, where
what is left is what every step pays whatever its batch: the operators with the most time.
"""

import json
import statistics
import tempfile
import time
import warnings

import torch
from torch.profiler import ProfilerActivity, profile

from genzoo_infogan.config import find_recipe, resolve
from genzoo_infogan.data import load_dataset
from genzoo_infogan.engine import Trainer
from genzoo_infogan.host import default_registry

registry = default_registry()
scratch = tempfile.TemporaryDirectory(prefix="genzoo-fixed-")  # the trainers' run folders


def trainer(batch: int) -> Trainer:
    cfg = resolve(find_recipe("infogan-mnist", registry), registry,
                  ["data.download=false", f"train.batch_size={batch}", f"info.invariance_batch={batch // 2}"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = load_dataset(cfg["data"], registry)
    tr = Trainer(cfg, out_dir=f"{scratch.name}/{batch}", device="cpu", progress=False, data=data,
                 force=True, registry=registry)
    tr._setup()
    return tr


trainers = {batch: trainer(batch) for batch in (128, 16, 8)}
for tr in trainers.values():
    for _ in range(5):
        tr.train_step()
ms = {batch: [] for batch in trainers}
for _ in range(5):
    for batch, tr in trainers.items():
        t0 = time.perf_counter()
        for _ in range(20):
            tr.train_step()
        ms[batch].append((time.perf_counter() - t0) / 20 * 1e3)
with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
    for _ in range(10):
        trainers[8].train_step()
rows = sorted(prof.key_averages(group_by_input_shape=True), key=lambda e: -e.self_cpu_time_total)[:15]
print(json.dumps({
    "threads": torch.get_num_threads(),
    "parameters": sum(p.numel() for p in trainers[128].model.parameters()),
    "ms_per_step": {str(b): {"median": round(statistics.median(v), 1), "rounds": [round(x, 1) for x in v]}
                    for b, v in ms.items()},
    "batch_8_profile_ms_per_step": [{"op": e.key, "shapes": str(e.input_shapes), "calls_per_step": e.count / 10,
                                     "self_ms_per_step": round(e.self_cpu_time_total / 1e3 / 10, 2)} for e in rows],
}, indent=2))
scratch.cleanup()
