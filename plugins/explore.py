"""``genzoo explore``: turn a model's codes by hand in a local web page (a built-in plugin).

The app itself is :mod:`genzoo_infogan.explore`; it needs the ``explore`` extra (Starlette,
uvicorn, python-multipart), imported only when the command runs.
"""

from __future__ import annotations

import ipaddress
import sys

import click

from genzoo_infogan import hookimpl
from genzoo_infogan.errors import UserError, suggest

INSTALL_HINT = "pip install 'genzoo-infogan[explore]'"


def _check_web_stack() -> None:
    missing = []
    for modules, dist in ((("starlette",), "starlette"), (("uvicorn",), "uvicorn"),
                          (("python_multipart", "multipart"), "python-multipart")):
        for module in modules:
            try:
                __import__(module)
                break
            except ImportError:
                continue
        else:
            missing.append(dist)
    if missing:
        raise UserError(f"genzoo explore needs {', '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} "
                        f"not installed: install with {INSTALL_HINT}")


def _device(name: str):
    import torch

    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError):
        raise UserError(f"--device {name!r} is not a device; use cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {name!r}: CUDA is not available here; use --device cpu")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise UserError(f"--device {name!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise UserError(f"--device {name!r}: MPS is not available here; use --device cpu")
    return dev


def _labels(items: tuple[str, ...], codes) -> dict[str, str]:
    out = {}
    for item in items:
        if "=" not in item:
            raise UserError(f"--label {item!r}: expected CODE=NAME, e.g. --label c2=width")
        name, text = (s.strip() for s in item.split("=", 1))
        if name not in codes:
            raise UserError(f"--label {item!r}: no code named {name!r}.{suggest(name, codes.names)} "
                            f"Codes: {', '.join(codes.names)}")
        if not text or len(text) > 40:
            raise UserError(f"--label {item!r}: the name must be 1 to 40 characters")
        out[name] = text
    return out


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@hookimpl
def register_commands(cli):
    @cli.command("explore")
    @click.argument("file_or_run")
    @click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535),
                  help="Port to listen on (0: any free port; the URL is printed).")
    @click.option("--host", default="127.0.0.1", show_default=True,
                  help="Address to listen on. The page has no login: keep it on 127.0.0.1 unless you mean to share it.")
    @click.option("--device", default="cpu", show_default=True, help="Where the model runs: cpu, cuda, cuda:N, mps.")
    @click.option("--label", "labels", multiple=True, metavar="CODE=NAME",
                  help="Name a code on the page, e.g. --label c2=width (the last evaluation's factor names otherwise).")
    def explore_cmd(file_or_run, port, host, device, labels):
        """Turn a model's codes by hand in a web page: sliders, category pickers, a sample grid that
        redraws as they move, the model card, and Q's reading of an image you drop.

        FILE_OR_RUN is a run folder or a .safetensors file. The page is served from this machine
        (no asset comes from the internet) at http://127.0.0.1:8000/ by default.
        """
        _check_web_stack()
        from genzoo_infogan import load
        from genzoo_infogan.checkpoint import find_model_file
        from genzoo_infogan.explore import LOOPBACK, bind, make_app, serve, url_of

        dev = _device(device)
        path = find_model_file(file_or_run)
        sock = bind(host, port)
        try:
            model = load(path, device=dev)
            if not callable(getattr(model, "sample", None)) or not callable(getattr(model, "traverse", None)):
                raise UserError(f"{str(path)!r}: family {model.checkpoint.get('family')!r} cannot sample; "
                                "genzoo explore needs a model that can")
            model.eval()
            loopback = _is_loopback(host)
            app = make_app(model, path=str(path), labels=_labels(labels, model.codes),
                           allowed_hosts=[*LOOPBACK, host.lower()] if loopback else ["*"])
        except BaseException:
            sock.close()
            raise

        def ready() -> None:
            if not loopback:
                click.echo(f"warning: listening on {host}: anyone who can reach this machine can use the "
                           "explorer (it has no login)", err=True)
            click.echo(f"genzoo explore: {path} at {url_of(sock, host)}  (Ctrl-C to stop)")
            sys.stdout.flush()

        serve(app, sock, on_ready=ready)
