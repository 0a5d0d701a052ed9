"""The ``genzoo`` command line. Plugins add commands through the ``register_commands`` hook.

Every error a user can cause is a :class:`~genzoo_infogan.errors.UserError`: one message on
stderr, exit status 2, no traceback.
"""

from __future__ import annotations

import json
import math
import sys
import warnings
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from . import __version__
from .checkpoint import build_from_info, describe, find_model_file, load, save_model_file
from .codes import CodeSet
from .config import DEFAULTS, apply_overrides, deep_merge, expand_extends, find_recipe, loads_toml, resolve
from .data import load_dataset
from . import disentangle
from .engine import Trainer, resolve_device
from .errors import TrainingStopped, UserError, suggest
from .host import get_host
from .images import line_plot, save_grid
from .io import check_writable_file
from .metrics import evaluate_model, labelled_subset

console = Console()
err_console = Console(stderr=True)


def _fail(message: str, code: int = 2):
    err_console.print(f"[bold red]error:[/] {escape(str(message))}", highlight=False, soft_wrap=True)
    sys.exit(code)


def registry():
    """The registry of the installed plugins, built once per command."""
    ctx = click.get_current_context(silent=True)
    root = ctx.find_root() if ctx is not None else None
    if root is None:
        return get_host().registry()
    if root.obj is None:
        root.obj = get_host().registry()
    return root.obj


class GenzooGroup(click.Group):
    """A click group that turns user errors into one message and exit status 2."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except UserError as e:
            _fail(str(e), e.exit_code)
        except TrainingStopped as e:
            err_console.print(f"[bold yellow]stopped:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
            sys.exit(e.exit_code)
        except KeyboardInterrupt:
            _fail("interrupted", 130)
        except OSError as e:  # a file the user named that cannot be read or written
            where = f"{e.filename!r}: " if e.filename else ""
            _fail(f"{where}{e.strerror or e}")

    def _plugin_commands(self, ctx) -> dict[str, click.Command]:
        group = click.Group()
        try:
            reg = registry()
        except UserError as e:
            _fail(str(e), e.exit_code)
        reg.commands(group)
        return group.commands

    def list_commands(self, ctx):
        return sorted(set(super().list_commands(ctx)) | set(self._plugin_commands(ctx)))

    def get_command(self, ctx, name):
        return super().get_command(ctx, name) or self._plugin_commands(ctx).get(name)

    def resolve_command(self, ctx, args):
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as e:
            if args and "No such command" in str(e):
                e.message += suggest(args[0], self.list_commands(ctx))
            raise


@click.group(cls=GenzooGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="genzoo")
def cli():
    """genzoo: generative models with latent codes you can name and turn.

    Train with `genzoo run RECIPE`, look at the results with `genzoo sample` / `traverse` /
    `explore`, measure them with `genzoo eval`, share them with `genzoo export`.
    """


# -- plugins and recipes ---------------------------------------------------------------------------
@cli.command("plugins")
def plugins_cmd():
    """List plugins: where each came from and what it registered."""
    registry()
    table = Table(title="genzoo plugins")
    table.add_column("plugin", style="bold")
    table.add_column("source")
    table.add_column("module")
    table.add_column("registered")
    for info, things in get_host().plugin_table():
        table.add_row(info.name, info.source, info.module, ", ".join(things) or "-")
    console.print(table)


@cli.command("recipes")
def recipes_cmd():
    """List recipes: name, family, dataset, description."""
    reg = registry()
    table = Table(title="genzoo recipes")
    for col in ("recipe", "family", "dataset", "codes", "description"):
        table.add_column(col, style="bold" if col == "recipe" else None)
    for name, recipe in sorted(reg.recipes.items()):
        r = expand_extends(recipe, reg)
        table.add_row(name, r.get("family", ""), r.get("data", {}).get("name", ""), r.get("codes", ""),
                      r.get("description", ""))
    console.print(table)


# -- run -------------------------------------------------------------------------------------------
@cli.command("run")
@click.argument("recipe", required=False)
@click.option("--out", "out", type=click.Path(file_okay=False), help="Run folder (default runs/<recipe>-<time>).")
@click.option("--steps", type=click.IntRange(min=1), help="Training steps (train.steps).")
@click.option("--seed", type=int, help="Random seed.")
@click.option("--device", default="auto", show_default=True, help="cpu, cuda, cuda:N or auto.")
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16"]), help="train.precision.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a recipe key (repeatable).")
@click.option("--resume", "resume", type=click.Path(file_okay=False), help="Continue the run in this folder.")
@click.option("--force", is_flag=True, help="Start a non-empty --out folder afresh (its old run is removed).")
@click.option("--on-nan", type=click.Choice(["stop", "skip"]), help="On a non-finite loss: stop (default) or skip the step.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def run_cmd(recipe, out, steps, seed, device, precision, overrides, resume, force, on_nan, no_progress):
    """Train RECIPE (a recipe name or a .toml file)."""
    reg = registry()
    overrides = list(overrides)
    if steps is not None:
        overrides.append(f"train.steps={steps}")
    if seed is not None:
        overrides.append(f"seed={seed}")
    if precision is not None:
        overrides.append(f"train.precision={precision}")
    if on_nan is not None:
        overrides.append(f"train.on_nan={on_nan}")
    if resume:
        run_dir = Path(resume)
        cfg_path = run_dir / "config.toml"
        if not cfg_path.is_file():
            raise UserError(f"cannot resume {resume!r}: no config.toml there (is it a genzoo run folder?)")
        if out and Path(out) != run_dir:
            raise UserError("--resume continues in its own folder; leave out --out")
        try:
            base = loads_toml(cfg_path.read_text())
        except ValueError as e:
            raise UserError(f"cannot resume {resume!r}: its config.toml is not valid TOML: {e}") from None
        config = resolve(base, reg, overrides)
        out = run_dir
    else:
        if not recipe:
            raise UserError("give a recipe name or a .toml file (see `genzoo recipes`), or --resume RUN_DIR")
        config = resolve(find_recipe(recipe, reg), reg, overrides)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = _show_warning
        trainer = Trainer(config, out_dir=out, device=device, resume=bool(resume), force=force,
                          progress=not no_progress, console=err_console, registry=reg)
        result = trainer.run()
    if result.out_dir is not None:
        _print_result(config, result)


def _show_warning(message, category, filename, lineno, file=None, line=None):
    err_console.print(f"[yellow]warning:[/] {message}", highlight=False, soft_wrap=True)


def _print_result(config, result):
    ev = result.eval
    table = Table(title=f"{config.get('name')}: step {result.step}", show_header=True)
    table.add_column("code")
    table.add_column("L_I (nats)", justify="right")
    table.add_column("H(c)", justify="right")
    table.add_column("accuracy", justify="right")
    table.add_column("NMI", justify="right")
    for name, li in ev.get("mi", {}).items():
        acc = ev.get("codes", {}).get(name, {})
        table.add_row(name, f"{li:.3f}", f"{ev['entropy'][name]:.3f}",
                      f"{acc['accuracy']:.1%}" if acc else "", f"{acc['nmi']:.3f}" if acc else "")
    console.print(table)
    console.print(f"run folder: [bold]{result.out_dir}[/]  (model.safetensors, samples.png, traverse_*.png, "
                  f"metrics.jsonl, config.toml)")


# -- eval and plot ---------------------------------------------------------------------------------
@cli.command("eval")
@click.argument("path")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--samples", default=5000, show_default=True, type=click.IntRange(min=1),
              help="Labelled images and generated samples to use.")
@click.option("--device", default="cpu", show_default=True)
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Data settings, e.g. data.root=...")
def eval_cmd(path, as_json, samples, device, overrides):
    """Measure a model: code accuracy after matching categories to labels (Hungarian), NMI, L_I.

    Category k is not expected to be digit k: the code is learned without labels, so each category
    is matched one-to-one to the label it fits best before accuracy is counted.
    """
    reg = registry()
    file = find_model_file(path)
    model = load(file, reg, device=resolve_device(device))
    cfg = model.checkpoint.get("config") or {}
    data_cfg = deep_merge(DEFAULTS["data"], cfg.get("data", {}))
    data_cfg = apply_overrides({"data": data_cfg}, list(overrides))["data"]
    images = labels = None
    notes = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the offline-data warning: the table says which data was used
        try:
            data = load_dataset(data_cfg, reg)
        except UserError as e:
            if any(o.strip().startswith("data.") for o in overrides):
                raise  # the user named this data set: its failure is the answer
            data = None
            notes.append(f"the data set could not be loaded, so only L_I is reported: {e}")
    if data is not None and tuple(data.image_shape) != tuple(model.image_shape):
        raise UserError(f"the data's images are {data.image_shape}, the model's {model.image_shape}")
    if data is not None and data.labels is not None:
        images, labels = labelled_subset(data.images, data.labels, samples)
    res = evaluate_model(model, images, labels, n_mi=samples)
    res.update(disentangle.ground_truth_metrics(model, data))
    res["path"] = str(file)
    if data is not None:
        res["data"] = data.source
    if notes:
        res["notes"] = notes
        for note in notes:
            err_console.print(f"[yellow]warning:[/] {escape(note)}", highlight=False, soft_wrap=True)
    if as_json:
        click.echo(json.dumps(res, indent=2, sort_keys=True))
        return
    table = Table(title=f"eval {res['path']}")
    for col in ("code", "L_I (nats)", "H(c)", "accuracy", "NMI"):
        table.add_column(col, justify="left" if col == "code" else "right")
    for name, li in res["mi"].items():
        acc = res.get("codes", {}).get(name, {})
        table.add_row(name, f"{li:.3f}", f"{res['entropy'][name]:.3f}",
                      f"{acc['accuracy']:.1%}" if acc else "", f"{acc['nmi']:.3f}" if acc else "")
    console.print(table)
    if "code_accuracy" in res:
        console.print(f"best categorical code: {res['code_accuracy_code']} at {res['code_accuracy']:.1%} "
                      f"on {res['n_eval_images']} labelled images (categories matched to labels)")
    for k, v in res.get("disentanglement", {}).items():
        if isinstance(v, (int, float)):
            console.print(f"{k}: {v:.3f}")
    factors = res.get("code_factors", {})
    if factors:
        ft = Table(title="which factor each code follows (normalised MI)")
        for col in ("code", "factor", "NMI"):
            ft.add_column(col)
        for name, row in factors.items():
            ft.add_row(name, str(row.get("factor", "")), f"{row.get('nmi', 0.0):.3f}")
        console.print(ft)


def read_metrics(run: str) -> list[dict]:
    p = Path(run)
    f = p / "metrics.jsonl" if p.is_dir() else p
    if not f.is_file():
        raise UserError(f"{run!r}: no metrics.jsonl (give a run folder)")
    rows = []
    for i, line in enumerate(f.read_text().splitlines(), 1):
        try:
            rows.append(json.loads(line))
        except ValueError:
            raise UserError(f"{str(f)!r} line {i} is not JSON") from None
    return rows


@cli.command("plot")
@click.argument("runs", nargs=-1, required=True)
@click.option("-o", "--output", default="mi.png", show_default=True, type=click.Path(dir_okay=False))
@click.option("--code", default=None, help="Code to plot (default: the first code with a logged L_I).")
def plot_cmd(runs, output, code):
    """L_I over training steps for several runs on one plot (the paper's figure 1)."""
    check_writable_file(output, ".png")
    reg = registry()
    series, hlines = {}, {}
    for run in runs:
        rows = read_metrics(run)
        keys = [k for r in rows for k in r if k.startswith("L_I/")]
        if not keys:
            raise UserError(f"{run!r}: its metrics.jsonl has no L_I values")
        key = f"L_I/{code}" if code else keys[0]
        pts = [(r["step"], r[key]) for r in rows if key in r]
        if not pts:
            raise UserError(f"{run!r} logged no {key}; logged: {sorted(set(keys))}")
        label = Path(run).name
        cfg_path = Path(run) / "config.toml"
        if cfg_path.is_file():
            try:
                cfg = loads_toml(cfg_path.read_text())
                label = cfg.get("name") or label
                spec = CodeSet.parse(cfg.get("codes", ""), reg.code_types)[key[4:]]
                hlines[f"H({key[4:]}) = {spec.entropy():.2f}"] = spec.entropy()
            except (ValueError, KeyError, TypeError, AttributeError):
                pass  # no entropy line for a run whose config cannot be read
        while label in series:
            label += "'"
        series[label] = pts
    path = line_plot(series, output, title=f"{key}: lower bound on I(c; G(z, c)), nats",
                     ylabel="L_I", hlines=hlines)
    console.print(f"wrote {path}")


# -- checkpoints -----------------------------------------------------------------------------------
@cli.command("export")
@click.argument("run")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="The .safetensors file to write.")
@click.option("--full", is_flag=True, help="Keep D's head too (default: generator, D trunk and Q head).")
def export_cmd(run, output, full):
    """Write a shareable model file: the generator and the Q head (with the trunk it reads)."""
    src = find_model_file(run)
    out = check_writable_file(output, ".safetensors")
    if out.resolve() == src.resolve():
        raise UserError(f"-o {output!r} is the file being exported; choose another name")
    model = load(src, registry())
    info = model.checkpoint
    missing = [m for m in (model.full_modules if full else model.export_modules) if m not in model.loaded_modules]
    if missing:
        raise UserError(f"{str(src)!r} lacks {missing}, which --full needs" if full else
                        f"{str(src)!r} lacks {missing}")
    save_model_file(out, model, full=full, config=info["config"], step=info["step"], metrics=info["metrics"],
                    plugin=info.get("plugin", ""))
    size = out.stat().st_size
    console.print(f"wrote {out} ({size / 1e6:.1f} MB; modules: "
                  f"{', '.join(model.full_modules if full else model.export_modules)})")


@cli.command("inspect")
@click.argument("file")
@click.option("--json", "as_json", is_flag=True)
def inspect_cmd(file, as_json):
    """Show a model file's metadata, codes and parameter counts (no weights are loaded, and the
    family need not be installed: this is how to learn which plugin a file needs)."""
    reg = registry()
    info = describe(find_model_file(file))
    try:
        codes = CodeSet.from_json(info["codes_json"], reg.code_types)
        code_rows = [(name, spec.kind, spec.to_token(), f"{spec.entropy():.3f}", str(spec.input_dim),
                      str(spec.n_params)) for name, spec in codes]
    except ValueError:  # a code type from a plugin that is not installed: show the JSON as it is
        code_rows = [(str(d.get("name")), str(d.get("type")), json.dumps(d), "", "", "")
                     for d in json.loads(info["codes_json"])]
    counts: dict[str, int] = {}
    for name, entry in info["tensors"].items():
        counts[name.split(".", 1)[0]] = counts.get(name.split(".", 1)[0], 0) + math.prod(int(s) for s in entry.get("shape", []))
    installed = info["family"] in reg.families
    if installed:
        try:
            build_from_info(info, reg)
            status = f"installed ({reg.provider('family', info['family'])})"
        except UserError as e:
            status = f"installed, but it cannot build this file's model: {e}"
    else:
        status = "not installed" + (f": provided by plugin {info['plugin']}" if info.get("plugin") else "")
    info["family_status"] = status
    if as_json:
        click.echo(json.dumps({k: v for k, v in info.items() if k not in ("tensors",)} |
                              {"codes": json.loads(info["codes_json"]), "parameters": counts}, indent=2, default=str))
        return
    meta = Table(title=f"{info['path']}", show_header=False)
    meta.add_column("key", style="bold")
    meta.add_column("value")
    for key in ("family", "family_status", "plugin", "recipe", "version", "step", "image_shape", "value_range",
                "modules"):
        meta.add_row(key.replace("_", " "), escape(str(info[key])))
    meta.add_row("model", escape(json.dumps(info["model"])))
    if info["metrics"].get("code_accuracy") is not None:
        meta.add_row("code accuracy", f"{info['metrics']['code_accuracy']:.1%}")
    console.print(meta)
    ct = Table(title="codes")
    for col in ("name", "type", "spec", "H(c) nats", "G input", "Q params"):
        ct.add_column(col)
    for row in code_rows:
        ct.add_row(*(escape(c) for c in row))
    console.print(ct)
    pt = Table(title="parameters")
    pt.add_column("module")
    pt.add_column("count", justify="right")
    for m, n in counts.items():
        pt.add_row(m, f"{n:,}")
    pt.add_row("total", f"{sum(counts.values()):,}")
    console.print(pt)


def _code_values(model, sets: tuple[str, ...]) -> dict:
    values = {}
    for item in sets:
        if "=" not in item:
            raise UserError(f"--set {item!r}: expected CODE=VALUE, e.g. --set c1=3")
        name, text = (s.strip() for s in item.split("=", 1))
        if name not in model.codes:
            raise UserError(f"--set {item!r}: no code named {name!r}.{suggest(name, model.codes.names)} "
                            f"Codes: {', '.join(model.codes.names)}")
        try:
            values[name] = model.codes[name].value_from_text(text)
        except ValueError as e:
            raise UserError(f"--set {item!r}: {e}") from None
    return values


def _check_out(output: str) -> Path:
    return check_writable_file(output, ".png")


@cli.command("sample")
@click.argument("file")
@click.option("-n", "n", default=64, show_default=True, type=click.IntRange(1, 10000))
@click.option("--set", "sets", multiple=True, metavar="CODE=VALUE", help="Fix a code, e.g. --set c1=3.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--nrow", default=0, type=click.IntRange(min=0), help="Images per row (default: square).")
@click.option("-o", "--output", default="samples.png", show_default=True)
@click.option("--device", default="cpu", show_default=True)
def sample_cmd(file, n, sets, seed, nrow, output, device):
    """Draw N samples from a model file into a PNG grid."""
    out = _check_out(output)
    model = load(find_model_file(file), registry(), device=resolve_device(device))
    imgs = model.sample(n, codes=_code_values(model, sets), seed=seed)
    save_grid(imgs, out, nrow=nrow or int(math.ceil(math.sqrt(n))))
    console.print(f"wrote {out}")


@cli.command("traverse")
@click.argument("file")
@click.option("--code", required=True, help="The code to sweep.")
@click.option("--span", nargs=2, type=float, default=None, help="From and to, e.g. --span -2 2 (continuous codes).")
@click.option("--steps", default=10, show_default=True, type=click.IntRange(2, 100))
@click.option("--rows", default=10, show_default=True, type=click.IntRange(1, 100), help="Noise draws, one per row.")
@click.option("--set", "sets", multiple=True, metavar="CODE=VALUE", help="Fix another code.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("-o", "--output", default="traversal.png", show_default=True)
@click.option("--device", default="cpu", show_default=True)
def traverse_cmd(file, code, span, steps, rows, sets, seed, output, device):
    """Sweep one code across its range: one row per noise draw (the paper's figure 2 layout)."""
    out = _check_out(output)
    model = load(find_model_file(file), registry(), device=resolve_device(device))
    if code not in model.codes:
        raise UserError(f"no code named {code!r}.{suggest(code, model.codes.names)} Codes: {', '.join(model.codes.names)}")
    spec = model.codes[code]
    if spec.discrete and span is not None:
        raise UserError(f"--span applies to continuous codes; {code} is {spec.to_token()}")
    fixed = _code_values(model, sets)
    imgs = model.traverse(code, rows=rows, steps=steps, span=span, seed=seed, fixed=fixed)
    ncol = spec.input_dim if spec.discrete else steps
    save_grid(imgs, out, nrow=ncol)
    console.print(f"wrote {out}")


def main(argv=None):
    cli.main(args=argv, prog_name="genzoo")


if __name__ == "__main__":
    main()
