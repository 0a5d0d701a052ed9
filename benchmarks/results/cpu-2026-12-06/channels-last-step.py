"""infogan-mnist's whole-objective engine step, NCHW against channels_last, in one process.

    python benchmarks/results/cpu-2026-12-06/channels-last-step.py [STEPS] [ROUNDS]

Two trainers of the recipe as it is (bf16 on this CPU); the second has its model and its images
in channels_last. Each round times STEPS steps of each, in a random order; prints ms per step
per round, each round's speed-up and the median (issue #21; docs/experiments/speed.md).
"""
import random, statistics, tempfile, time, json, warnings, sys
import torch
from genzoo_infogan.config import find_recipe, resolve
from genzoo_infogan.data import load_dataset
from genzoo_infogan.engine import Trainer
from genzoo_infogan.host import default_registry

reg = default_registry()
cfg = resolve(find_recipe("infogan-mnist", reg), reg, ["data.download=false"])
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    data = load_dataset(cfg["data"], reg)
trs = {}
for name in ("nchw", "channels_last"):
    tr = Trainer(cfg, out_dir=tempfile.mkdtemp(), device="cpu", progress=False, data=data, force=True, registry=reg)
    tr._setup()
    trs[name] = tr
cl = trs["channels_last"]
cl.model.to(memory_format=torch.channels_last)
cl.images = cl.images.contiguous(memory_format=torch.channels_last)
for _ in range(5):
    for tr in trs.values():
        tr.train_step()
secs = {k: [] for k in trs}
rng = random.Random(0)
steps = int(sys.argv[1]) if len(sys.argv) > 1 else 20
for r in range(int(sys.argv[2]) if len(sys.argv) > 2 else 6):
    names = list(trs); rng.shuffle(names)
    for n in names:
        t0 = time.perf_counter()
        for _ in range(steps):
            trs[n].train_step()
        secs[n].append(time.perf_counter() - t0)
ratios = [a / b for a, b in zip(secs["nchw"], secs["channels_last"])]
print(json.dumps({"threads": torch.get_num_threads(), "ms_per_step": {k: [round(1000 * t / steps, 1) for t in v] for k, v in secs.items()},
                  "speedup_per_round": [round(x, 3) for x in ratios], "median_speedup": round(statistics.median(ratios), 3)}, indent=1))
