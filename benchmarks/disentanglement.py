"""Disentanglement of a recipe with known factors over seeds: MIG, FactorVAE, DCI, and which code follows which factor.

    python benchmarks/disentanglement.py --recipe infogan-sprites32 --seeds 0 1 2 [--set key=value ...]
    python benchmarks/disentanglement.py --recipe infogan-heads3d --seeds 0 1 2
    python benchmarks/disentanglement.py --recipe infogan-chairs3d --seeds 0 1 2

Trains the recipe once per seed (sequentially: never two torch processes at once on a small
machine), scores each trained model's Q against the data set's known factors (``data.truth``,
a ``genzoo_infogan.disentangle.GroundTruth``: sprites, heads3d, chairs3d) with
``genzoo_infogan.disentangle.ground_truth_scores`` (MIG, Chen et al. 2018; FactorVAE score, Kim &
Mnih 2018; DCI with gradient-boosted trees, Eastwood & Williams 2018, as disentanglement_lib
computes it), and prints JSON: per-seed scores, the per-code factor table (each code's factor of
highest normalised mutual information, NMI = I(code; factor) / H(factor)), each factor's best NMI
over the codes, the median of each metric, the CPU minutes each run took (training and scoring),
the device and the image size. Medians over seeds, because these scores vary a lot from seed to
seed (Locatello et al. 2019). Each run folder also gets one traversal picture per code, as the
paper's figures 3 and 4 (a row per noise draw, the code swept across the columns: -2 .. 2 for a
uniform code, every category for a categorical one), named after the code's factor:
``traverse-c3-azimuth.png``.
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
    from genzoo_infogan.disentangle import ground_truth_scores, model_code_encoder
    from genzoo_infogan.engine import Trainer
    from genzoo_infogan.host import default_registry
    from genzoo_infogan.images import save_grid

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipe", default="infogan-sprites32")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default=None, help="keep run folders here (default: a temporary folder)")
    ap.add_argument("--n", type=int, default=10000, help="random factor draws for MIG, the code table and the "
                                                         "FactorVAE std")
    ap.add_argument("--dci-points", type=int, default=3000, help="of those, the first N for DCI (80%% train)")
    ap.add_argument("--votes", type=int, default=800, help="FactorVAE votes, for training and again for eval")
    ap.add_argument("--L", type=int, default=64, help="images per FactorVAE vote")
    ap.add_argument("--metric-seed", type=int, default=0, help="seed of the metrics' draws (same for all runs)")
    args = ap.parse_args(argv)

    registry = default_registry()
    runs = []
    root = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="genzoo-bench-"))
    config = None
    factor_names: list[str] = []
    for seed in args.seeds:
        overrides = list(args.overrides) + [f"seed={seed}", "log.sample_every=0", "log.checkpoint_every=0"]
        if args.steps:
            overrides.append(f"train.steps={args.steps}")
        config = resolve(find_recipe(args.recipe, registry), registry, overrides)
        t0, c0 = time.perf_counter(), time.process_time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trainer = Trainer(config, out_dir=root / f"seed{seed}", device=args.device, force=True, progress=False)
            res = trainer.run()
        t1, c1 = time.perf_counter(), time.process_time()
        truth = getattr(trainer.data, "truth", None)
        if truth is None:
            print(f"recipe {args.recipe!r} trains on {config['data']['name']!r}, which has no known factors "
                  "(sprites, heads3d and chairs3d have)", file=sys.stderr)
            return 2
        factor_names = list(truth.factor_names)
        report = ground_truth_scores(model_code_encoder(res.model), truth, code_names=res.model.codes.names,
                                     n=args.n, seed=args.metric_seed, L=args.L, n_train_votes=args.votes,
                                     n_eval_votes=args.votes, dci_points=args.dci_points)
        table = report["code_factors"]
        pictures = []
        for name, _ in res.model.codes:
            grid = res.model.traverse(name, rows=8, steps=10, seed=0)
            path = root / f"seed{seed}" / f"traverse-{name}-{table[name]['factor']}.png"
            save_grid(grid, path, nrow=len(grid) // 8, scale=2)
            pictures.append(str(path))
        best = {f: max((row["per_factor"][f] for row in table.values()), default=0.0) for f in factor_names}
        runs.append({"seed": seed, **report["disentanglement"], "factor_best_nmi": best, "code_factors": table,
                     "steps": res.step, "run_folder": str(root / f"seed{seed}"), "pictures": pictures,
                     "train_wall_minutes": round((t1 - t0) / 60, 2), "train_cpu_minutes": round((c1 - c0) / 60, 2),
                     "score_wall_minutes": round((time.perf_counter() - t1) / 60, 2),
                     "score_cpu_minutes": round((time.process_time() - c1) / 60, 2)})
        print(json.dumps(runs[-1]), file=sys.stderr, flush=True)
    metrics = ("mig", "factor_vae", "dci_disentanglement", "dci_completeness", "dci_informativeness")
    print(json.dumps({
        "recipe": args.recipe, "overrides": args.overrides, "steps": config["train"]["steps"],
        "data": config["data"]["name"], "factors": factor_names,
        "image_size": int(res.model.image_shape[-1]), "device": args.device,
        "threads": torch.get_num_threads(), "precision": config["train"]["precision"],
        "metric_settings": {"n": args.n, "dci_points": args.dci_points, "votes": args.votes, "L": args.L,
                            "seed": args.metric_seed},
        "runs": runs,
        "median": {m: statistics.median(r[m] for r in runs) for m in metrics},
        "min": {m: min(r[m] for r in runs) for m in metrics},
        "max": {m: max(r[m] for r in runs) for m in metrics},
        "median_factor_best_nmi": {f: statistics.median(r["factor_best_nmi"][f] for r in runs) for f in factor_names},
        "cpu_minutes": round(sum(r["train_cpu_minutes"] + r["score_cpu_minutes"] for r in runs), 2),
    }, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
