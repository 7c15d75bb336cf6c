"""Notice relationship lazy loads, and name the attribute that was loaded.

In async code a plain lazy load fails with MissingGreenlet, and one that
succeeds (`await obj.awaitable_attrs.books` in a loop) is the async spelling of
N+1. Both go through `Session.execute` with `lazy_loaded_from` set, so a global
`do_orm_execute` listener sees them *before* the SQL runs — including the ones
that then fail. The relationship is the last element of the statement's loader
path, which gives a name a student recognises: "Author.books".
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from sqlalchemy.orm import Session

from autograder.observe._listener import Listener


@dataclass(frozen=True)
class LazyLoad:
    attribute: str  # "Author.books"
    session_id: int


def attribute_name(owner: type | None, prop: Any) -> str:
    """The name "Class.attr" of a relationship property, preferring the instance's class."""
    key = getattr(prop, "key", None) or str(prop)
    if owner is None:
        parent = getattr(prop, "parent", None)
        owner = getattr(parent, "class_", None)
    return f"{owner.__name__}.{key}" if owner is not None else key


class LazyLoadWatch(Listener):
    def __init__(self) -> None:
        self.loads: list[LazyLoad] = []

    def _on_execute(self, orm_execute_state: Any) -> None:
        if not orm_execute_state.is_relationship_load:
            return  # selectinload/joinedload also run here, but those are asked for
        state = orm_execute_state.lazy_loaded_from
        if state is None:
            return
        path = orm_execute_state.loader_strategy_path
        prop = path.path[-1] if path is not None and path.path else None
        owner: type | None = getattr(state, "class_", None)
        name = attribute_name(owner, prop) if prop is not None else f"{getattr(owner, '__name__', '?')}.?"
        self.loads.append(LazyLoad(name, id(orm_execute_state.session)))

    def handlers(self) -> list[tuple[Any, str, Callable[..., Any]]]:
        return [(Session, "do_orm_execute", self._on_execute)]

    def clear(self) -> None:
        self.loads.clear()

    def attributes(self) -> list[str]:
        return [load.attribute for load in self.loads]


_DETACHED = re.compile(
    r"Parent instance <(\w+) at [^>]*> is not bound to a Session; lazy load operation of attribute '(\w+)'"
)


def lazy_load_named_by(exc: BaseException) -> str | None:
    """Name the relationship whose lazy load raised `exc`, or None.

    For MissingGreenlet the traceback passes through the LazyLoader, whose frame
    holds the relationship (`self.parent_property`) and the instance (`state`).
    A DetachedInstanceError says it in its message.
    """
    match = _DETACHED.search(str(exc))
    if match:
        return f"{match.group(1)}.{match.group(2)}"
    tb: TracebackType | None = exc.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        if frame.f_code.co_name in ("_load_for_state", "_emit_lazyload"):
            loader = frame.f_locals.get("self")
            prop = getattr(loader, "parent_property", None)
            state = frame.f_locals.get("state")
            if prop is not None:
                return attribute_name(getattr(state, "class_", None), prop)
        tb = tb.tb_next
    return None
