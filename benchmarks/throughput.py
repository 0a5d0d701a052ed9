"""Images per second of the real infogan-mnist training step, beside a plain fp32 reference step.

    python benchmarks/throughput.py [--device cpu|cuda] [--steps 30] [--warmup 5] [--precision auto]

The engine's step (``Trainer.train_step``: the code path `genzoo run` uses, with its autocast,
frozen-D generator phase and foreach Adam) and a reference step written here (the same networks
and batch, eager fp32, two plain Adam optimizers, the textbook InfoGAN update) are timed in the
same process, alternating blocks, so a shared machine's drift hits both alike. The engine is timed
twice: with the textbook objective that the reference step computes (``engine_img_per_s`` and
``speedup``: like with like) and with the recipe's whole objective, which adds Q on transformed
real and fake images (``recipe_objective_*``). Prints JSON with img/s for each, the ratios, the
device, dtype and thread count.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import torch
import torch.nn.functional as F


def reference_step_fn(model, images, batch, gen, lr_d=2e-4, lr_g=1e-3):
    """The plain InfoGAN update, eager fp32, written out by hand."""
    codes = model.codes
    d_params = [*model.trunk.parameters(), *model.d_head.parameters(), *model.q_head.parameters()]
    opt_d = torch.optim.Adam(d_params, lr=lr_d, betas=(0.5, 0.999), foreach=False)
    opt_g = torch.optim.Adam(model.generator.parameters(), lr=lr_g, betas=(0.5, 0.999), foreach=False)
    n = len(images)
    dev = images.device

    def info(q, c):
        total = 0.0
        for name, spec in codes:
            if spec.discrete:
                total = total + F.cross_entropy(q[name]["logits"], c[name])
            else:
                total = total - 0.1 * torch.distributions.Normal(q[name]["mean"], q[name]["std"]).log_prob(c[name]).mean()
        return total

    def step():
        idx = torch.randint(0, n, (batch,), generator=gen)
        x = images[idx.to(dev)]
        noise = torch.randn(batch, model.noise_dim, generator=gen).to(dev)
        c = {k: v.to(dev) for k, v in codes.sample(batch, gen).items()}
        fake = model.generate(noise, c)
        f_real, f_fake = model.trunk(x), model.trunk(fake.detach())
        r, f = model.d_head(f_real), model.d_head(f_fake)
        loss_d = (F.binary_cross_entropy_with_logits(r, torch.ones_like(r))
                  + F.binary_cross_entropy_with_logits(f, torch.zeros_like(f)) + info(model.q_head(f_fake), c))
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        feats = model.trunk(fake)
        out = model.d_head(feats)
        loss_g = F.binary_cross_entropy_with_logits(out, torch.ones_like(out)) + info(model.q_head(feats), c)
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()

    return step


PAPER_OBJECTIVE = ["info.real_balance=0", "info.real_invariance=0", "info.fake_invariance=0",
                   "model.augment=none"]


def timed(fn, steps):
    t0 = time.perf_counter()
    for _ in range(steps):
        fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def main(argv=None) -> int:
    from genzoo_infogan.config import find_recipe, resolve, settings_from_table
    from genzoo_infogan.data import load_dataset
    from genzoo_infogan.engine import Trainer
    from genzoo_infogan.host import default_registry

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--steps", type=int, default=30, help="timed steps per block")
    ap.add_argument("--blocks", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    args = ap.parse_args(argv)

    base = [f"train.precision={args.precision}", "data.download=false",
            f"train.compile={'true' if args.compile else 'false'}", *args.overrides]
    registry = default_registry()
    config = resolve(find_recipe("infogan-mnist", registry), registry, base)
    # The textbook objective: the reference step's own work (no real-data or invariance terms, no
    # translation of D's inputs), so its ratio compares like with like.
    paper = resolve(find_recipe("infogan-mnist", registry), registry, [*PAPER_OBJECTIVE, *base])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = load_dataset(config["data"], registry)
    import tempfile

    trainers = {name: Trainer(cfg, out_dir=tempfile.mkdtemp(prefix="genzoo-tp-"), device=args.device,
                              progress=False, data=data, force=True)
                for name, cfg in (("recipe", config), ("paper_objective", paper))}
    for tr in trainers.values():
        tr._setup()
    trainer = trainers["recipe"]
    batch = config["train"]["batch_size"]
    family = registry.family("infogan")
    ref_model = family.build(settings_from_table(family.settings, config["model"]), trainer.model.codes, data.image_shape)
    ref_model.load_state_dict(trainer.model.state_dict())
    ref_model.to(trainer.device).train()
    ref = reference_step_fn(ref_model, data.images.to(trainer.device), batch, torch.Generator().manual_seed(0))
    fns = {"reference_fp32": ref, **{name: tr.train_step for name, tr in trainers.items()}}
    for _ in range(args.warmup):
        for fn in fns.values():
            fn()
    seconds = dict.fromkeys(fns, 0.0)
    for _ in range(args.blocks):
        for name, fn in fns.items():
            seconds[name] += timed(fn, args.steps)
    n = args.steps * args.blocks * batch
    ips = {name: round(n / t, 1) for name, t in seconds.items()}
    out = {
        "device": str(trainer.device), "precision": trainer.precision, "threads": torch.get_num_threads(),
        "compile": bool(args.compile), "batch_size": batch, "timed_steps_each": args.steps * args.blocks,
        "engine_img_per_s": ips["paper_objective"], "reference_fp32_img_per_s": ips["reference_fp32"],
        "speedup": round(seconds["reference_fp32"] / seconds["paper_objective"], 3),
        "recipe_objective_img_per_s": ips["recipe"],
        "recipe_objective_vs_reference": round(seconds["reference_fp32"] / seconds["recipe"], 3),
        "torch": torch.__version__,
        "cpu_bf16": __import__("genzoo_infogan.engine", fromlist=["x"]).cpu_supports_bf16(),
        "gpu": torch.cuda.get_device_name(trainer.device) if trainer.device.type == "cuda" else None,
    }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
