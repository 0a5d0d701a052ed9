"""Disentanglement of a sprites recipe over seeds: MIG, FactorVAE score, DCI disentanglement.

    python benchmarks/disentanglement.py --recipe infogan-sprites32 --seeds 0 1 2 [--set key=value ...]

Trains the recipe once per seed (sequentially: never two torch processes at once on a small
machine), scores each trained model's Q against the sprites' known factors with
``genzoo_infogan.disentangle.disentanglement_scores`` (MIG, Chen et al. 2018; FactorVAE score,
Kim & Mnih 2018; DCI disentanglement, Eastwood & Williams 2018), and prints JSON: per-seed scores,
the median of each metric, the CPU minutes each run took (training and scoring), the device and
the image size. Medians over seeds, because these scores vary a lot from seed to seed (Locatello
et al. 2019).
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
    from genzoo_infogan.cli import find_recipe
    from genzoo_infogan.config import resolve
    from genzoo_infogan.disentangle import disentanglement_scores, model_code_encoder
    from genzoo_infogan.engine import Trainer
    from genzoo_infogan.sprites import Sprites

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipe", default="infogan-sprites32")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default=None, help="keep run folders here (default: a temporary folder)")
    ap.add_argument("--n", type=int, default=10000, help="random sprites for MIG, DCI and the FactorVAE std")
    ap.add_argument("--votes", type=int, default=800, help="FactorVAE votes, for training and again for eval")
    ap.add_argument("--L", type=int, default=64, help="images per FactorVAE vote")
    ap.add_argument("--metric-seed", type=int, default=0, help="seed of the metrics' sprites (same for all runs)")
    args = ap.parse_args(argv)

    runs = []
    root = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="genzoo-bench-"))
    config = None
    for seed in args.seeds:
        overrides = list(args.overrides) + [f"seed={seed}", "log.sample_every=0", "log.checkpoint_every=0"]
        if args.steps:
            overrides.append(f"train.steps={args.steps}")
        config = resolve(find_recipe(args.recipe), overrides)
        if config["data"]["name"] != "sprites":
            print(f"recipe {args.recipe!r} trains on {config['data']['name']!r}, not 'sprites'", file=sys.stderr)
            return 2
        t0, c0 = time.perf_counter(), time.process_time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = Trainer(config, out_dir=root / f"seed{seed}", device=args.device, force=True, progress=False).run()
        t1, c1 = time.perf_counter(), time.process_time()
        size = int(res.model.image_shape[-1])
        scores = disentanglement_scores(model_code_encoder(res.model), Sprites(size), n=args.n,
                                        seed=args.metric_seed, L=args.L, n_train_votes=args.votes,
                                        n_eval_votes=args.votes)
        runs.append({"seed": seed, **scores, "steps": res.step,
                     "train_wall_minutes": round((t1 - t0) / 60, 2), "train_cpu_minutes": round((c1 - c0) / 60, 2),
                     "score_wall_minutes": round((time.perf_counter() - t1) / 60, 2),
                     "score_cpu_minutes": round((time.process_time() - c1) / 60, 2)})
        print(json.dumps(runs[-1]), file=sys.stderr, flush=True)
    metrics = ("mig", "factor_vae", "dci_disentanglement")
    print(json.dumps({
        "recipe": args.recipe, "overrides": args.overrides, "steps": config["train"]["steps"],
        "image_size": int(config["data"]["size"] or 64), "device": args.device,
        "threads": torch.get_num_threads(), "precision": config["train"]["precision"],
        "metric_settings": {"n": args.n, "votes": args.votes, "L": args.L, "seed": args.metric_seed},
        "runs": runs,
        "median": {m: statistics.median(r[m] for r in runs) for m in metrics},
        "min": {m: min(r[m] for r in runs) for m in metrics},
        "max": {m: max(r[m] for r in runs) for m in metrics},
        "cpu_minutes": round(sum(r["train_cpu_minutes"] + r["score_cpu_minutes"] for r in runs), 2),
    }, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
