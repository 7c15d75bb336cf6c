"""The demonstration helpers: honest about failures, one line of output, no DB state leaks."""

from __future__ import annotations

from datetime import datetime

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import DateTime, String, func
from sqlalchemy.exc import MissingGreenlet
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from autograder.teaching import (
    Chart,
    DemoDidNotFail,
    EventLog,
    announce_response,
    bar_chart,
    count_rows,
    describe_table,
    expect_check_fails,
    expect_failure,
    one_line,
    require_that,
)


def test_expected_failure_is_caught_and_printed_as_one_line(capsys):
    with expect_failure(ZeroDivisionError) as outcome:
        _ = 1 / 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    assert "ZeroDivisionError: division by zero" in out
    assert isinstance(outcome.error, ZeroDivisionError)
    assert outcome.line == "ZeroDivisionError: division by zero"


def test_no_failure_is_loud():
    with pytest.raises(DemoDidNotFail, match="expected KeyError"), expect_failure(KeyError):
        pass


def test_unexpected_exception_propagates():
    with pytest.raises(ValueError, match="something else broke"), expect_failure(KeyError):
        raise ValueError("something else broke")


def test_contains_filters_on_message():
    with pytest.raises(RuntimeError, match="other"), expect_failure(RuntimeError, contains="greenlet"):
        raise RuntimeError("other problem")


def test_expect_failure_needs_a_type():
    with pytest.raises(TypeError), expect_failure():
        pass


def test_one_line_drops_background_link_and_extra_lines():
    err = MissingGreenlet("greenlet_spawn has not been called\n[SQL: SELECT 1]")
    assert one_line(err).startswith("MissingGreenlet: greenlet_spawn has not been called")
    assert "SQL" not in one_line(err)
    assert "sqlalche.me" not in one_line(err)
    assert one_line(RuntimeError("Instance <A at 0x7f00ab> gone")) == "RuntimeError: Instance <A> gone"
    long = RuntimeError("x" * 500)
    assert len(one_line(long, limit=50)) <= len("RuntimeError: ") + 50


async def test_expect_failure_wraps_awaits(capsys):
    async def boom():
        raise LookupError("nope")

    with expect_failure(LookupError):
        await boom()
    assert "LookupError: nope" in capsys.readouterr().out


async def test_announce_response_logs_when_response_leaves():
    log = EventLog()
    app = FastAPI()

    @app.get("/x")
    async def x():
        log("route ran")
        return {"ok": True}

    transport = httpx.ASGITransport(app=announce_response(app, log))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.get("/x")).status_code == 200
    assert log.events == ["route ran", "response sent: 200", "response body sent"]
    assert log.index("response") == 1
    with pytest.raises(ValueError, match="no event starting with 'missing'"):
        log.index("missing")
    log.clear()
    assert log.events == []


def test_event_log_show(capsys):
    log = EventLog()
    log("a")
    log.log("b")
    log.show("title")
    assert capsys.readouterr().out == "title\n  1. a\n  2. b\n"


def test_bar_chart_builds_a_figure(monkeypatch):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    chart = bar_chart({"one": 1, "two": 2.5}, title="t")
    assert chart._figure is None, "nothing is drawn until the chart is shown"
    assert chart._repr_png_().startswith(b"\x89PNG")
    assert repr(chart) == "<Chart: t | one: 1; two: 2.5>"
    ax = chart.figure.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["one", "two"]
    assert ax.get_title() == "t"


def test_a_graded_run_gets_the_values_as_text_and_draws_nothing(monkeypatch):
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    chart = bar_chart({"refresh()": 3, "expire_on_commit=False": 2}, title="statements")
    assert chart._repr_png_() is None  # IPython then shows text/plain
    assert chart._figure is None
    assert repr(chart) == "<Chart: statements | refresh(): 3; expire_on_commit=False: 2>"


def test_a_chart_made_from_a_figure_keeps_its_title():
    from matplotlib.figure import Figure

    fig = Figure()
    fig.subplots().set_title("made by hand")
    assert repr(Chart(fig)) == "<Chart: made by hand>"
    with pytest.raises(TypeError):
        Chart()


class _Base(DeclarativeBase):
    pass


class _Thing(_Base):
    __tablename__ = "things"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(20), unique=True)
    note: Mapped[str | None]
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


async def test_describe_table_and_count_rows(fresh_database):
    engine = create_async_engine(fresh_database("teach"))
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_Base.metadata.create_all)
            await conn.execute(_Thing.__table__.insert().values(code="a"))
        cols = await describe_table(engine, "things")
        assert cols["id"]["primary_key"] and not cols["id"]["nullable"]
        assert cols["code"] == {
            "type": "VARCHAR(20)",
            "nullable": False,
            "default": None,
            "unique": True,
            "primary_key": False,
        }
        assert cols["note"]["nullable"] is True
        assert cols["created_at"]["type"] == "TIMESTAMP WITH TIME ZONE"
        assert "now()" in cols["created_at"]["default"]
        assert await count_rows(engine, "things") == 1
    finally:
        await engine.dispose()


def test_expect_check_fails_prints_and_is_honest(capsys):
    from autograder.checks import Verdict

    bad = Verdict(check="committed_once", passed=False, expected="one COMMIT", actual="none")
    assert expect_check_fails(bad) is bad
    assert "committed_once: FAILED" in capsys.readouterr().out
    good = Verdict(check="committed_once", passed=True, expected="one COMMIT", actual="one")
    with pytest.raises(DemoDidNotFail, match="committed_once"):
        expect_check_fails(good)


def test_require_that_raises_check_failed_with_message_only():
    from autograder.checks import CheckFailed

    require_that(True, "never shown")
    with pytest.raises(CheckFailed) as info:
        require_that(0, "expected: x\ngot: y")
    assert info.value._render_traceback_() == ["expected: x", "got: y"]
