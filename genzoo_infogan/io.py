"""Writing files so that a crash or a bad destination never leaves half a file behind."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Callable

from .errors import UserError


def atomic_write(path: str | Path, write: Callable[[Path], Any]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it to ``path``.

    A crash or an error midway leaves no half-written file under the final name (and no temporary
    file behind, except after a hard kill). A destination that cannot be written (a missing or
    read-only folder, a full disk) is a :class:`UserError` naming the path.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.open("wb").close()  # an unwritable destination fails here, with the OS's own reason
        write(tmp)
        os.replace(tmp, path)
    except OSError as e:
        raise UserError(f"cannot write {str(path)!r}: {e.strerror or e}") from None
    finally:
        try:
            if tmp.exists():
                tmp.unlink()
        except OSError:
            pass
    return path


def check_writable_file(path: str | Path, suffix: str | None = None) -> Path:
    """Check, before any work, that ``path`` can be written as a file: its folder exists and takes
    files, and it is not a folder itself. Raises :class:`UserError` otherwise."""
    path = Path(path)
    if suffix and path.suffix.lower() != suffix:
        raise UserError(f"{str(path)!r}: the output must be a {suffix} file")
    if path.is_dir():
        raise UserError(f"{str(path)!r} is a folder; give a file name")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise UserError(f"folder {str(folder)!r} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UserError(f"folder {str(folder)!r} is not writable")
    return path


def replace_dir(path: Path) -> None:
    """Start ``path`` afresh: the old folder is renamed aside in one step, then removed, so a
    crash leaves either the old run (under a hidden name) or the new, empty folder."""
    aside = path.with_name(f".{path.name}.replaced-{os.getpid()}")
    if aside.exists():
        shutil.rmtree(aside)
    os.replace(path, aside)
    path.mkdir()
    shutil.rmtree(aside, ignore_errors=True)
