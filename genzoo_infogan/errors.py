"""Errors a user can cause. The CLI turns a :class:`UserError` into one message and exit status 2."""

from __future__ import annotations

import difflib


class UserError(Exception):
    """Bad input: a recipe key, a code spec, a file, a path. The message says what would be right."""

    exit_code = 2


class TrainingStopped(Exception):
    """Training stopped on purpose (a signal, a non-finite loss); a checkpoint was kept."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


def suggest(name: str, choices) -> str:
    """' Did you mean X?' for the closest choices, or ''."""
    close = difflib.get_close_matches(str(name), [str(c) for c in choices], n=3, cutoff=0.5)
    if not close:
        return ""
    return " Did you mean " + " or ".join(repr(c) for c in close) + "?"
