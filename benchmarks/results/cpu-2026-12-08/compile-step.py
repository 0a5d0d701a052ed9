"""infogan-mnist's whole-objective engine step, eager against its networks compiled (nn.Module.compile
on G, the trunk, D's head and Q's head; without the kept bf16 weight copies, which compile does not
take), in one process.

    python benchmarks/results/cpu-2026-12-08/compile-step.py STEPS ROUNDS [KEY=VALUE ...]

Each round times STEPS steps of each trainer in a random order; prints ms per step per round and
the median speed-up (issue #21; docs/experiments/speed.md).
"""
import random, statistics, tempfile, time, json, warnings, sys
import torch
from genzoo_infogan.config import find_recipe, resolve
from genzoo_infogan.data import load_dataset
from genzoo_infogan.engine import Trainer
from genzoo_infogan.host import default_registry
reg = default_registry()
extra = sys.argv[3:]
cfg = resolve(find_recipe("infogan-mnist", reg), reg, ["data.download=false", *extra])
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    data = load_dataset(cfg["data"], reg)
trs = {}
for name in ("eager", "compiled"):
    tr = Trainer(cfg, out_dir=tempfile.mkdtemp(), device="cpu", progress=False, data=data, force=True, registry=reg)
    tr._setup()
    trs[name] = tr
c = trs["compiled"]
c.weight_casts = None
t0 = time.perf_counter()
for m in ("generator", "trunk", "d_head", "q_head"):
    getattr(c.model, m).compile()
for _ in range(5):
    for n, tr in trs.items():
        t1 = time.perf_counter(); tr.train_step()
        if n == "compiled": print("compiled warm step", round(time.perf_counter() - t1, 1), file=sys.stderr)
secs = {k: [] for k in trs}
rng = random.Random(0)
steps = int(sys.argv[1]); rounds = int(sys.argv[2])
for r in range(rounds):
    names = list(trs); rng.shuffle(names)
    for n in names:
        t0 = time.perf_counter()
        for _ in range(steps):
            trs[n].train_step()
        secs[n].append(time.perf_counter() - t0)
ratios = [a / b for a, b in zip(secs["eager"], secs["compiled"])]
print(json.dumps({"extra": extra, "ms_per_step": {k: [round(1000 * t / steps, 1) for t in v] for k, v in secs.items()},
                  "speedup_per_round": [round(x, 3) for x in ratios], "median_speedup": round(statistics.median(ratios), 3)}, indent=1))
