"""Small helpers for lesson demonstrations.

A lesson shows a mistake failing before it shows the fix. The failing cell must
not stop "Run All", and it must stay honest: if the mistake ever stops failing
(a library changed), the demonstration says so loudly instead of teaching a
falsehood.

    from autograder.teaching import expect_failure
    with expect_failure(MissingGreenlet):
        print(user.email)          # prints one line: the error the learner should expect

Nothing here grades anything; graded checks live in `autograder.checks`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from autograder.errors import describe

__all__ = [
    "DemoDidNotFail",
    "Failure",
    "expect_failure",
    "expect_check_fails",
    "require_that",
    "EventLog",
    "announce_response",
    "describe_table",
    "count_rows",
    "bar_chart",
    "Chart",
]


class DemoDidNotFail(AssertionError):
    """A demonstration that should have failed did not: the lesson text is now wrong."""


@dataclass
class Failure:
    """What `expect_failure` caught. `error` is None until the block has failed."""

    expected: tuple[type[BaseException], ...]
    error: BaseException | None = None

    @property
    def line(self) -> str:
        return one_line(self.error) if self.error is not None else ""


def one_line(error: BaseException, limit: int = 200) -> str:
    """`TypeName: first line of the message`, without SQLAlchemy's background link, cut to `limit`."""
    return describe(error, limit)


@contextmanager
def expect_failure(
    *expected: type[BaseException], contains: str | None = None, label: str = "expected failure"
) -> Iterator[Failure]:
    """Run a block that is supposed to raise one of `expected`; print it as one line.

    - the expected exception (optionally whose message contains `contains`) is
      caught and printed as `✗ expected failure -> Type: message`;
    - any other exception propagates unchanged (the demo is broken, show it);
    - no exception at all raises `DemoDidNotFail`.

    Works around `await` too: a plain `with` block may contain awaits in a
    notebook cell or an async function.
    """
    if not expected:
        raise TypeError("expect_failure() needs at least one exception type")
    outcome = Failure(expected=tuple(expected))
    try:
        yield outcome
    except expected as exc:
        if contains is not None and contains not in str(exc):
            raise
        outcome.error = exc
        print(f"\u2717 {label} -> {one_line(exc)}")
        return
    names = " or ".join(t.__name__ for t in expected)
    raise DemoDidNotFail(
        f"This demonstration expected {names} but the code ran without raising. "
        "The lesson's claim no longer holds for the installed versions; tell the course team."
    )


def expect_check_fails(verdict: Any) -> Any:
    """Print a check's verdict that a demonstration expects to FAIL; loud if it passes.

    `verdict` is an `autograder.checks.Verdict` (anything with `.passed` and a readable str).
    """
    print(verdict)
    if verdict.passed:
        raise DemoDidNotFail(
            f"This demonstration expected the check {getattr(verdict, 'check', '?')!r} to fail, "
            "but it passed. The lesson's claim no longer holds; tell the course team."
        )
    return verdict


def require_that(condition: Any, message: str) -> None:
    """Raise `CheckFailed(message)` unless `condition`: a graded assert that shows only its message.

    A plain `assert` in a hidden test would show the test's code in the traceback;
    `CheckFailed` renders as its message alone.
    """
    if not condition:
        from autograder.checks import CheckFailed

        raise CheckFailed(message)


@dataclass
class EventLog:
    """An ordered list of what happened, for showing the order of events."""

    events: list[str] = field(default_factory=list)

    def __call__(self, message: str) -> None:
        self.events.append(message)

    log = __call__

    def clear(self) -> None:
        self.events.clear()

    def index(self, prefix: str) -> int:
        """Position of the first event that starts with `prefix` (ValueError if none)."""
        for i, event in enumerate(self.events):
            if event.startswith(prefix):
                return i
        raise ValueError(f"no event starting with {prefix!r} in {self.events!r}")

    def show(self, title: str | None = None) -> None:
        if title:
            print(title)
        for i, event in enumerate(self.events, 1):
            print(f"  {i}. {event}")


def announce_response(app: Any, log: EventLog) -> Any:
    """Wrap an ASGI app so that `log` records when the response leaves the app.

    Pass the wrapper to `httpx.ASGITransport(app=...)`; the FastAPI app itself is
    unchanged. Logs `response sent: <status>` when the status line goes out and
    `response body sent` when the last body chunk does.
    """

    async def wrapper(scope: dict, receive: Any, send: Any) -> None:
        if scope.get("type") != "http":
            await app(scope, receive, send)
            return

        async def logging_send(message: dict) -> None:
            if message.get("type") == "http.response.start":
                log(f"response sent: {message.get('status')}")
            elif message.get("type") == "http.response.body" and not message.get("more_body"):
                log("response body sent")
            await send(message)

        await app(scope, receive, logging_send)

    return wrapper


async def describe_table(engine: Any, table: str) -> dict[str, dict[str, Any]]:
    """The table as PostgreSQL has it (not as the model says): one dict per column.

    Keys per column: type (SQL text, e.g. 'VARCHAR(255)', 'TIMESTAMP WITH TIME ZONE'),
    nullable, default (server default text or None), unique (single-column unique
    constraint or unique index), primary_key.
    """
    from sqlalchemy import inspect

    def _read(sync_conn: Any) -> dict[str, dict[str, Any]]:
        insp = inspect(sync_conn)
        pk = set(insp.get_pk_constraint(table).get("constrained_columns") or [])
        unique: set[str] = set()
        for uc in insp.get_unique_constraints(table):
            if len(uc["column_names"]) == 1:
                unique.add(uc["column_names"][0])
        for ix in insp.get_indexes(table):
            cols = ix.get("column_names") or []
            if ix.get("unique") and len(cols) == 1 and cols[0]:
                unique.add(cols[0])
        out: dict[str, dict[str, Any]] = {}
        for col in insp.get_columns(table):
            out[col["name"]] = {
                "type": col["type"].compile(dialect=sync_conn.dialect),
                "nullable": bool(col["nullable"]),
                "default": col.get("default"),
                "unique": col["name"] in unique,
                "primary_key": col["name"] in pk,
            }
        return out

    async with engine.connect() as conn:
        return await conn.run_sync(_read)


async def count_rows(engine: Any, table: str) -> int:
    """How many rows `table` has, read on a connection of its own (committed data only)."""
    from sqlalchemy import func, select
    from sqlalchemy import table as table_clause

    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(table_clause(table))))


class Chart:
    """A matplotlib Figure that a notebook displays as one PNG (no pyplot, no backend setup).

    Drawn when displayed, not when made, and not at all in a graded run
    (`NBGRADER_EXECUTION=autograde`, set by nbgrader and by our grader): there the
    notebook gets the chart's values as text. Drawing costs ~50 ms a chart — a
    tenth of grading a whole lesson — and nobody looks at the grader's copy.
    """

    def __init__(
        self,
        figure: Any = None,
        *,
        build: Callable[[], Any] | None = None,
        title: str = "",
        values: Mapping[str, Any] | None = None,
    ):
        if (figure is None) == (build is None):
            raise TypeError("Chart needs a figure or a build function (one of them)")
        self._figure = figure
        self._build = build
        self.title = title or (figure.axes[0].get_title() if figure is not None and figure.axes else "")
        self.values = dict(values or {})

    @property
    def figure(self) -> Any:
        if self._figure is None:
            assert self._build is not None, "__init__ takes a figure or a build function"
            self._figure = self._build()
        return self._figure

    def _repr_png_(self) -> bytes | None:
        if os.environ.get("NBGRADER_EXECUTION") == "autograde":
            return None  # text/plain (the values) stands in
        import io

        buffer = io.BytesIO()
        self.figure.savefig(buffer, format="png", dpi=100)
        return buffer.getvalue()

    def __repr__(self) -> str:
        shown = "; ".join(f"{k}: {v:g}" if isinstance(v, (int, float)) else f"{k}: {v}" for k, v in self.values.items())
        return f"<Chart: {self.title}" + (f" | {shown}>" if shown else ">")


def bar_chart(values: Mapping[str, float], *, title: str, ylabel: str = "SQL statements") -> Chart:
    """A small labelled bar chart; put it last in a cell to display it.

    Built without pyplot, so it shows exactly once and leaves no global state.
    """
    values = dict(values)

    def build():
        from matplotlib.figure import Figure

        fig = Figure(figsize=(6, 2.8), layout="constrained")
        ax = fig.subplots()
        labels = list(values)
        heights = [values[k] for k in labels]
        bars = ax.bar(labels, heights, color="#4C72B0")
        ax.bar_label(bars, labels=[f"{h:g}" for h in heights])
        ax.set_title(title)
        ax.set_ylabel(ylabel)
        ax.set_ylim(0, max(heights + [1]) * 1.25)
        ax.spines[["top", "right"]].set_visible(False)
        return fig

    return Chart(build=build, title=title, values=values)
