"""The training loop, the same for every family.

For each step: draw a batch; for each of the model's phases (InfoGAN: ``d`` then ``g``) the family
computes its losses (``model.phase_outputs``), the ``loss_terms`` hooks add theirs (the info loss
where the phase carries codes), and the engine steps that phase's Adam optimizer. Every
``log.every`` steps a JSON line goes to ``metrics.jsonl``; every ``log.sample_every`` steps the
sample grid and code traversals are drawn; every ``log.checkpoint_every`` steps a checkpoint is
written. At the end: ``model.safetensors``, ``config.toml``, ``eval.json``.

Runs are seeded and deterministic on the CPU (same seed, same weights). ``--resume`` continues from
the last checkpoint with the optimizer moments and every RNG state, so N steps + resume + N steps
gives the weights of 2N steps. SIGINT / SIGTERM write a checkpoint and stop (exit 130 / 143).

Under ``torchrun`` (``WORLD_SIZE`` > 1) the model is wrapped in DistributedDataParallel (gloo on
CPU, nccl on CUDA). Each rank draws a different shard of every global batch and its own codes and
noise. BatchNorm keeps per-rank batch statistics (each rank normalises its own batch, as with one
process at that batch size) and DDP broadcasts rank 0's running statistics at every forward (and
once more at the end), so rank 0's statistics are the model's on every rank. SyncBatchNorm would
instead normalise over the global batch, but it needs CUDA; per-rank statistics keep the
single-process behaviour at the per-rank batch size on every backend. Rank 0 alone writes the run
folder.
"""

from __future__ import annotations

import json
import math
import os
import signal
import time
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import torch

from . import checkpoint as ckpt
from .codes import CodeSet
from .config import dumps_toml
from .data import ImageData, load_dataset
from .errors import TrainingStopped, UserError
from .host import get_host
from .images import save_grid

EXIT_SIGNAL = {signal.SIGINT: 130, signal.SIGTERM: 143}
EXIT_NAN = 3


# -- devices and precision -----------------------------------------------------------------------
def resolve_device(name: str = "auto") -> torch.device:
    name = (name or "auto").lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserError(f"device {name!r} is not available here (no CUDA GPU is visible); use --device cpu")
        dev = torch.device(name)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise UserError(f"device {name!r} is not available: {torch.cuda.device_count()} CUDA device(s)")
        return dev
    if name == "cpu":
        return torch.device("cpu")
    if name == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise UserError("device 'mps' is not available here; use --device cpu")
        return torch.device("mps")
    raise UserError(f"unknown device {name!r}: use cpu, cuda, cuda:N or auto")


def cpu_supports_bf16() -> bool:
    """True where the CPU has native bf16 matrix instructions (AVX512-BF16 or AMX)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(precision: str, device: torch.device) -> str:
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    if device.type == "cpu":
        return "bf16" if cpu_supports_bf16() else "fp32"
    return "fp32"


def autocast_ctx(device: torch.device, precision: str):
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return nullcontext()


# -- the run folder --------------------------------------------------------------------------------
def default_out_dir(config: dict) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{config.get('name') or 'run'}-{stamp}"


def check_out_dir(out: Path, resume: bool, force: bool) -> None:
    """Refuse an output folder that would lose something, before any work is done."""
    if out.exists() and not out.is_dir():
        raise UserError(f"output path {str(out)!r} exists and is not a folder")
    if out.exists() and any(out.iterdir()) and not (resume or force):
        raise UserError(f"output folder {str(out)!r} exists and is not empty: use --resume {out} to continue "
                        "that run, --force to overwrite it, or --out for another folder")
    if resume and not (out / "config.toml").is_file():
        raise UserError(f"cannot resume {str(out)!r}: no config.toml there (is it a genzoo run folder?)")


def prepare_out_dir(out: Path, resume: bool, force: bool) -> None:
    check_out_dir(out, resume, force)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise UserError(f"output folder {str(out)!r} is not writable: {e.strerror or e}") from None


@dataclass
class RunResult:
    out_dir: Path | None
    step: int
    eval: dict
    model: Any
    elapsed_s: float


def _dist_info() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    return rank, world


class Trainer:
    def __init__(self, config: dict, out_dir: str | Path | None = None, device: str = "auto",
                 resume: bool = False, force: bool = False, progress: bool = True, console=None,
                 data: ImageData | None = None):
        self.config = config
        self.rank, self.world = _dist_info()
        self.device = resolve_device(device)
        self.precision = resolve_precision(config["train"]["precision"], self.device)
        self.out = Path(out_dir) if out_dir is not None else default_out_dir(config)
        self.resume = resume
        self.force = force
        self.progress = progress
        self.console = console
        self.data = data
        self._stop_signal: int | None = None
        self.host = get_host()

    # -- set-up -----------------------------------------------------------------------------------
    def _setup(self) -> None:
        cfg = self.config
        if self.is_main:
            check_out_dir(self.out, self.resume, self.force)
        if self.world > 1:
            self._init_dist()
        torch.manual_seed(cfg["seed"])
        if self.data is None:
            self.data = load_dataset(cfg["data"])
        self.images = self.data.images.to(self.device)
        family = self.host.families()[cfg["family"]]
        codes = CodeSet.parse(cfg["codes"])
        try:
            self.model = family.build(cfg["model"], codes, self.data.image_shape).to(self.device)
        except ValueError as e:
            raise UserError(f"family {cfg['family']!r} cannot build a model for {self.data.image_shape} "
                            f"images with [model] {cfg['model']}: {e}") from None
        b = cfg["train"]["batch_size"]
        if b * self.world > len(self.data):
            raise UserError(f"train.batch_size={b} x {self.world} process(es) is larger than the dataset "
                            f"({len(self.data)} images: {self.data.source})")
        t = cfg["train"]
        self.opts: dict[str, torch.optim.Optimizer] = {}
        for phase in self.model.phases:
            lr = t["lr"].get(phase)
            if lr is None:
                raise UserError(f"train.lr.{phase} is not set: family {cfg['family']!r} trains phases "
                                f"{list(self.model.phases)} and each needs a learning rate")
            self.opts[phase] = torch.optim.Adam(self.model.phase_parameters(phase), lr=float(lr),
                                                betas=(t["beta1"], t["beta2"]), foreach=True)
        self.step = 0
        self.gen = torch.Generator().manual_seed(cfg["seed"] * 1000 + 17 + self.rank)
        self.data_gen = torch.Generator().manual_seed(cfg["seed"] * 1000 + 29)
        self.perm = torch.randperm(len(self.images), generator=self.data_gen)
        self.pos = 0
        self._phase_param_ids = {ph: {id(p) for p in self.model.phase_parameters(ph)} for ph in self.model.phases}
        self.compiled = self.model
        if t.get("compile"):
            self.compiled = torch.compile(self.model)
        self.ddp = None
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP

            self.ddp = DDP(self.model, find_unused_parameters=True, broadcast_buffers=True)
        if self.is_main:  # only now, so that bad data or a bad model leaves no folder behind
            prepare_out_dir(self.out, self.resume, self.force)
        if self.resume:
            self._load_state()

    def _init_dist(self) -> None:
        import torch.distributed as dist

        if not dist.is_initialized():
            backend = "nccl" if self.device.type == "cuda" else "gloo"
            dist.init_process_group(backend)
        if self.device.type == "cuda":
            self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
            torch.cuda.set_device(self.device)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    # -- batches ----------------------------------------------------------------------------------
    def _next_batch(self) -> torch.Tensor:
        b = self.config["train"]["batch_size"]
        need = b * self.world
        n = len(self.images)
        if self.pos + need > n:
            self.perm = torch.randperm(n, generator=self.data_gen)
            self.pos = 0
        idx = self.perm[self.pos + self.rank * b: self.pos + (self.rank + 1) * b]
        self.pos += need
        return self.images[idx.to(self.device)]

    # -- state ------------------------------------------------------------------------------------
    def _rng_state(self) -> dict[str, torch.Tensor]:
        st = {"torch": torch.get_rng_state(), "gen": self.gen.get_state(), "data_gen": self.data_gen.get_state(),
              "perm": self.perm.clone()}
        if self.device.type == "cuda":
            st["cuda"] = torch.cuda.get_rng_state(self.device)
        return st

    def save_checkpoint(self, metrics: dict | None = None) -> None:
        if not self.is_main:
            return
        ckpt.save_model_file(self.out / "checkpoint.safetensors", self.model, full=True, config=self.config,
                             step=self.step, metrics=metrics)
        ckpt.save_train_state(self.out / "train_state.safetensors", self.opts,
                              {"step": self.step, "pos": self.pos, "world": self.world,
                               "precision": self.precision}, self._rng_state())
        self._write_text("config.toml", dumps_toml(_public(self.config)))

    def _write_text(self, name: str, text: str) -> None:
        ckpt.atomic_write(self.out / name, lambda tmp: tmp.write_text(text))

    def _load_state(self) -> None:
        from safetensors.torch import load_model

        path = self.out / "checkpoint.safetensors"
        state_path = self.out / "train_state.safetensors"
        if not path.exists() or not state_path.exists():
            raise UserError(f"cannot resume {str(self.out)!r}: it has no checkpoint.safetensors and "
                            "train_state.safetensors (the run never reached its first checkpoint)")
        info = ckpt.describe(path)
        view = torch.nn.ModuleDict({m: getattr(self.model, m) for m in info["modules"]})
        try:
            load_model(view, str(path), strict=True, device=str(self.device))
        except Exception as e:
            raise UserError(f"cannot resume from {str(path)!r}: weights do not fit the model: {e}") from None
        scalars, rng = ckpt.load_train_state(state_path, self.opts)
        if int(scalars.get("world", 1)) != self.world:
            raise UserError(f"{str(self.out)!r} was trained with {scalars.get('world')} process(es); "
                            f"resume it with the same number (now {self.world})")
        self.step = int(scalars["step"])
        self.pos = int(scalars["pos"])
        torch.set_rng_state(rng["torch"])
        self.gen.set_state(rng["gen"])
        self.data_gen.set_state(rng["data_gen"])
        self.perm = rng["perm"]
        if "cuda" in rng and self.device.type == "cuda":
            torch.cuda.set_rng_state(rng["cuda"], self.device)
        self._truncate_metrics(self.step)

    def _truncate_metrics(self, step: int) -> None:
        path = self.out / "metrics.jsonl"
        if not path.exists() or not self.is_main:
            return
        keep = []
        for line in path.read_text().splitlines():
            try:
                if json.loads(line).get("step", 0) <= step:
                    keep.append(line)
            except ValueError:
                continue
        path.write_text("".join(line + "\n" for line in keep))

    # -- pictures ---------------------------------------------------------------------------------
    def draw(self, tag: str | None = None) -> list[Path]:
        if not self.is_main:
            return []
        return draw_pictures(self.model, self.out, tag)

    # -- the loop ---------------------------------------------------------------------------------
    def train_step(self) -> dict[str, torch.Tensor]:
        """One step: a batch, then each phase's losses, hook terms, backward and optimizer step.

        Returns detached metrics (no host sync happens here unless a loss is checked for NaN).
        During a phase only that phase's parameters require gradients (on one process), so the
        G phase does not compute weight gradients for D that nobody would use.
        """
        cfg = self.config
        x = self._next_batch()
        step_metrics: dict[str, torch.Tensor] = {}
        fwd = self.ddp if self.ddp is not None else self.compiled
        for phase in self.model.phases:
            if self.ddp is None:
                self._require_grad(phase)
            with autocast_ctx(self.device, self.precision):
                out = fwd(phase, x, self.gen)
                terms = self.host.loss_terms(phase, self.model, out, cfg, self.step)
            losses = {**out["losses"], **terms}
            loss = sum(losses.values())
            if not torch.isfinite(loss):
                if cfg["train"]["on_nan"] == "skip":
                    step_metrics["skipped"] = torch.tensor(1.0)
                    continue
                bad = {k: float(v) for k, v in losses.items() if not math.isfinite(float(v))}
                raise TrainingStopped(
                    f"non-finite loss at step {self.step + 1}, phase {phase!r}: "
                    + ", ".join(f"{k}={v}" for k, v in bad.items())
                    + (f". The last good checkpoint is kept in {self.out}" if self.is_main else ""), EXIT_NAN)
            opt = self.opts[phase]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            for k, v in losses.items():
                step_metrics[f"loss/{phase}_{k}" if k != phase else f"loss/{k}"] = v.detach()
            for k, v in out.get("metrics", {}).items():
                step_metrics[k] = v.detach() if torch.is_tensor(v) else torch.tensor(float(v))
        if self.ddp is None:
            self._require_grad(None)
        self.step += 1
        return step_metrics

    def _require_grad(self, phase: str | None) -> None:
        if phase is None:
            for p in self.model.parameters():
                p.requires_grad_(True)
            return
        ids = self._phase_param_ids[phase]
        for p in self.model.parameters():
            p.requires_grad_(id(p) in ids)

    def _handle_signal(self, signum, frame) -> None:
        self._stop_signal = signum

    def run(self) -> RunResult:
        self._setup()
        cfg = self.config
        t = cfg["train"]
        log = cfg["log"]
        total = t["steps"]
        start_time = time.perf_counter()
        start_step = self.step
        old_handlers = {}
        if self.is_main and threading_is_main():
            for s in EXIT_SIGNAL:
                old_handlers[s] = signal.signal(s, self._handle_signal)
        metrics_file = (self.out / "metrics.jsonl").open("a") if self.is_main else None
        latest: dict[str, float] = {}
        last_eval: dict = {}
        if self.is_main and not self.resume:
            self._write_text("config.toml", dumps_toml(_public(self.config)))
        progress = _make_progress(self.progress and self.is_main, self.console)
        try:
            with progress:
                task = progress.add_task(cfg.get("name") or "train", total=total, completed=self.step, info="")
                self.model.train()
                while self.step < total:
                    step_metrics = self.train_step()
                    if self.step % log["every"] == 0 or self.step == total:
                        latest = {k: float(v) for k, v in step_metrics.items()}
                        if metrics_file is not None:
                            metrics_file.write(json.dumps({"step": self.step, "time": round(time.perf_counter() - start_time, 3), **latest}) + "\n")
                            metrics_file.flush()
                        progress.update(task, info=_summary(latest))
                    progress.update(task, completed=self.step)
                    if t["eval_every"] and self.step % t["eval_every"] == 0 and self.step < total:
                        last_eval = self.evaluate()
                        if metrics_file is not None:
                            metrics_file.write(json.dumps({"step": self.step, "eval": last_eval}) + "\n")
                            metrics_file.flush()
                    if log["sample_every"] and self.step % log["sample_every"] == 0 and self.step < total:
                        self.draw(tag=f"step_{self.step:06d}")
                    if log["checkpoint_every"] and self.step % log["checkpoint_every"] == 0 and self.step < total:
                        self.save_checkpoint(last_eval)
                    if self._stop_signal is not None:
                        self.save_checkpoint(last_eval)
                        name = signal.Signals(self._stop_signal).name
                        raise TrainingStopped(f"{name} at step {self.step}: checkpoint saved in {self.out}; "
                                              f"continue with: genzoo run --resume {self.out}",
                                              EXIT_SIGNAL[self._stop_signal])
            elapsed = time.perf_counter() - start_time
            if self.world > 1:  # rank 0's BatchNorm running statistics are the model's, on every rank
                import torch.distributed as dist

                for buf in self.model.buffers():
                    dist.broadcast(buf, 0)
            last_eval = self.evaluate()
            last_eval["train_steps_per_s"] = round((self.step - start_step) / max(elapsed, 1e-9), 3)
            if self.is_main:
                metrics_file.write(json.dumps({"step": self.step, "eval": last_eval}) + "\n")
                metrics_file.flush()
                self.save_checkpoint(last_eval)
                ckpt.save_model_file(self.out / "model.safetensors", self.model, full=True, config=self.config,
                                     step=self.step, metrics=last_eval)
                self._write_text("eval.json", json.dumps(last_eval, indent=2, sort_keys=True) + "\n")
                self.draw()
            if self.world > 1:
                import torch.distributed as dist

                dist.barrier()  # the other ranks wait while rank 0 evaluates and writes
                dist.destroy_process_group()
            return RunResult(self.out if self.is_main else None, self.step, last_eval, self.model, elapsed)
        finally:
            if metrics_file is not None:
                metrics_file.close()
            for s, h in old_handlers.items():
                signal.signal(s, h)

    def evaluate(self) -> dict:
        from .metrics import evaluate_model

        n = self.config["log"]["eval_samples"]
        if not self.is_main:
            return {}
        labels = self.data.labels
        images = self.images[:n] if labels is not None else None
        res = evaluate_model(self.model, images, labels[:n] if labels is not None else None, n_mi=min(n, 2000))
        res.update(ground_truth_metrics(self.model, self.data))
        return res


def ground_truth_metrics(model, data) -> dict:
    """Disentanglement scores (MIG, FactorVAE, DCI) where the data has ground-truth factors."""
    if data is None or getattr(data, "factors", None) is None:
        return {}
    from .disentangle import sprites_metrics

    return sprites_metrics(model, data)


def threading_is_main() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _public(config: dict) -> dict:
    return {k: v for k, v in config.items() if not k.startswith("_")}


def _summary(m: dict[str, float]) -> str:
    """The progress line's tail: the family's losses, then L_I per code (the info losses are
    -sum lambda L_I, so L_I says it better)."""
    parts = [f"{k[5:]} {v:.3f}" for k, v in m.items() if k.startswith("loss/") and not k.endswith("_info")]
    li = [f"{k[4:]}={v:.2f}" for k, v in m.items() if k.startswith("L_I/")]
    return "  ".join(parts + (["L_I " + " ".join(li)] if li else []))


def _make_progress(enabled: bool, console):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    class Rate(TextColumn):
        def __init__(self):
            super().__init__("")

        def render(self, task):
            from rich.text import Text

            speed = task.finished_speed or task.speed
            return Text(f"{speed:.2f} it/s" if speed else "-- it/s", style="progress.data.speed")

    return Progress(TextColumn("[bold]{task.description}"), BarColumn(bar_width=20), MofNCompleteColumn(), Rate(),
                    TimeRemainingColumn(), TextColumn("{task.fields[info]}"),
                    console=console, disable=not enabled, transient=False)


def draw_pictures(model, out: Path, tag: str | None = None) -> list[Path]:
    """The sample grid (one row per category of the first categorical code, as the paper's
    figure 2a) and a traversal per continuous code (-2..2 for Uniform(-1, 1), figures 2c/2d)."""
    written = []
    codes: CodeSet = model.codes
    cats = [n for n, s in codes if s.discrete]
    grid = model.category_rows(cats[0], per_row=10, seed=0) if cats else model.sample(100, seed=0)
    written.append(save_grid(grid, out / "samples.png", nrow=10))
    if tag:
        written.append(save_grid(grid, out / "samples" / f"{tag}.png", nrow=10))
    for name, spec in codes:
        if spec.discrete:
            if name != (cats[0] if cats else None):
                written.append(save_grid(model.category_rows(name, 10, 0), out / f"traverse_{name}.png", nrow=10))
            continue
        imgs = model.traverse(name, rows=10, steps=10, seed=0)
        written.append(save_grid(imgs, out / f"traverse_{name}.png", nrow=10))
    return written


def train(config: dict, **kwargs) -> RunResult:
    """Train ``config`` (a resolved recipe); keyword arguments as :class:`Trainer`."""
    return Trainer(config, **kwargs).run()
