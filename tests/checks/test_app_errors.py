"""What a learner reads when their app raised, through the probe, against real PostgreSQL.

Each test makes a real app raise a real exception the way a learner's code does (a typo, an
unsolved exercise, a joinedload without unique(), a lazy load, ...) and asserts that the 500's
body, `Exchange.crash` and the verdict's `outcome()` all name the exception type, its first
line, the learner's line, and — for an error the course teaches — the lesson that explains it.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import Depends, FastAPI, Request
from sqlalchemy import ForeignKey, String, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, joinedload, mapped_column, relationship

from autograder.app_errors import explain, in_learner_code
from autograder.checks import Call, Probe
from autograder.checks.messages import outcome
from tests.apps.common import database_lifespan, schema

HERE = "tests/checks/test_app_errors.py"


class Base(DeclarativeBase):
    pass


class Writer(Base):
    __tablename__ = "writers"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50), unique=True)
    novels: Mapped[list[Novel]] = relationship(back_populates="writer")


class Novel(Base):
    __tablename__ = "novels"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(100))
    writer_id: Mapped[int] = mapped_column(ForeignKey("writers.id"))
    writer: Mapped[Writer] = relationship(back_populates="novels")


async def seed(conn: Any) -> None:
    await conn.execute(insert(Writer), [{"id": 1, "name": "Ada"}, {"id": 2, "name": "Grace"}])
    await conn.execute(insert(Novel), [{"title": "One", "writer_id": 1}, {"title": "Two", "writer_id": 1}])


def line_of(fn: Callable[..., Any], fragment: str) -> int:
    """The line number of the first line of `fn` containing `fragment`."""
    lines, start = inspect.getsourcelines(fn)
    return start + next(i for i, line in enumerate(lines) if fragment in line)


def app_on(url: str, **engine_options: Any) -> FastAPI:
    return FastAPI(lifespan=database_lifespan(url, schema(Base.metadata, seed=seed), **engine_options))


async def get_db(request: Request):
    async with request.app.state.sessionmaker() as session:
        yield session
        await session.commit()


async def crash_of(app: FastAPI, call: Call) -> tuple[str, str, str]:
    """(the 500's body, Exchange.crash, outcome()) of one request that must end in a 500."""
    async with Probe(app) as probe:
        ex = await probe.request(call)
    assert ex.status == 500, (ex.status, ex.response.text)
    assert len(ex.errors) == 1
    return ex.response.text, ex.crash, outcome(ex)


def assert_everywhere(reports: tuple[str, str, str], *fragments: str) -> None:
    body, crash, said = reports
    assert body == crash
    assert said.endswith(f" -> 500 ({crash})")
    for fragment in fragments:
        assert fragment in crash, f"{fragment!r} missing from {crash!r}"


# ------------------------------------------------------------------ learner code in a file


async def test_a_typo_names_the_error_and_the_learners_line(fresh_database):
    async def get_db_with_typo(request: Request):
        SessionLocal = request.app.state.sessionmaker  # noqa: F841 - the name the learner meant
        async with SessionLcoal() as session:  # type: ignore[name-defined]  # noqa: F821 - the typo
            yield session

    app = app_on(fresh_database("aerr"))

    @app.get("/writers")
    async def list_writers(db: AsyncSession = Depends(get_db_with_typo)):
        return []

    reports = await crash_of(app, Call.get("/writers"))
    line = line_of(get_db_with_typo, "SessionLcoal()")
    assert reports[1] == (
        f"NameError: name 'SessionLcoal' is not defined (raised at {HERE}, line {line}, in get_db_with_typo) — "
        "check the spelling, and that the cell defining it ran without error (an exercise cell still raising "
        "NotImplementedError defines nothing)"
    )
    assert_everywhere(reports)


async def test_a_joinedload_collection_without_unique_points_to_lesson_06(fresh_database):
    app = app_on(fresh_database("aerr"))

    @app.get("/writers")
    async def list_writers(db: AsyncSession = Depends(get_db)):
        result = await db.scalars(select(Writer).options(joinedload(Writer.novels)))
        return [w.name for w in result.all()]

    reports = await crash_of(app, Call.get("/writers"))
    line = line_of(list_writers, "result.all()")
    assert_everywhere(
        reports,
        "InvalidRequestError: The unique() method must be invoked on this Result, as it contains results "
        "that include joined eager loads against collections",
        f"(raised at {HERE}, line {line}, in list_writers)",
        " — see lesson 06 (joinedload): ",
        ".unique()",
    )


async def test_a_lazy_load_in_async_code_is_missing_greenlet_and_points_to_lesson_06(fresh_database):
    app = app_on(fresh_database("aerr"))

    @app.get("/counts")
    async def novel_counts(db: AsyncSession = Depends(get_db)):
        writers = (await db.scalars(select(Writer).order_by(Writer.id))).all()
        return {w.name: len(w.novels) for w in writers}

    reports = await crash_of(app, Call.get("/counts"))
    line = line_of(novel_counts, "len(w.novels)")
    assert_everywhere(
        reports,
        "MissingGreenlet: greenlet_spawn has not been called; can't call await_() here.",
        f"(raised at {HERE}, line {line}, in <dictcomp>)",
        " — see lesson 06 (lazy loading): ",
        "lesson 00 if a commit expired it (expire_on_commit=False)",
    )
    assert "Background on this error" not in reports[1] and " at 0x" not in reports[1]


async def test_a_session_used_after_a_failed_flush_is_pending_rollback_lesson_05(fresh_database):
    app = app_on(fresh_database("aerr"))

    @app.post("/writers")
    async def add_writers(db: AsyncSession = Depends(get_db)):
        from sqlalchemy.exc import IntegrityError

        db.add(Writer(name="Ada"))  # taken
        try:
            await db.flush()
        except IntegrityError:
            pass  # "skip it and carry on", without a savepoint
        db.add(Writer(name="Linus"))
        await db.flush()
        return {"ok": True}

    reports = await crash_of(app, Call.post("/writers"))
    line = line_of(add_writers, 'db.add(Writer(name="Linus"))') + 1
    assert_everywhere(
        reports,
        "PendingRollbackError: This Session's transaction has been rolled back due to a previous exception "
        "during flush.",
        f"(raised at {HERE}, line {line}, in add_writers)",
        " — see lesson 05 (savepoints): ",
    )


async def test_an_object_read_after_its_session_closed_is_detached_lesson_00(fresh_database):
    url = fresh_database("aerr")
    app = app_on(url)

    @app.get("/first")
    async def first_writer(request: Request):
        Session = async_sessionmaker(request.app.state.engine)  # expire_on_commit left at True
        async with Session() as session:
            writer = await session.get_one(Writer, 1)
            await session.commit()
        return {"name": writer.name}

    reports = await crash_of(app, Call.get("/first"))
    line = line_of(first_writer, "writer.name")
    assert_everywhere(
        reports,
        "DetachedInstanceError: Instance <Writer> is not bound to a Session; attribute refresh operation "
        "cannot proceed",
        f"(raised at {HERE}, line {line}, in first_writer)",
        " — see lesson 00 (expire_on_commit): ",
    )


async def test_an_exhausted_pool_times_out_and_points_to_lesson_07(fresh_database):
    app = app_on(fresh_database("aerr"), pool_size=1, max_overflow=0, pool_timeout=0.2)

    @app.get("/two-sessions")
    async def two_sessions(request: Request, db: AsyncSession = Depends(get_db)):
        await db.execute(text("SELECT 1"))  # holds the pool's only connection
        async with request.app.state.sessionmaker() as other:
            await other.execute(text("SELECT 2"))
        return {"ok": True}

    reports = await crash_of(app, Call.get("/two-sessions"))
    line = line_of(two_sessions, 'text("SELECT 2")')
    assert_everywhere(
        reports,
        "TimeoutError: QueuePool limit of size 1 overflow 0 reached, connection timed out, timeout 0.20",
        f"(raised at {HERE}, line {line}, in two_sessions)",
        " — see lesson 07 (the pool): ",
    )


async def test_one_connection_used_by_two_tasks_is_another_operation_lesson_09(fresh_database):
    app = app_on(fresh_database("aerr"))

    @app.get("/both")
    async def both(db: AsyncSession = Depends(get_db)):
        raw = await (await db.connection()).get_raw_connection()
        conn: Any = raw.driver_connection  # the asyncpg connection itself
        await asyncio.gather(conn.fetch("SELECT pg_sleep(0.2)"), conn.fetch("SELECT 1"))
        return {"ok": True}

    reports = await crash_of(app, Call.get("/both"))
    line = line_of(both, "asyncio.gather(")
    assert_everywhere(
        reports,
        "InterfaceError: cannot perform operation: another operation is in progress",
        f"(raised at {HERE}, line {line}, in both)",
        " — see lesson 09 (testing): ",
    )


async def test_an_engine_from_another_event_loop_is_a_different_loop_lesson_03(fresh_database):
    url = fresh_database("aerr")
    engine = create_async_engine(url)

    async def warm() -> None:  # what an engine created at import time and used once by a notebook cell does
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)

    elsewhere = threading.Thread(target=asyncio.run, args=(warm(),))  # another event loop
    elsewhere.start()
    elsewhere.join()
    app = FastAPI()
    app.state.engine = engine

    @app.get("/writers")
    async def list_writers():
        async with AsyncSession(engine) as session:
            return list(await session.scalars(select(Writer.name)))

    try:
        reports = await crash_of(app, Call.get("/writers"))
    finally:
        engine.sync_engine.dispose(close=False)  # its connection belongs to a loop that is gone
    line = line_of(list_writers, "session.scalars(")
    assert_everywhere(
        reports,
        "attached to a different loop",
        f"(raised at {HERE}, line {line}, in list_writers)",
        " — see lesson 03 (lifespan): ",
    )


# ------------------------------------------------------------------ learner code in notebook cells


@pytest.fixture
def notebook():
    """A real IPython shell: run_cell(source) compiles a cell as a notebook does; gone after the test."""
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    try:
        yield shell
    finally:
        InteractiveShell.clear_instance()


def run_cell(shell: Any, source: str) -> int:
    """Run `source` as the next cell; its execution count ("In[n]")."""
    result = shell.run_cell(source, store_history=True)
    assert result.success, result.error_in_exec or result.error_before_exec
    return int(result.execution_count)


async def test_an_unsolved_exercise_in_a_cell_says_not_implemented_yet(fresh_database, notebook):
    count = run_cell(
        notebook,
        "async def transfer(db, from_id: int, to_id: int, amount: int) -> dict:\n"
        "    # YOUR CODE HERE\n"
        "    raise NotImplementedError()\n",
    )
    transfer = notebook.user_ns["transfer"]
    app = app_on(fresh_database("aerr"))

    @app.post("/transfers")
    async def make_transfer(db: AsyncSession = Depends(get_db)):
        return await transfer(db, 1, 2, 10)

    reports = await crash_of(app, Call.post("/transfers"))
    assert reports[1] == (
        "not implemented yet: transfer raises NotImplementedError — write your solution in the cell marked "
        f"YOUR CODE HERE (cell In[{count}], line 3)"
    )
    assert_everywhere(reports)


async def test_a_typo_in_a_cell_names_the_cell_and_its_line(fresh_database, notebook):
    run_cell(notebook, "x = 1")  # an earlier cell: the count is the cell's own, not 1
    count = run_cell(
        notebook,
        "from fastapi import Request\n"
        "\n"
        "async def get_db(request: Request):\n"
        "    async with SessionLcoal() as session:\n"
        "        yield session\n",
    )
    cell_get_db = notebook.user_ns["get_db"]
    app = app_on(fresh_database("aerr"))

    @app.get("/writers")
    async def list_writers(db: AsyncSession = Depends(cell_get_db)):
        return []

    reports = await crash_of(app, Call.get("/writers"))
    assert count == 2
    assert reports[1].startswith(
        f"NameError: name 'SessionLcoal' is not defined (raised at cell In[{count}], line 4, in get_db) — check the"
    )
    assert_everywhere(reports)


# ------------------------------------------------------------------ what counts as the learner's code


def test_libraries_the_grader_and_hidden_test_cells_are_not_the_learners_code():
    import fastapi
    import sqlalchemy

    import autograder.driver

    assert in_learner_code(__file__)
    assert in_learner_code("<ipython-input-3-5f2a>")
    for library in (fastapi.__file__, sqlalchemy.__file__, asyncio.__file__, autograder.driver.__file__):
        assert not in_learner_code(library), library
    assert not in_learner_code("<ipython-input-7-test>")  # the grader's compiled test cell
    assert not in_learner_code("<frozen importlib._bootstrap>")


def test_an_error_without_a_learners_line_has_no_place_and_keeps_its_hint():
    explained = explain(RuntimeError("Task got Future attached to a different loop"))  # never raised: no traceback
    assert explained.place is None
    assert explained.text == (
        "RuntimeError: Task got Future attached to a different loop — see lesson 03 (lifespan): an engine made at "
        "import time holds another loop's connections; create it in the lifespan (lesson 09: in test fixtures)"
    )


def test_an_exception_group_is_reported_as_the_exception_inside():
    with pytest.raises(ExceptionGroup) as group:
        raise ExceptionGroup("task group", [KeyError("nope")])
    assert explain(group.value).summary == "KeyError: 'nope'"
