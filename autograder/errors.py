"""Errors a person can act on.

A setup problem (no database, port taken, unwritable folder) should read as one
sentence that says what is wrong and what to do — not as a traceback. The CLI
prints `SetupError` as that sentence and exits 2; IPython shows it the same way
because of `_render_traceback_`, the hook IPython uses instead of a traceback.
"""

from __future__ import annotations

import re


class SetupError(Exception):
    """Something about the environment is wrong; the message says what to do."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def _render_traceback_(self) -> list[str]:  # IPython hook: no traceback wall
        return [f"{type(self).__name__}: {self.message}"]


# --------------------------------------------------------------------------- one-line reports

_BACKGROUND = re.compile(r"\s*\(Background on this error at: [^)]*\)")  # SQLAlchemy's link: noise here
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")  # object addresses change every run
_DRIVER_PREFIX = re.compile(r"^\(.*?\) ")  # "(sqlalchemy.dialects...Error) " before a driver's message
# Terminal colour codes (pytest, IPython, rich): a notebook or a feedback page shows them as "[31m" noise.
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def strip_ansi(text: str) -> str:
    """`text` without terminal colour and cursor codes."""
    return _ANSI.sub("", text)


def first_line(text: str, limit: int | None = None) -> str:
    """The first line of `text`, without SQLAlchemy's background link or object addresses,
    cut to `limit` characters (ending in "...") when it is longer, and without colour codes."""
    text = _ADDRESS.sub("", _BACKGROUND.sub("", strip_ansi(text))).strip()
    return _cut(text.splitlines()[0].strip() if text else "", limit)


def _cut(line: str, limit: int | None) -> str:
    return line[: limit - 3].rstrip() + "..." if limit is not None and len(line) > limit else line


def describe(error: BaseException, limit: int | None = None, *, driver: bool = False) -> str:
    """`TypeName: first line of the message`, for one-line reports.

    With `driver=True`, a SQLAlchemy error that wraps a driver's exception (`.orig`) is
    reported as that exception, without SQLAlchemy's "(module.Class) " prefix: what the
    database said, which is what a migration author needs.
    """
    orig = getattr(error, "orig", None) if driver else None
    shown = orig if orig is not None else error
    first = first_line(str(shown))
    if driver:
        first = _DRIVER_PREFIX.sub("", first)
    first = _cut(first, limit)
    name = type(shown).__name__
    return f"{name}: {first}" if first else name
