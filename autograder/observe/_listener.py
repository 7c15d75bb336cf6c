"""The one lifecycle every observer shares: attach SQLAlchemy event handlers on
enter, detach exactly those on close, however often close is called.

Observers must not outlive their check: a handler left on a global target (the
`Session` class) would keep recording, and slowing, every later session in the
process — including the next submission's tests in a grading process.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Self

from sqlalchemy import event


class Listener:
    def handlers(self) -> list[tuple[Any, str, Callable[..., Any]]]:
        """(target, event name, handler) triples to attach."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        self._attached = self.handlers()
        for target, name, fn in self._attached:
            event.listen(target, name, fn)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for target, name, fn in getattr(self, "_attached", []):
            event.remove(target, name, fn)
        self._attached = []
