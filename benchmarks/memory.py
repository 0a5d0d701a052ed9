"""Peak memory (max RSS) of a real `genzoo run`, as JSON.

    python benchmarks/memory.py [--recipe infogan-mnist] [--steps 300] [--set key=value ...]

Runs `genzoo run RECIPE` in a child process (the installed command, with its data loading, training,
sample grids, checkpoints and final evaluation) and reports the child's peak resident set size
from getrusage(RUSAGE_CHILDREN). Memory does not grow with the step count (the data set is one
tensor loaded once, and nothing accumulates per step), so a short run measures the full run's peak.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipe", default="infogan-mnist")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="genzoo-mem-") as out:  # the run folder, removed afterwards
        cmd = [sys.executable, "-m", "genzoo_infogan", "run", args.recipe, "--steps", str(args.steps), "--out", out,
               "--force", "--no-progress", "--set", "log.sample_every=100", "--set", "log.checkpoint_every=100"]
        for o in args.overrides:
            cmd += ["--set", o]
        t0 = time.perf_counter()
        res = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - t0
    if res.returncode != 0:
        print(res.stderr, file=sys.stderr)
        return res.returncode
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
    print(json.dumps({"recipe": args.recipe, "steps": args.steps, "overrides": args.overrides,
                      "max_rss_mib": round(peak_kib / 1024, 1), "wall_s": round(wall, 1),
                      "command": " ".join(cmd[1:])}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
