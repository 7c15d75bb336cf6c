"""Errors a person can act on.

A setup problem (no database, port taken, unwritable folder) should read as one
sentence that says what is wrong and what to do — not as a traceback. The CLI
prints `SetupError` as that sentence and exits 2; IPython shows it the same way
because of `_render_traceback_`, the hook IPython uses instead of a traceback.
"""

from __future__ import annotations


class SetupError(Exception):
    """Something about the environment is wrong; the message says what to do."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def _render_traceback_(self) -> list[str]:  # IPython hook: no traceback wall
        return [f"{type(self).__name__}: {self.message}"]
