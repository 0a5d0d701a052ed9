"""Images per second of the real infogan-mnist training step, beside a plain fp32 reference step.

    python benchmarks/throughput.py [--device cpu|cuda] [--steps 20] [--repeats 5] [--precision auto]

Timed in one process, in blocks of ``--steps`` steps, each round running every variant once in a
random order, ``--repeats`` rounds (so a shared machine's drift hits all alike); each figure is the
median over rounds, with the spread (min, max):

* ``reference_fp32``: a step written here with PyTorch's defaults: the same networks and batch,
  eager fp32, two Adam optimizers as PyTorch builds them, the textbook InfoGAN update with the
  recipe's continuous-code weight and, as the engine, a fresh G forward for each phase;
* ``engine_paper``: the engine's step (``Trainer.train_step``, the code path of `genzoo run`) on
  the same textbook objective, at ``--precision``; ``engine_paper_fp32``: the same in fp32;
  ``engine_paper_foreach_adam``: the same with PyTorch's default Adam kernel (``foreach``) instead
  of the engine's fused one (each lever's share);
* ``engine_recipe``: the engine on the recipe's whole objective (Q also on transformed copies of
  half of the real and generated batches), at ``--precision``; ``engine_recipe_foreach_adam``: the
  same with the ``foreach`` Adam kernel; ``engine_recipe_whole_batch_invariance``: version 3's
  objective, every image of the batch transformed (``[info] invariance_batch = 0``);
  ``engine_recipe_invariance_batch_32``: only 32 images transformed (faster, but on infogan-mnist
  it left the continuous codes unused in an earlier study; docs/experiments/speed.md);
  ``engine_recipe_d_phase_fake_invariance``: version 2's objective, the whole batch transformed
  and Q also reading T(G(z, c)) in the D phase (``[info] fake_invariance_phase_scale.d = 1``);
  ``engine_recipe_autocast_casts``: the recipe without the engine's kept bf16 copies of the large
  weights (``weightcast.py``), autocast casting every weight at every use;
  ``engine_recipe_cast_grads_new_tensors``: the kept copies, but their fp32 gradients returned to
  autograd as new tensors instead of written into kept buffers (``grad_in_place=False``);
  ``engine_recipe_channels_last``: the recipe with the convolutions in NHWC (``[train] channels_last``).

Prints JSON: img/s per variant (median, min, max) and each one's speed-up over the reference.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
import warnings

import torch
import torch.nn.functional as F


def reference_step_fn(model, images, batch, rng, lr_d=2e-4, lr_g=1e-3, lambda_cat=1.0, lambda_cont=0.05):
    """The plain InfoGAN update, eager fp32, PyTorch's default Adam, written out by hand."""
    codes = model.codes
    d_params = [*model.trunk.parameters(), *model.d_head.parameters(), *model.q_head.parameters()]
    opt_d = torch.optim.Adam(d_params, lr=lr_d, betas=(0.5, 0.999))
    opt_g = torch.optim.Adam(model.generator.parameters(), lr=lr_g, betas=(0.5, 0.999))
    n = len(images)
    dev = images.device

    def info(q, c):
        total = 0.0
        for name, spec in codes:
            if spec.discrete:
                total = total + lambda_cat * F.cross_entropy(q[name]["logits"], c[name])
            else:
                log_q = torch.distributions.Normal(q[name]["mean"], q[name]["std"]).log_prob(c[name])
                total = total - lambda_cont * log_q.mean()
        return total

    def draw():
        noise = torch.randn(batch, model.noise_dim, generator=rng).to(dev)
        return noise, {k: v.to(dev) for k, v in codes.sample(batch, rng).items()}

    def step():
        idx = torch.randint(0, n, (batch,), generator=rng)
        x = images[idx.to(dev)]
        noise, c = draw()
        with torch.no_grad():
            fake = model.generate(noise, c)
        f_real, f_fake = model.trunk(x), model.trunk(fake)
        r, f = model.d_head(f_real), model.d_head(f_fake)
        loss_d = (F.binary_cross_entropy_with_logits(r, torch.ones_like(r))
                  + F.binary_cross_entropy_with_logits(f, torch.zeros_like(f)) + info(model.q_head(f_fake), c))
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        noise, c = draw()
        feats = model.trunk(model.generate(noise, c))
        out = model.d_head(feats)
        loss_g = F.binary_cross_entropy_with_logits(out, torch.ones_like(out)) + info(model.q_head(feats), c)
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()

    return step


PAPER_OBJECTIVE = ["info.real_balance=0", "info.real_invariance=0", "info.fake_invariance=0",
                   "model.augment=none"]


def sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, steps, device):
    sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        fn()
    sync(device)
    return time.perf_counter() - t0


def main(argv=None) -> int:
    from genzoo_infogan.config import find_recipe, resolve, settings_from_table
    from genzoo_infogan.data import load_dataset
    from genzoo_infogan.engine import Trainer, cpu_description, cpu_supports_bf16
    from genzoo_infogan.host import default_registry

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--steps", type=int, default=20, help="timed steps per block")
    ap.add_argument("--repeats", type=int, default=5, help="rounds of blocks, each in a random order")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0, help="seed of the block order")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    args = ap.parse_args(argv)

    registry = default_registry()
    base = ["data.download=false", *args.overrides]
    recipe = find_recipe("infogan-mnist", registry)
    configs = {
        "engine_paper": resolve(recipe, registry, [*PAPER_OBJECTIVE, *base, f"train.precision={args.precision}"]),
        "engine_paper_fp32": resolve(recipe, registry, [*PAPER_OBJECTIVE, *base, "train.precision=fp32"]),
        "engine_paper_foreach_adam": resolve(recipe, registry, [*PAPER_OBJECTIVE, *base,
                                                                f"train.precision={args.precision}"]),
        "engine_recipe": resolve(recipe, registry, [*base, f"train.precision={args.precision}"]),
        "engine_recipe_foreach_adam": resolve(recipe, registry, [*base, f"train.precision={args.precision}"]),
        "engine_recipe_whole_batch_invariance": resolve(recipe, registry, [
            *base, f"train.precision={args.precision}", "info.invariance_batch=0"]),
        "engine_recipe_invariance_batch_32": resolve(recipe, registry, [*base, f"train.precision={args.precision}",
                                                                        "info.invariance_batch=32"]),
        "engine_recipe_d_phase_fake_invariance": resolve(recipe, registry, [
            *base, f"train.precision={args.precision}", "info.invariance_batch=0",
            "info.fake_invariance_phase_scale.d=1"]),
        "engine_recipe_autocast_casts": resolve(recipe, registry, [*base, f"train.precision={args.precision}"]),
        "engine_recipe_cast_grads_new_tensors": resolve(recipe, registry, [*base,
                                                                           f"train.precision={args.precision}"]),
        "engine_recipe_channels_last": resolve(recipe, registry, [*base, f"train.precision={args.precision}",
                                                                  "train.channels_last=true"]),
    }
    config = configs["engine_paper"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = load_dataset(config["data"], registry)
    scratch = tempfile.TemporaryDirectory(prefix="genzoo-tp-")  # the trainers' run folders, removed at exit
    trainers = {name: Trainer(cfg, out_dir=f"{scratch.name}/{name}", device=args.device,
                              progress=False, data=data, force=True, registry=registry)
                for name, cfg in configs.items()}
    for tr in trainers.values():
        tr._setup()
    for slow in (trainers["engine_paper_foreach_adam"], trainers["engine_recipe_foreach_adam"]):
        for phase, opt in slow.opts.items():
            group = opt.param_groups[0]
            slow.opts[phase] = torch.optim.Adam(group["params"], lr=group["lr"], betas=group["betas"], foreach=True)
    trainers["engine_recipe_autocast_casts"].weight_casts = None
    if trainers["engine_recipe_cast_grads_new_tensors"].weight_casts is not None:
        trainers["engine_recipe_cast_grads_new_tensors"].weight_casts.grad_in_place = False
    trainer = trainers["engine_paper"]
    batch = config["train"]["batch_size"]
    family = registry.family("infogan")
    ref_model = family.build(settings_from_table(family.settings, config["model"]), trainer.model.codes, data.image_shape)
    ref_model.load_state_dict(trainer.model.state_dict())
    ref_model.to(trainer.device).train()
    ref = reference_step_fn(ref_model, data.images.to(trainer.device), batch, torch.Generator().manual_seed(0),
                            lambda_cat=config["info"]["lambda_cat"], lambda_cont=config["info"]["lambda_cont"])
    fns = {"reference_fp32": ref, **{name: tr.train_step for name, tr in trainers.items()}}
    for _ in range(args.warmup):
        for fn in fns.values():
            fn()
    sync(trainer.device)
    order_rng = random.Random(args.seed)
    seconds: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(args.repeats):
        names = list(fns)
        order_rng.shuffle(names)
        for name in names:
            seconds[name].append(timed(fns[name], args.steps, trainer.device))
    n = args.steps * batch
    ref_s = statistics.median(seconds["reference_fp32"])
    variants = {name: {"img_per_s": round(n / statistics.median(ts), 1),
                       "img_per_s_min": round(n / max(ts), 1), "img_per_s_max": round(n / min(ts), 1),
                       "vs_reference": round(ref_s / statistics.median(ts), 3)}
                for name, ts in seconds.items()}
    out = {
        "device": str(trainer.device), "precision": trainer.precision, "threads": torch.get_num_threads(),
        "batch_size": batch, "steps_per_block": args.steps, "repeats": args.repeats,
        "variants": variants,
        "whole_objective_vs_reference": variants["engine_recipe"]["vs_reference"],
        "torch": torch.__version__, "cpu": cpu_description(), "cpu_bf16": cpu_supports_bf16(),
        "gpu": torch.cuda.get_device_name(trainer.device) if trainer.device.type == "cuda" else None,
    }
    print(json.dumps(out, indent=2))
    scratch.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
