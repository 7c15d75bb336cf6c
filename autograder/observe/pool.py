"""Watch connections leave and return to an engine's pool, and make leaks stick.

A session that is never closed keeps its pooled connection checked out, but
only until the garbage collector finds the orphaned connection proxy: the pool
then reclaims it (with a warning nobody reads) and the leak becomes invisible.
To keep the evidence, this watcher holds a strong reference to every proxy it
sees checked out, until that proxy is checked in. A leaked connection therefore
stays checked out, `checked_out()` counts it, and `release_leaked()` cleans up
at the end so the tests themselves leak nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.util import greenlet_spawn

from autograder.observe._engines import sync_engine_of
from autograder.observe._listener import Listener


class PoolWatch(Listener):
    def __init__(self, engine: Any, keep_alive: bool = True):
        self.engine = sync_engine_of(engine)
        self.pool = self.engine.pool
        # keep_alive=False only exists to demonstrate why the strong reference matters
        self.keep_alive = keep_alive
        # connection record -> the proxy handed out (strong ref, see module doc)
        self._held: dict[int, Any] = {}
        self.checkouts = 0
        self.checkins = 0

    def _on_checkout(self, dbapi_connection: Any, connection_record: Any, connection_proxy: Any) -> None:
        self.checkouts += 1
        self._held[id(connection_record)] = connection_proxy if self.keep_alive else None

    def _on_checkin(self, dbapi_connection: Any, connection_record: Any) -> None:
        self.checkins += 1
        self._held.pop(id(connection_record), None)

    def _on_detach(self, dbapi_connection: Any, connection_record: Any) -> None:
        # An async pool cannot do IO from the garbage collector, so a collected
        # proxy's connection is detached (and terminated) instead of checked in.
        self._held.pop(id(connection_record), None)

    def handlers(self) -> list[tuple[Any, str, Callable[..., Any]]]:
        return [
            (self.pool, "checkout", self._on_checkout),
            (self.pool, "checkin", self._on_checkin),
            (self.pool, "detach", self._on_detach),
        ]

    def close(self) -> None:
        """Stop listening. Anything still held is let go (call `release_leaked` first)."""
        super().close()
        self._held.clear()

    def checked_out(self) -> int:
        """Connections checked out while watching and not returned yet."""
        return len(self._held)

    async def release_leaked(self) -> int:
        """Invalidate every connection still held; returns how many there were.

        Invalidating (rather than returning) is the honest choice: a leaked
        connection may sit in an open transaction in an unknown state. For an
        async engine the close does IO, so it runs inside `greenlet_spawn`.
        """
        leaked = [p for p in self._held.values() if p is not None]
        for proxy in leaked:
            try:
                await greenlet_spawn(proxy.invalidate)
            except Exception:  # noqa: BLE001 - already closed by someone else: nothing left to release
                pass
        self._held.clear()
        return len(leaked)
