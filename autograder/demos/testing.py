"""Demo machinery for lesson 09 (testing your own app), shared with its hidden tests.

- `make_app(variant=..., url=...)`: a small library API (authors and their books) whose
  lifespan creates the engine and the tables. `variant="correct"` is right; the other
  variants are the known-bad apps ("mutants") a good test suite must catch:

  * "wrong_status": POST /authors answers 200 instead of 201;
  * "no_rollback": get_db commits in `finally`, so a refused request keeps its half-write;
  * "no_commit":   get_db never commits, so nothing any request writes survives it;
  * "n_plus_one":  GET /authors loads each author's books with a query of its own;
  * "leak":        get_db never closes the session of a GET request, so its
                   connection stays checked out of the pool.

  Every variant is compiled from one source text with its bug spliced in, under one neutral
  module and file name (see `_APP_SOURCE`): no name, qualname, line number, title or source
  text tells a mutant from the correct app; only its behaviour does.
- `get_sessionmaker` is the dependency a test overrides to bind the app's sessions to the
  test's connection; the app's own `get_db` (commit, rollback, close) stays under test.
- the module is also a pytest plugin (`-p autograder.demos.testing`): it provides an `app`
  fixture, a fresh app of the variant under test (`select_variant`; the correct app when run by
  hand); the grader runs the suite once per variant (`autograder.checks.mutation`). Test ids
  carry a constant `[app]`, never the variant. `DATABASE_URL` tells the app where the database is.
- `run_pytest(folder, ...)` runs pytest on a folder in a child process and returns the
  outcome of every test (from pytest's JUnit XML report).
"""

import os
import re
import subprocess
import sys
from collections.abc import Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI, HTTPException, Request
from pydantic import BaseModel
from sqlalchemy import ForeignKey, String, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, selectinload

from autograder.checks.mutation import APP_PARAM_ID

__all__ = [
    "Base",
    "Author",
    "Book",
    "make_app",
    "get_sessionmaker",
    "VARIANTS",
    "MUTANTS",
    "HINTS",
    "PytestRun",
    "run_pytest",
    "app",
    "select_variant",
]

# what is wrong with each mutant, in the words a surviving mutant is reported with
MUTANTS = {
    "wrong_status": "POST /authors answers 200 instead of 201",
    "no_rollback": "get_db commits in `finally`, so a refused POST /books keeps its half-written book",
    "no_commit": "get_db never commits, so nothing a request writes survives it",
    "n_plus_one": "GET /authors loads each author's books with a SELECT of its own (1 + N statements)",
    "leak": "get_db never closes the session of a GET request, so every read keeps its pool connection",
}
HINTS = {
    "wrong_status": "Assert the exact status code of a successful POST /authors.",
    "no_rollback": "Send a POST /books that is refused (unknown author) and then check, with a query "
    "of your own, that no book was kept.",
    "no_commit": "Create something in one request and read it back in another request.",
    "n_plus_one": "Create a few authors with books, count the SQL statements GET /authors sends "
    "(a before_cursor_execute listener) and assert a bound that does not grow with N.",
    "leak": "A session bound to your test connection never touches the pool, so no overridden test can see "
    "this. Start the app without the override (its real engine), send a few GET requests, then "
    "assert app.state.engine.pool.checkedout() == 0.",
}
VARIANTS = ("correct", *MUTANTS)


class Base(DeclarativeBase):
    pass


class Author(Base):
    __tablename__ = "authors"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    books: Mapped[list["Book"]] = relationship(back_populates="author", order_by="Book.id")


class Book(Base):
    __tablename__ = "books"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("authors.id"))
    author: Mapped[Author | None] = relationship(back_populates="books")


class AuthorIn(BaseModel):
    name: str


class BookIn(BaseModel):
    title: str
    author: str  # the author's name


def get_sessionmaker(request: Request) -> async_sessionmaker[AsyncSession]:
    """Where sessions come from. Tests override this one, not get_db."""
    return request.app.state.sessionmaker


# The app is compiled from one source text per variant, the variant's bug spliced into a slot.
# Why: a graded suite must tell a mutant from the correct app only by what it does. Every variant
# gets the same module name, file name, function names and qualnames, and (slots padded to one
# length) the same line numbers; the file name is no real file and no linecache entry, so
# `inspect.getsource` has nothing to show; and no variant's name is in the app or its closures.
_APP_SOURCE = """\
def build(db_url):
    @asynccontextmanager
    async def lifespan(app):
        engine = create_async_engine(db_url, pool_size=5, max_overflow=0, pool_timeout=2)
        app.state.engine = engine
        app.state.sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        try:
            yield
        finally:
            await engine.dispose()

    app = FastAPI(lifespan=lifespan)

    async def get_db(request: Request, make_session: Annotated[async_sessionmaker, Depends(get_sessionmaker)]):
{get_db}
    app.state.get_db = get_db  # the dependency itself, for tests that override it (the seed's way)

    DB = Annotated[AsyncSession, Depends(get_db, scope="function")]

    @app.post("/authors", status_code={status})
    async def create_author(body: AuthorIn, db: DB):
        author = Author(name=body.name)
        db.add(author)
        try:
            await db.flush()
        except IntegrityError:
            raise HTTPException(409, f"an author named {{body.name!r}} already exists") from None
        return {{"id": author.id, "name": author.name}}

    @app.post("/books", status_code=201)
    async def create_book(body: BookIn, db: DB):
        book = Book(title=body.title)
        db.add(book)
        await db.flush()  # the INSERT runs now; the request can still be refused below
        author = await db.scalar(select(Author).where(Author.name == body.author))
        if author is None:
            raise HTTPException(404, f"no author named {{body.author!r}}")
        book.author_id = author.id
        return {{"id": book.id, "title": book.title, "author": author.name}}

    @app.get("/authors")
    async def list_authors(db: DB):
{list_authors}
    @app.get("/authors/{{author_id}}")
    async def get_author(author_id: int, db: DB):
        author = await db.get(Author, author_id)
        if author is None:
            raise HTTPException(404, f"no author with id {{author_id}}")
        return {{"id": author.id, "name": author.name}}

    return app
"""

_GET_DB = """\
        async with make_session() as session:
            yield session
            await session.commit()
"""
_LIST_AUTHORS = """\
        stmt = select(Author).options(selectinload(Author.books)).order_by(Author.id)
        authors = (await db.scalars(stmt)).all()
        return [{"id": a.id, "name": a.name, "books": [b.title for b in a.books]} for a in authors]
"""
# slot -> text, per variant; a slot a variant does not name keeps the correct text
_SLOTS: dict[str, dict[str, str]] = {
    "correct": {},
    "wrong_status": {"status": "200"},
    "no_rollback": {
        "get_db": """\
        session = make_session()
        try:
            yield session
        finally:
            await session.commit()  # BUG: a refused request commits its half-write
            await session.close()
"""
    },
    "no_commit": {
        "get_db": """\
        async with make_session() as session:
            yield session  # BUG: never commits
"""
    },
    "n_plus_one": {
        "list_authors": """\
        authors = (await db.scalars(select(Author).order_by(Author.id))).all()
        out = []
        for author in authors:  # BUG: one SELECT per author
            books = await author.awaitable_attrs.books
            out.append({"id": author.id, "name": author.name, "books": [b.title for b in books]})
        return out
"""
    },
    "leak": {
        "get_db": """\
        if request.method == "GET":
            session = make_session()
            yield session  # BUG: "reads need no cleanup": never closed, its connection stays checked out
        else:
            async with make_session() as session:
                yield session
                await session.commit()
"""
    },
}
_DEFAULTS = {"get_db": _GET_DB, "status": "201", "list_authors": _LIST_AUTHORS}
_APP_FILE = "<library app>"  # not a file: nothing for inspect or linecache to read
_APP_MODULE = "library_app"  # not in sys.modules: inspect cannot find a loader to ask either


def _factory(variant: str) -> Callable[[str], FastAPI]:
    """The compiled `build(db_url)` of one variant; nothing in it names the variant."""
    slots = {**_DEFAULTS, **_SLOTS[variant]}
    for slot in ("get_db", "list_authors"):  # pad to the longest text so line numbers never differ
        longest = max(text.count("\n") for text in [_DEFAULTS[slot], *(s.get(slot, "") for s in _SLOTS.values())])
        slots[slot] += "\n" * (longest - slots[slot].count("\n"))
    namespace: dict[str, Any] = {
        "__name__": _APP_MODULE,
        "__builtins__": __builtins__,
        "asynccontextmanager": asynccontextmanager,
        "Annotated": Annotated,
        "Depends": Depends,
        "FastAPI": FastAPI,
        "HTTPException": HTTPException,
        "Request": Request,
        "AsyncSession": AsyncSession,
        "async_sessionmaker": async_sessionmaker,
        "create_async_engine": create_async_engine,
        "select": select,
        "selectinload": selectinload,
        "IntegrityError": IntegrityError,
        "Base": Base,
        "Author": Author,
        "Book": Book,
        "AuthorIn": AuthorIn,
        "BookIn": BookIn,
        "get_sessionmaker": get_sessionmaker,
    }
    exec(compile(_APP_SOURCE.format(**slots), _APP_FILE, "exec"), namespace)
    return namespace["build"]


def make_app(variant: str = "correct", url: str | None = None) -> FastAPI:
    """The library API. `url` defaults to the environment's DATABASE_URL."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    return _factory(variant)(url or os.environ["DATABASE_URL"])


def select_variant(name: str) -> None:
    """Called by the grader's child runner with the variant it read from stdin, before pytest starts
    and before any of the suite's code is imported (`autograder.checks.mutation`).

    From then on this process holds that variant only, as if a mutation tool had rewritten the
    source: `make_app` builds it whatever it is asked for and the other variants' recipes are gone,
    so a suite cannot build a correct app next to it and compare their code.
    """
    global make_app
    if name not in VARIANTS:
        raise ValueError(f"unknown variant {name!r}")
    build = _factory(name)  # the compiled app, which names no variant; `name` itself is not kept

    def make_app(variant: str = "correct", url: str | None = None) -> FastAPI:
        return build(url or os.environ["DATABASE_URL"])

    for recipe in ("_APP_SOURCE", "_GET_DB", "_LIST_AUTHORS", "_SLOTS", "_DEFAULTS", "_factory"):
        del globals()[recipe]


@pytest.fixture(params=[APP_PARAM_ID])
def app(request: pytest.FixtureRequest) -> FastAPI:
    """A fresh, unstarted library app (plugin use only). The one parameter, the same in every
    run, only marks the tests that use the app in pytest's report."""
    return make_app(url=os.environ["DATABASE_URL"])  # the variant under test, once select_variant ran


@dataclass
class PytestRun:
    exit_code: int
    output: str
    seconds: float

    def errors(self) -> list[str]:
        """The distinct `E   ...` lines pytest printed for failures, first seen first."""
        found = []
        for line in self.output.splitlines():
            match = re.match(r"^E\s+(\S.*)$", line)
            if match and match.group(1) not in found:
                found.append(match.group(1))
        return found

    def summary(self) -> str:
        lines = [line for line in self.output.splitlines() if re.search(r"\d+ (passed|failed|error)", line)]
        return lines[-1].strip("= ") if lines else f"exit code {self.exit_code}"


def run_pytest(folder: str | Path, *args: str, env: dict | None = None, timeout: float = 120) -> PytestRun:
    """pytest on `folder` in a child process (its own event loops, clean imports); plugins:
    pytest-asyncio only, plus any `-p` in `args`."""
    import time

    folder = Path(folder)
    child_env = {**os.environ, **(env or {}), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        str(folder),
        "-q",
        "-p",
        "pytest_asyncio.plugin",
        "-p",
        "no:cacheprovider",
        "--rootdir",
        str(folder),
        "--color=no",
        *args,
    ]
    if (folder / "pytest.ini").is_file():
        cmd += ["-c", str(folder / "pytest.ini")]
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=folder, env=child_env, capture_output=True, text=True, timeout=timeout)
    return PytestRun(proc.returncode, proc.stdout + proc.stderr, time.perf_counter() - started)
