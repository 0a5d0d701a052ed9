"""Categorical code accuracy of a recipe over seeds (the paper's MNIST figure: 5% error).

    python benchmarks/code_accuracy.py --recipe infogan-mnist --seeds 0 1 2 3 4 [--set key=value ...]

Trains the recipe once per seed (sequentially: never two torch processes at once on a small
machine) and prints JSON: per-seed accuracy (categories matched to labels, Hungarian), the best
categorical code's confusion counts (which labels merge or split), the accuracy every N steps with
``--set train.eval_every=N``, L_I per code, the median and minimum, the CPU minutes each run
took, and for a family with a reconstruction loss (``vae``) its mean over the last tenth of the
run's logged steps (nats per image: lower is sharper).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch


def main(argv=None) -> int:
    from genzoo_infogan.config import find_recipe, resolve
    from genzoo_infogan.engine import Trainer
    from genzoo_infogan.host import default_registry

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipe", default="infogan-mnist")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default=None, help="keep run folders here (default: a temporary folder)")
    args = ap.parse_args(argv)

    runs = []
    root = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="genzoo-bench-"))
    for seed in args.seeds:
        overrides = list(args.overrides) + [f"seed={seed}", "log.sample_every=0", "log.checkpoint_every=0"]
        if args.steps:
            overrides.append(f"train.steps={args.steps}")
        registry = default_registry()
        config = resolve(find_recipe(args.recipe, registry), registry, overrides)
        t0, c0 = time.perf_counter(), time.process_time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = Trainer(config, out_dir=root / f"seed{seed}", device=args.device, force=True, progress=False).run()
        ev = res.eval
        best = ev.get("codes", {}).get(ev.get("code_accuracy_code"), {})
        # with --set train.eval_every=N: the accuracy every N steps, from the run's metrics
        records = [json.loads(line) for line in (res.out_dir / "metrics.jsonl").read_text().splitlines()]
        by_step = [[r["step"], r["eval"].get("code_accuracy")] for r in records if "eval" in r]
        recon = [r["loss/vae_recon"] for r in records if "loss/vae_recon" in r]
        tail = recon[-max(1, len(recon) // 10):]
        runs.append({"seed": seed, "accuracy": ev.get("code_accuracy"), "mi": ev.get("mi"),
                     "accuracy_by_step": by_step,
                     "reconstruction": round(statistics.fmean(tail), 2) if recon else None,
                     "confusion": best.get("confusion"),  # rows: categories, columns: labels
                     "wall_minutes": round((time.perf_counter() - t0) / 60, 2),
                     "cpu_minutes": round((time.process_time() - c0) / 60, 2)})
        print(json.dumps(runs[-1]), file=sys.stderr, flush=True)
    accs = [r["accuracy"] for r in runs if r["accuracy"] is not None]
    print(json.dumps({
        "recipe": args.recipe, "overrides": args.overrides, "steps": config["train"]["steps"],
        "threads": torch.get_num_threads(), "device": args.device, "precision": config["train"]["precision"],
        "runs": runs, "median_accuracy": statistics.median(accs) if accs else None,
        "min_accuracy": min(accs) if accs else None,
        "median_L_I": {k: statistics.median(r["mi"][k] for r in runs) for k in runs[0]["mi"]} if runs else {},
    }, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
