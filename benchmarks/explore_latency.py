"""Latency of ``genzoo explore``: a slider being dragged, and 8 clients at once, on 127.0.0.1 only.

    python benchmarks/explore_latency.py [MODEL] [--updates 200] [--clients 8] [--concurrent-requests 400]
                                         [--time-limit 60] [--rows 8] [--cols 8] [--threads N] [--out FILE]

MODEL is a run folder or a ``.safetensors`` file (``runs/infogan-mnist-<time>/`` after ``make
demo``); without one, a 1-step ``infogan-mnist`` model is trained first (its weights do not matter
to the timing: the networks are the same). The script starts ``genzoo explore MODEL --port 0`` as a
subprocess on 127.0.0.1 and talks to nothing else.

* ``sequential``: ``--updates`` grid requests one after another, as the page sends them while the
  c2 slider is dragged from -2 to 2 (an 8x8 grid, c1 fixed, one seed): the client's round trip and
  the server's own time (its ``Server-Timing`` header: rendering, PNG encoding, total).
* ``read``: Q's reading of that grid (``/api/grid/read``), which the page asks for after each image.
* ``concurrent``: ``--clients`` threads, each with its own connection, share ``--concurrent-requests``
  grid requests with different slider values. The model runs one request at a time, so the round
  trip grows with the queue; ``server_wait_ms`` is the time spent waiting for the model.

Every phase stops at ``--time-limit`` seconds. Prints JSON (p50, p95, max in ms per phase).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent


def percentiles(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    v = sorted(values)

    def q(p: float) -> float:
        i = (len(v) - 1) * p
        lo, hi = int(i), min(int(i) + 1, len(v) - 1)
        return v[lo] + (v[hi] - v[lo]) * (i - lo)

    return {"n": len(v), "p50": round(q(0.5), 2), "p95": round(q(0.95), 2), "max": round(v[-1], 2),
            "mean": round(sum(v) / len(v), 2)}


def server_timing(header: str) -> dict[str, float]:
    out = {}
    for part in header.split(","):
        name, _, dur = part.strip().partition(";dur=")
        if dur:
            out[name] = float(dur)
    return out


def train_tiny(folder: Path) -> Path:
    cmd = [str(BIN / "genzoo"), "run", "infogan-mnist", "--steps", "1", "--out", str(folder), "--no-progress",
           "--set", "train.batch_size=16", "--set", "log.sample_every=0", "--set", "log.checkpoint_every=0",
           "--set", "log.eval_samples=64", "--set", "data.download=false"]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=dict(os.environ, OMP_NUM_THREADS="1"))
    return folder


def start_server(model: str, env: dict, log) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([str(BIN / "genzoo"), "explore", model, "--port", "0", "--host", "127.0.0.1"],
                            stdout=subprocess.PIPE, stderr=log, text=True, env=env)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(s) for s in proc.stdout], daemon=True).start()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.2)
        except queue.Empty:
            if proc.poll() is not None:
                break
            continue
        if " at http://127.0.0.1:" in line:
            return proc, line.split(" at ", 1)[1].split()[0]
    proc.kill()
    raise SystemExit("genzoo explore did not start; see its log")


def grid_body(args, c2: float) -> dict:
    return {"seed": 0, "rows": args.rows, "cols": args.cols, "codes": {"c1": 3, "c2": round(c2, 4)}}


def sequential(client: httpx.Client, args) -> dict:
    rtt, total, render, png, read = [], [], [], [], []
    t_end = time.monotonic() + args.time_limit
    for i in range(args.updates):
        if time.monotonic() > t_end:
            break
        c2 = -2 + 4 * i / max(1, args.updates - 1)
        t0 = time.perf_counter()
        r = client.post("/api/grid", json=grid_body(args, c2))
        rtt.append((time.perf_counter() - t0) * 1e3)
        r.raise_for_status()
        st = server_timing(r.headers["server-timing"])
        total.append(st["total"])
        render.append(st["render"])
        png.append(st["png"])
        if i % 4 == 0:  # the page reads the grid after the image, when the slider rests
            t0 = time.perf_counter()
            client.post("/api/grid/read", json=grid_body(args, c2)).raise_for_status()
            read.append((time.perf_counter() - t0) * 1e3)
    return {"round_trip_ms": percentiles(rtt), "server_total_ms": percentiles(total),
            "server_render_ms": percentiles(render), "server_png_ms": percentiles(png),
            "read_grid_round_trip_ms": percentiles(read)}


def concurrent(url: str, args) -> dict:
    jobs: queue.Queue = queue.Queue()
    for i in range(args.concurrent_requests):
        jobs.put(-2 + 4 * ((i * 37) % 101) / 100)  # scattered slider values: no two neighbours alike
    rtt, total, wait, failures = [], [], [], []
    lock = threading.Lock()
    t_end = time.monotonic() + args.time_limit

    def client_loop():
        with httpx.Client(base_url=url, timeout=60, trust_env=False) as client:
            while time.monotonic() < t_end:
                try:
                    c2 = jobs.get_nowait()
                except queue.Empty:
                    return
                t0 = time.perf_counter()
                try:
                    r = client.post("/api/grid", json=grid_body(args, c2))
                    dt = (time.perf_counter() - t0) * 1e3
                    r.raise_for_status()
                    st = server_timing(r.headers["server-timing"])
                except httpx.HTTPError as e:
                    with lock:
                        failures.append(f"{type(e).__name__}: {e}")
                    continue
                with lock:
                    rtt.append(dt)
                    total.append(st["total"])
                    wait.append(st["wait"])

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client_loop) for _ in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    return {"clients": args.clients, "requests": len(rtt), "failures": len(failures),
            "failure_examples": failures[:3], "seconds": round(elapsed, 2),
            "requests_per_s": round(len(rtt) / elapsed, 2) if elapsed > 0 else None,
            "round_trip_ms": percentiles(rtt), "server_total_ms": percentiles(total),
            "server_wait_ms": percentiles(wait)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", nargs="?", help="run folder or .safetensors (default: train a 1-step model)")
    ap.add_argument("--updates", type=int, default=200, help="sequential grid requests (at most)")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--concurrent-requests", type=int, default=400, help="requests shared by the clients")
    ap.add_argument("--time-limit", type=float, default=60.0, help="seconds per phase, at most")
    ap.add_argument("--rows", type=int, default=8)
    ap.add_argument("--cols", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--threads", type=int, default=None,
                    help="OMP_NUM_THREADS for the server (default: unset, torch's own choice)")
    ap.add_argument("--out", help="also write the JSON here")
    args = ap.parse_args(argv)
    for name in ("updates", "clients", "concurrent_requests", "rows", "cols"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.updates > 10_000 or args.concurrent_requests > 10_000 or args.clients > 64 or args.time_limit > 600:
        ap.error("keep it bounded: at most 10,000 requests, 64 clients, 600 s a phase")

    load_before = round(os.getloadavg()[0], 2)  # the machine may be shared: say how busy it was
    env = dict(os.environ)
    if args.threads is not None:
        env["OMP_NUM_THREADS"] = str(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or str(train_tiny(Path(tmp) / "run"))
        log_path = Path(tmp) / "server.log"
        with log_path.open("w") as log:
            proc, url = start_server(model, env, log)
            try:
                with httpx.Client(base_url=url, timeout=60, trust_env=False) as client:
                    card = client.get("/api/model").json()
                    for i in range(args.warmup):
                        c2 = -2 + 4 * i / max(1, args.warmup)
                        client.post("/api/grid", json=grid_body(args, c2)).raise_for_status()
                    seq = sequential(client, args)
                conc = concurrent(url, args)
            finally:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
        import torch

        result = {
            "benchmark": "explore_latency",
            "model": args.model or "infogan-mnist, 1 training step (untrained weights; same networks)",
            "family": card["family"], "recipe": card["recipe"], "step": card["step"],
            "image_shape": card["image_shape"],
            "grid": f"{args.rows}x{args.cols}", "images_per_grid": args.rows * args.cols,
            "server_threads": (args.threads if args.threads is not None
                               else f"torch default ({torch.get_num_threads()})"),
            "cpu_count": os.cpu_count(), "machine": platform.machine(), "torch": torch.__version__,
            "host": "127.0.0.1",
            "load_average_1min_before_after": [load_before, round(os.getloadavg()[0], 2)],
            "sequential": seq,
            "concurrent": conc,
            "target": "server time per update of an 8x8 MNIST grid at most 100 ms",
            "server_total_p95_within_100ms": seq["server_total_ms"].get("p95", 1e9) <= 100.0,
        }
    text = json.dumps(result, indent=2)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
