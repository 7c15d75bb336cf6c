"""Check that a request loaded relationships eagerly, not lazily.

In async SQLAlchemy a lazy load either fails (MissingGreenlet, or
DetachedInstanceError once the session is closed) or, through
`awaitable_attrs`, quietly runs one query per object. Both are reported with
the attribute's name.
"""

from __future__ import annotations

from sqlalchemy.exc import MissingGreenlet
from sqlalchemy.orm.exc import DetachedInstanceError

from autograder.checks.messages import check, outcome, verdict
from autograder.checks.probe import Exchange
from autograder.checks.verdict import Verdict
from autograder.errors import describe, first_line
from autograder.observe.loads import lazy_load_named_by

LAZY_ERRORS = (MissingGreenlet, DetachedInstanceError)


def _lazy_failures(exchange: Exchange) -> list[tuple[str | None, str]]:
    """(attribute name or None, one-line error) for each lazy load that raised.

    The error may be the exception itself, a cause in its chain, or — when
    FastAPI serialises a `response_model` — an entry of a
    ResponseValidationError: pydantic catches the MissingGreenlet while reading
    the attribute and keeps only its text, with the location and the object.
    """
    found: list[tuple[str | None, str]] = []
    for exc in exchange.errors:
        chain: BaseException | None = exc
        seen: set[int] = set()
        while chain is not None and id(chain) not in seen:
            seen.add(id(chain))
            if isinstance(chain, LAZY_ERRORS):
                found.append((lazy_load_named_by(chain), describe(chain)))
                break
            chain = chain.__cause__ or chain.__context__
        errors = getattr(exc, "errors", None)
        if callable(errors):
            try:
                entries = list(errors())
            except Exception:  # noqa: BLE001 - any exception's own errors(): if it breaks, no entries
                entries = []
            for entry in entries:
                msg = str(entry.get("msg", "")) if isinstance(entry, dict) else ""
                if not any(cls.__name__ in msg for cls in LAZY_ERRORS):
                    continue
                loc, obj = entry.get("loc") or (), entry.get("input")
                name = f"{type(obj).__name__}.{loc[-1]}" if loc and obj is not None else None
                error = msg.split(": ", 1)[-1] if msg.startswith("Error extracting attribute") else msg
                found.append((name, first_line(error)))
    return found


@check
def no_lazy_load(exchange: Exchange) -> Verdict:
    errors = _lazy_failures(exchange)
    names = list(dict.fromkeys(exchange.lazy_loads))
    for name, _ in errors:
        if name and name not in names:
            names.append(name)
    passed = not names and not errors
    if passed:
        actual = f"no lazy load ({outcome(exchange)})"
    else:
        parts = []
        for name in names:
            times = exchange.lazy_loads.count(name)
            parts.append(f"{name} was lazy-loaded" + (f" {times} times" if times > 1 else ""))
        actual = "; ".join(parts) or "a relationship was lazy-loaded"
        if errors:
            actual += (
                f" and failed with {errors[0][1]} — typically while the response was "
                "serialised from objects whose relationship was not loaded in the query"
            )
        actual += f" ({outcome(exchange)})"
    first = names[0] if names else "Parent.children"
    return verdict(
        passed,
        f"{exchange.call} loads every relationship it returns in its queries (no lazy load)",
        actual,
        exchange.sql,
        hint=f"eager-load it in the query: `.options(selectinload({first}))`.",
    )
