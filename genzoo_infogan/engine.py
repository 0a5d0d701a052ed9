"""The training loop, the same for every family.

For each step (:meth:`Trainer.train_step`): draw a batch; for each of the model's phases (InfoGAN:
``d`` then ``g``) the family computes its losses (``model.phase_outputs``, a
:class:`~genzoo_infogan.model.PhaseOutput`), the ``loss_terms`` hooks add theirs (the info loss
where the phase returns Q's reading of generated images), and the engine steps that phase's Adam
optimizer, unless the loss or a gradient is not finite. Every
``log.every`` steps a JSON line goes to ``metrics.jsonl``; every ``log.sample_every`` steps the
sample grid and code traversals are drawn; every ``log.checkpoint_every`` steps a checkpoint is
written. At the end: ``model.safetensors``, ``config.toml``, ``eval.json``.

Before the run folder is made, everything the run needs is checked: the data set loads, the family
builds the model, every phase and every loss hook runs once on a real batch (on a copy of the
model, with its own random numbers, so the run itself is unchanged). Bad input therefore leaves no
folder.

Precision: with bf16 (``train.precision = "auto"`` where the CPU or GPU has native bf16), each
phase runs under bf16 autocast: the networks compute in bf16, and every loss is computed in fp32
from ``.float()`` tensors, as the loss functions of :mod:`genzoo_infogan.losses` do. A loss that
a family returns in a 16-bit type was computed in 16 bits; the engine says so once (a warning
naming the loss), then adds it in fp32. The networks' linear layers read a bf16 copy of their
weight that the engine keeps between phases and refreshes after each optimizer step
(:mod:`genzoo_infogan.weightcast`): autocast's numbers, with one cast per change of a weight
instead of one per use.

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

import copy
import json
import os
import signal
import threading
import time
import warnings
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import torch

from . import checkpoint as ckpt
from .codes import CodeSet
from .config import dumps_toml, settings_from_table
from .data import DataWarning, ImageData, load_dataset
from . import disentangle
from .errors import TrainingStopped, UserError
from .host import default_registry
from .images import save_grid
from .io import atomic_write, replace_dir
from .metrics import evaluate_model, labelled_subset
from .model import PhaseOutput
from .registry import Registry
from .weightcast import WeightCasts

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


def cpu_description(cpuinfo: str | None = None) -> str:
    """The first CPU's model name, family and model in ``/proc/cpuinfo`` (or the text given), as
    ``"AMD EPYC, family 25, model 17"``, so that benchmark figures say which machine gave them;
    ``""`` where it cannot be read."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return ""
    first = {}
    for line in cpuinfo.split("\n\n", 1)[0].splitlines():
        key, sep, value = line.partition(":")
        if sep:
            first[key.strip()] = value.strip()
    parts = [first.get("model name", "")]
    if "cpu family" in first:
        parts.append(f"family {first['cpu family']}")
    if "model" in first:
        parts.append(f"model {first['model']}")
    return ", ".join(p for p in parts if p)


def resolve_precision(precision: str, device: torch.device) -> str:
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    if device.type == "cpu":
        return "bf16" if cpu_supports_bf16() else "fp32"
    return "fp32"


def autocast_ctx(device: torch.device, precision: str):
    """bf16 autocast for a phase's forward pass and loss terms (``precision = "bf16"``), else nothing."""
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return nullcontext()


# -- the optimizers --------------------------------------------------------------------------------
def adam_kernel(device: torch.device) -> dict:
    """Adam's fused kernel (one pass over each parameter; the same update as ``foreach`` up to float
    rounding, and the training step about 5% faster on the 2-core CPU) on a CPU or a CUDA GPU, else
    ``foreach``."""
    return {"fused": True} if device.type in ("cpu", "cuda") else {"foreach": True}


def lr_factor(step: int, train: dict) -> float:
    """The learning rates' multiplier at ``step`` (counted from 0): 1, or with ``lr_schedule =
    "linear"`` 1 until ``lr_decay_start``, then falling linearly to 0 at step ``steps``."""
    if train.get("lr_schedule", "constant") != "linear":
        return 1.0
    start, end = train["lr_decay_start"], train["steps"]
    if step < start or end <= start:
        return 1.0
    return max(0.0, (end - step) / (end - start))


# -- the run folder --------------------------------------------------------------------------------
def default_out_dir(config: dict) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{config.get('name') or 'run'}-{stamp}"


def check_out_dir(out: Path, resume: bool, force: bool) -> None:
    """Refuse an output folder that would lose something or cannot be written, before any work."""
    if out.exists() and not out.is_dir():
        raise UserError(f"output path {str(out)!r} exists and is not a folder")
    if out.exists() and any(out.iterdir()) and not (resume or force):
        raise UserError(f"output folder {str(out)!r} exists and is not empty: use --resume {out} to continue "
                        "that run, --force to start it afresh, or --out for another folder")
    if resume and not (out / "config.toml").is_file():
        raise UserError(f"cannot resume {str(out)!r}: no config.toml there (is it a genzoo run folder?)")
    parent = next((p for p in [out, *out.parents] if p.exists()), Path("."))
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"output folder {str(out)!r} cannot be created: {str(parent)!r} is not a writable folder")


def prepare_out_dir(out: Path, resume: bool, force: bool) -> None:
    """Create the run folder (``force``: start an existing one afresh, atomically)."""
    check_out_dir(out, resume, force)
    try:
        if force and not resume and out.exists() and any(out.iterdir()):
            replace_dir(out)
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
    """Trains a resolved config. ``registry`` (default: the installed plugins') supplies the
    family, the data set and the loss hooks; ``data`` replaces the config's data set."""

    def __init__(self, config: dict, out_dir: str | Path | None = None, device: str = "auto",
                 resume: bool = False, force: bool = False, progress: bool = True, console=None,
                 data: ImageData | None = None, registry: Registry | None = None):
        self.config = config
        self.registry = registry if registry is not None else default_registry()
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
        self._warned: set[tuple[str, str]] = set()

    # -- set-up: everything is checked before the run folder is made --------------------------------
    def _setup(self) -> None:
        cfg = self.config
        if self.is_main:
            check_out_dir(self.out, self.resume, self.force)
        if self.world > 1:
            self._init_dist()
        torch.manual_seed(cfg["seed"])
        if self.data is None:
            self.data = self._load_data()
        self.images = self.data.images.to(self.device)
        family = self.registry.family(cfg["family"], needed_by=f"recipe {cfg['name']!r}")
        codes = CodeSet.parse(cfg["codes"], self.registry.code_types)
        settings = settings_from_table(family.settings, cfg["model"])
        try:
            self.model = family.build(settings, codes, self.data.image_shape).to(self.device)
        except (ValueError, RuntimeError, MemoryError) as e:  # a bad combination, or one too big to allocate
            raise UserError(f"family {cfg['family']!r} cannot build a model for {self.data.image_shape} "
                            f"images with [model] {cfg['model']}: {type(e).__name__}: {str(e)[:300]}") from None
        if cfg["train"]["channels_last"]:  # NHWC for the convolutions: oneDNN's preferred layout
            self.model.to(memory_format=torch.channels_last)
            self.images = self.images.contiguous(memory_format=torch.channels_last)
        b = cfg["train"]["batch_size"]
        if b * self.world > len(self.data):
            raise UserError(f"train.batch_size={b} x {self.world} process(es) is larger than the dataset "
                            f"({len(self.data)} images: {self.data.source})")
        t = cfg["train"]
        self.opts: dict[str, torch.optim.Optimizer] = {}
        for phase in self.model.phases:
            self.opts[phase] = torch.optim.Adam(self.model.phase_parameters(phase), lr=float(t["lr"][phase]),
                                                betas=(t["beta1"], t["beta2"]), **adam_kernel(self.device))
        self.step = 0
        self.rng = torch.Generator().manual_seed(cfg["seed"] * 1000 + 17 + self.rank)
        self.data_rng = torch.Generator().manual_seed(cfg["seed"] * 1000 + 29)
        self.perm = torch.randperm(len(self.images), generator=self.data_rng)
        self.pos = 0
        self._phase_params = {ph: list(self.model.phase_parameters(ph)) for ph in self.model.phases}
        self._phase_param_ids = {ph: {id(p) for p in ps} for ph, ps in self._phase_params.items()}
        self._probe()
        self.compiled = self.model
        if t.get("compile"):
            self.compiled = torch.compile(self.model)
        # bf16 copies of the large weights, kept between phases (weightcast.py); not under compile
        # and their fp32 gradients written into kept buffers, except under DDP (its hooks wait on autograd's)
        self.weight_casts = (WeightCasts(grad_in_place=self.world == 1)
                             if self.precision == "bf16" and not t.get("compile") else None)
        self.ddp = None
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP

            self.ddp = DDP(self.model, find_unused_parameters=True, broadcast_buffers=True)
        if self.is_main:  # only now, so that bad data or a bad model leaves no folder behind
            prepare_out_dir(self.out, self.resume, self.force)
        if self.resume:
            self._load_state()

    def _load_data(self) -> ImageData:
        """The config's data set; its warnings (the offline MNIST sample) go to the console once."""
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", DataWarning)
            data = load_dataset(self.config["data"], self.registry)
        for w in caught:
            if issubclass(w.category, DataWarning):
                self._say(f"[yellow]warning:[/] {w.message}")
            else:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        return data

    def _say(self, text: str) -> None:
        if not self.is_main:
            return
        if self.console is None:
            from rich.console import Console

            self.console = Console(stderr=True)
        self.console.print(text, highlight=False, soft_wrap=True)

    def _probe(self) -> None:
        """Run every phase and loss hook once on a real batch, on a copy of the model and with
        copies of the random state, so that a setting that would fail on the first step fails
        here, before anything is written, and the run itself is unchanged."""
        probe = copy.deepcopy(self.model)
        rng = torch.Generator().manual_seed(self.config["seed"])
        x = self.images[: self.config["train"]["batch_size"]]
        try:
            with torch.random.fork_rng(devices=[]), autocast_ctx(self.device, self.precision):
                for phase in probe.phases:
                    out = probe.phase_outputs(phase, x, rng, 0)
                    self._phase_loss(phase, probe, out)
        except UserError:
            raise
        except Exception as e:
            raise UserError(f"recipe {self.config['name']!r} fails on its first step (phase check, nothing "
                            f"written): {type(e).__name__}: {e}") from None

    def _phase_loss(self, phase: str, model, out) -> dict[str, torch.Tensor]:
        """The family's losses and every loss hook's terms for one phase, checked for shape."""
        if not isinstance(out, PhaseOutput):
            raise UserError(f"family {self.config['family']!r}: phase {phase!r} returned {type(out).__name__}, "
                            "not a PhaseOutput (see docs/plugins.md)")
        terms = self.registry.loss_terms(phase, model, out, self.config, self.step)
        losses = {**out.losses, **terms}
        if not losses:
            raise UserError(f"phase {phase!r} of family {self.config['family']!r} has no loss to train on")
        for k, v in losses.items():
            if not torch.is_tensor(v) or v.dim() != 0 or not v.is_floating_point():
                raise UserError(f"phase {phase!r}: loss {k!r} must be a scalar float tensor, got "
                                f"{type(v).__name__}{tuple(v.shape) if torch.is_tensor(v) else ''}")
            if v.dtype in (torch.bfloat16, torch.float16):
                if (phase, k) not in self._warned:
                    self._warned.add((phase, k))
                    self._say(f"[yellow]warning:[/] loss {k!r} of phase {phase!r} was computed in {v.dtype}: "
                              "compute it from .float() tensors (docs/plugins.md, Precision); added in fp32")
                losses[k] = v.float()
        return losses

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
            self.perm = torch.randperm(n, generator=self.data_rng)
            self.pos = 0
        idx = self.perm[self.pos + self.rank * b: self.pos + (self.rank + 1) * b]
        self.pos += need
        return self.images[idx.to(self.device)]

    # -- state ------------------------------------------------------------------------------------
    def _rng_state(self) -> dict[str, torch.Tensor]:
        st = {"torch": torch.get_rng_state(), "gen": self.rng.get_state(), "data_gen": self.data_rng.get_state(),
              "perm": self.perm.clone()}
        if self.device.type == "cuda":
            st["cuda"] = torch.cuda.get_rng_state(self.device)
        return st

    def save_checkpoint(self, metrics: dict | None = None) -> None:
        if not self.is_main:
            return
        ckpt.save_model_file(self.out / "checkpoint.safetensors", self.model, full=True, config=self.config,
                             step=self.step, metrics=metrics, plugin=self._plugin())
        ckpt.save_train_state(self.out / "train_state.safetensors", self.opts,
                              {"step": self.step, "pos": self.pos, "world": self.world,
                               "precision": self.precision}, self._rng_state())
        self._write_text("config.toml", dumps_toml(_public(self.config)))

    def _plugin(self) -> str:
        return self.registry.provider("family", self.config["family"])

    def _write_text(self, name: str, text: str) -> None:
        atomic_write(self.out / name, lambda tmp: tmp.write_text(text))

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
        self.rng.set_state(rng["gen"])
        self.data_rng.set_state(rng["data_gen"])
        self.perm = rng["perm"]
        if "cuda" in rng and self.device.type == "cuda":
            torch.cuda.set_rng_state(rng["cuda"], self.device)
        self._truncate_metrics(self.step)

    def _truncate_metrics(self, step: int) -> None:
        """Drop the metrics lines of steps after the checkpoint (rewritten atomically)."""
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
        self._write_text("metrics.jsonl", "".join(line + "\n" for line in keep))

    # -- pictures ---------------------------------------------------------------------------------
    def draw(self, tag: str | None = None) -> list[Path]:
        if not self.is_main:
            return []
        return draw_pictures(self.model, self.out, tag)

    # -- one step ---------------------------------------------------------------------------------
    def train_step(self) -> dict[str, torch.Tensor]:
        """One step: a batch, then for each phase its losses and the hooks' terms, backward, a
        finiteness check of the loss and the gradients (one host sync), and the optimizer step;
        a phase that ``[train] phase_repeats`` runs more than once reads a new batch each time.

        Returns detached metrics. During a phase only that phase's parameters require gradients
        (on one process), so the G phase does not compute weight gradients for D.
        """
        x = self._next_batch()
        train = self.config["train"]
        factor = lr_factor(self.step, train)
        for phase, opt in self.opts.items():
            for group in opt.param_groups:
                group["lr"] = float(train["lr"][phase]) * factor
        # batch-norm statistics before this step: a forward pass that blows up corrupts them
        self._buffers_before = [b.clone() for b in self.model.buffers()]
        step_metrics: dict[str, torch.Tensor] = {}
        fwd = self.ddp if self.ddp is not None else self.compiled
        for phase in self.model.phases:
            for repeat in range(train["phase_repeats"].get(phase, 1)):
                if repeat > 0:  # [train] phase_repeats: a repeat reads a new real batch
                    x = self._next_batch()
                self._run_phase(phase, x, fwd, step_metrics)
        if self.ddp is None:
            self._require_grad(None)
        self.step += 1
        return step_metrics

    def _run_phase(self, phase: str, x: torch.Tensor, fwd, step_metrics: dict[str, torch.Tensor]) -> None:
        """One phase on the real batch ``x``: losses, backward, the finiteness check, the
        optimizer step; its losses and metrics go into ``step_metrics``."""
        if self.ddp is None:
            self._require_grad(phase)
        with autocast_ctx(self.device, self.precision), self._casts():
            out = fwd(phase, x, self.rng, self.step)
            losses = self._phase_loss(phase, self.model, out)
        loss = sum(losses.values())
        opt = self.opts[phase]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        grads = [p.grad for p in self._phase_params[phase] if p.grad is not None]
        grad_norm = torch.nn.utils.get_total_norm(grads) if grads else torch.zeros(())
        if not torch.isfinite(loss.detach() + grad_norm):
            if self.config["train"]["on_nan"] == "skip":
                opt.zero_grad(set_to_none=True)
                step_metrics["skipped"] = torch.tensor(1.0)
                return
            self._stop_non_finite(phase, losses, grad_norm)
        opt.step()
        if self.weight_casts is not None:
            self.weight_casts.stale(self._phase_params[phase])
        for k, v in losses.items():
            step_metrics[f"loss/{phase}_{k}"] = v.detach()
        for k, v in out.metrics.items():
            step_metrics[k] = v.detach() if torch.is_tensor(v) else torch.tensor(float(v))

    def _casts(self):
        return self.weight_casts.phase() if self.weight_casts is not None else nullcontext()

    def _stop_non_finite(self, phase: str, losses: dict, grad_norm: torch.Tensor):
        """Stop with exit 3, keeping the last finite state: the weights before this step (the bad
        update was not applied) if they are finite, else the last checkpoint."""
        bad = {k: float(v.detach()) for k, v in losses.items() if not torch.isfinite(v.detach())}
        what = (", ".join(f"{k}={v}" for k, v in bad.items()) if bad
                else f"finite losses but non-finite gradients (norm {float(grad_norm)})")
        kept = ""
        with torch.no_grad():
            for b, old in zip(self.model.buffers(), self._buffers_before):
                b.copy_(old)
        if self.is_main:
            state = self.model.state_dict().values()
            if all(torch.isfinite(t).all() for t in state if t.is_floating_point()):
                self.save_checkpoint({})
                kept = f". The weights of step {self.step} (before the bad update) are saved in {self.out}"
            elif (self.out / "checkpoint.safetensors").exists():
                kept = f". The last good checkpoint is kept in {self.out}"
            kept += (f"; continue with a smaller learning rate: genzoo run --resume {self.out} "
                     f"--set train.lr.{phase}=...")
        raise TrainingStopped(f"non-finite loss at step {self.step + 1}, phase {phase!r}: {what}{kept}", EXIT_NAN)

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

    # -- the loop ---------------------------------------------------------------------------------
    def run(self) -> RunResult:
        self._setup()
        cfg = self.config
        t = cfg["train"]
        log = cfg["log"]
        total = t["steps"]
        start_time = time.perf_counter()
        start_step = self.step
        old_handlers = {}
        metrics_file = None
        try:
            if self.is_main and threading.current_thread() is threading.main_thread():
                for s in EXIT_SIGNAL:
                    old_handlers[s] = signal.signal(s, self._handle_signal)
            metrics_file = (self.out / "metrics.jsonl").open("a") if self.is_main else None
            latest: dict[str, float] = {}
            last_eval: dict = {}
            if self.is_main and not self.resume:
                self._write_text("config.toml", dumps_toml(_public(self.config)))
            progress = make_progress(self.progress and self.is_main, self.console)
            with progress:
                task = progress.add_task(cfg.get("name") or "train", total=total, completed=self.step,
                                         head="", info="")
                self.model.train()
                while self.step < total:
                    step_metrics = self.train_step()
                    if self.step % log["every"] == 0 or self.step == total:
                        latest = {k: float(v) for k, v in step_metrics.items()}
                        if metrics_file is not None:
                            metrics_file.write(json.dumps({"step": self.step, "time": round(time.perf_counter() - start_time, 3), **latest}) + "\n")
                            metrics_file.flush()
                        progress.update(task, **progress_fields(latest, self.model.codes))
                    progress.update(task, completed=self.step)
                    if t["eval_every"] and self.step % t["eval_every"] == 0 and self.step < total:
                        t_eval = time.perf_counter()
                        last_eval = self.evaluate()
                        if metrics_file is not None:
                            record = {"step": self.step, "time": round(time.perf_counter() - start_time, 3),
                                      "eval_seconds": round(time.perf_counter() - t_eval, 3), "eval": last_eval}
                            metrics_file.write(json.dumps(record) + "\n")
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
                                     step=self.step, metrics=last_eval, plugin=self._plugin())
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
        n = self.config["log"]["eval_samples"]
        if not self.is_main:
            return {}
        labels = self.data.labels
        images = None
        if labels is not None:
            images, labels = labelled_subset(self.images, labels.to(self.images.device), n)
        res = evaluate_model(self.model, images, labels, n_mi=min(n, 2000))
        res.update(disentangle.ground_truth_metrics(self.model, self.data))
        return res


def _public(config: dict) -> dict:
    return {k: v for k, v in config.items() if not k.startswith("_")}


# -- progress ---------------------------------------------------------------------------------------
def progress_fields(m: dict[str, float], codes: CodeSet) -> dict[str, str]:
    """The progress display's readouts: ``head`` (L_I of the first categorical code, else of the
    first code: always shown) and ``info`` (the losses and every L_I: shown where room allows)."""
    first = next((n for n, s in codes if s.discrete), codes.names[0] if len(codes) else None)
    head = f"L_I {first} {m[f'L_I/{first}']:.2f}" if first and f"L_I/{first}" in m else ""
    parts = [f"{k[5:]} {v:.3f}" for k, v in m.items() if k.startswith("loss/") and not k.endswith("_info")]
    li = [f"{k[4:]}={v:.2f}" for k, v in m.items() if k.startswith("L_I/")]
    return {"head": head, "info": "  ".join(parts + (["L_I " + " ".join(li)] if li else []))}


def make_progress(enabled: bool, console):
    """A rich progress display: one line with the recipe, the bar, step/total, speed, time left
    and L_I of the first categorical code (these always fit in 80 columns), and a second line with
    the other readouts, cut to the terminal's width."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
    from rich.table import Column
    from rich.text import Text

    class Rate(TextColumn):
        def __init__(self):
            super().__init__("", table_column=Column(no_wrap=True))

        def render(self, task):
            speed = task.finished_speed or task.speed
            return Text(f"{speed:.2f} it/s" if speed else "-- it/s", style="progress.data.speed")

    class TwoLines(Progress):
        def get_renderables(self):
            yield self.make_tasks_table(self.tasks)
            for task in self.tasks:
                info = task.fields.get("info", "")
                if info:
                    yield Text("  " + info, style="dim", no_wrap=True, overflow="ellipsis")

    return TwoLines(TextColumn("[bold]{task.description}", table_column=Column(max_width=18, no_wrap=True,
                                                                                  overflow="ellipsis")),
                    BarColumn(bar_width=None, table_column=Column(ratio=1, min_width=6)),
                    MofNCompleteColumn(table_column=Column(no_wrap=True)), Rate(),
                    TimeRemainingColumn(table_column=Column(no_wrap=True)),
                    TextColumn("{task.fields[head]}", table_column=Column(no_wrap=True)),
                    console=console, disable=not enabled, transient=False, expand=True)


# -- pictures ---------------------------------------------------------------------------------------
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
