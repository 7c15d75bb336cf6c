"""Record which ORM Session objects did database work.

A session shared between requests (a module-global `session = SessionLocal()`)
works until two users collide; the symptom is invisible in responses. Listening
globally on `Session.after_begin` (fired when a session starts a transaction on
a connection, i.e. actually does work) names each Session that worked, so a
check can tell whether two requests used the same one.

`id()` alone cannot name a session: once one is garbage collected the next may
get the same address. Each live Session therefore gets its own serial number,
kept in a WeakKeyDictionary so a dead session's entry (and number) goes with it.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass
from itertools import count
from typing import Any

from sqlalchemy.orm import Session

from autograder.observe._listener import Listener


@dataclass(frozen=True)
class SessionUse:
    serial: int  # unique per Session object for the life of this watcher
    session_id: int
    ref: weakref.ref[Session]  # to the (sync) Session; dead once it is collected


class SessionWatch(Listener):
    def __init__(self) -> None:
        self.uses: list[SessionUse] = []
        self._serials: weakref.WeakKeyDictionary[Session, int] = weakref.WeakKeyDictionary()
        self._next = count(1)

    def _on_begin(self, session: Session, transaction: Any, connection: Any) -> None:
        serial = self._serials.get(session)
        if serial is None:
            serial = self._serials[session] = next(self._next)
        self.uses.append(SessionUse(serial, id(session), weakref.ref(session)))

    def handlers(self) -> list[tuple[Any, str, Callable[..., Any]]]:
        return [(Session, "after_begin", self._on_begin)]

    def clear(self) -> None:
        self.uses.clear()

    def serials(self) -> list[int]:
        """Distinct sessions that did work, in order of first use."""
        return list(dict.fromkeys(u.serial for u in self.uses))
