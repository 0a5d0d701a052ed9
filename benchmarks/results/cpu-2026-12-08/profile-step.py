"""torch.profiler over ten steps of infogan-mnist's whole-objective engine step (after eight
warm-up steps), ops by their own CPU time.

    python benchmarks/results/cpu-2026-12-08/profile-step.py [KEY=VALUE ...] > profile-step.txt
"""
import tempfile, warnings, sys
import torch
from genzoo_infogan.config import find_recipe, resolve
from genzoo_infogan.data import load_dataset
from genzoo_infogan.engine import Trainer
from genzoo_infogan.host import default_registry
reg = default_registry()
cfg = resolve(find_recipe("infogan-mnist", reg), reg, ["data.download=false", *sys.argv[1:]])
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    data = load_dataset(cfg["data"], reg)
tr = Trainer(cfg, out_dir=tempfile.mkdtemp(), device="cpu", progress=False, data=data, force=True, registry=reg)
tr._setup()
for _ in range(8): tr.train_step()
from torch.profiler import profile, ProfilerActivity
with profile(activities=[ProfilerActivity.CPU]) as p:
    for _ in range(10): tr.train_step()
print(p.key_averages().table(sort_by="self_cpu_time_total", row_limit=40))
