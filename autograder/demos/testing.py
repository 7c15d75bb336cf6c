"""Demo machinery for lesson 09 (testing your own app), shared with its hidden tests.

- `make_app(variant=..., url=...)`: a small library API (authors and their books) whose
  lifespan creates the engine and the tables. `variant="correct"` is right; the other
  variants are the known-bad apps ("mutants") a good test suite must catch:

  * "wrong_status": POST /authors answers 200 instead of 201;
  * "no_rollback": get_db commits in `finally`, so a refused request keeps its half-write;
  * "no_commit":   get_db never commits, so nothing any request writes survives it;
  * "n_plus_one":  GET /authors loads each author's books with a query of its own;
  * "leak":        get_db never closes its session when the request fails, so the
                   connection stays checked out of the pool.

- `get_sessionmaker` is the dependency a test overrides to bind the app's sessions to the
  test's connection; the app's own `get_db` (commit, rollback, close) stays under test.
- the module is also a pytest plugin (`-p autograder.demos.testing`): with the environment
  variable `AUTOGRADER_VARIANTS=correct,n_plus_one,...` it provides an `app` fixture
  parametrized over those variants (each test runs once per variant; the variant is in the
  test id), and `DATABASE_URL` tells the app where the database is.
- `run_pytest(folder, ...)` runs pytest on a folder in a child process and returns the
  outcome of every test (from pytest's JUnit XML report).
"""

import os
import re
import subprocess
import sys
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import pytest

from fastapi import Depends, FastAPI, HTTPException, Request
from pydantic import BaseModel
from sqlalchemy import ForeignKey, String, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, selectinload

from autograder.checks.mutation import ENV_VARIANTS

__all__ = [
    "Base", "Author", "Book", "make_app", "get_sessionmaker", "VARIANTS", "MUTANTS", "HINTS",
    "PytestRun", "run_pytest", "app",
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


def make_app(variant: str = "correct", url: str | None = None) -> FastAPI:
    """The library API. `url` defaults to the environment's DATABASE_URL."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    db_url = url or os.environ["DATABASE_URL"]

    @asynccontextmanager
    async def lifespan(app: FastAPI):
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
        if variant == "no_rollback":
            session = make_session()
            try:
                yield session
            finally:
                await session.commit()  # BUG: a refused request commits its half-write
                await session.close()
        elif variant == "no_commit":
            async with make_session() as session:
                yield session  # BUG: never commits
        elif variant == "leak" and request.method == "GET":
            session = make_session()
            yield session  # BUG: "reads need no cleanup": never closed, its connection stays checked out
        else:
            async with make_session() as session:
                yield session
                await session.commit()

    app.state.get_db = get_db  # the dependency itself, for tests that override it (the seed's way)

    DB = Annotated[AsyncSession, Depends(get_db, scope="function")]

    @app.post("/authors", status_code=200 if variant == "wrong_status" else 201)
    async def create_author(body: AuthorIn, db: DB):
        author = Author(name=body.name)
        db.add(author)
        try:
            await db.flush()
        except IntegrityError:
            raise HTTPException(409, f"an author named {body.name!r} already exists") from None
        return {"id": author.id, "name": author.name}

    @app.post("/books", status_code=201)
    async def create_book(body: BookIn, db: DB):
        book = Book(title=body.title)
        db.add(book)
        await db.flush()  # the INSERT runs now; the request can still be refused below
        author = await db.scalar(select(Author).where(Author.name == body.author))
        if author is None:
            raise HTTPException(404, f"no author named {body.author!r}")
        book.author_id = author.id
        return {"id": book.id, "title": book.title, "author": author.name}

    @app.get("/authors")
    async def list_authors(db: DB):
        if variant == "n_plus_one":
            authors = (await db.scalars(select(Author).order_by(Author.id))).all()
            out = []
            for author in authors:  # BUG: one SELECT per author
                books = await author.awaitable_attrs.books
                out.append({"id": author.id, "name": author.name, "books": [b.title for b in books]})
            return out
        stmt = select(Author).options(selectinload(Author.books)).order_by(Author.id)
        authors = (await db.scalars(stmt)).all()
        return [{"id": a.id, "name": a.name, "books": [b.title for b in a.books]} for a in authors]

    @app.get("/authors/{author_id}")
    async def get_author(author_id: int, db: DB):
        author = await db.get(Author, author_id)
        if author is None:
            raise HTTPException(404, f"no author with id {author_id}")
        return {"id": author.id, "name": author.name}

    return app


def _variants_from_env() -> list[str]:
    # read once when pytest loads the plugin (before any conftest), then removed: the tests
    # under grading get their app from the fixture, not from the environment
    names = [v.strip() for v in os.environ.pop(ENV_VARIANTS, "correct").split(",") if v.strip()]
    return [v for v in names if v in VARIANTS] or ["correct"]


@pytest.fixture(params=_variants_from_env())
def app(request) -> FastAPI:
    """A fresh, unstarted library app; one test run per variant (plugin use only)."""
    return make_app(request.param)


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
    child_env = {**os.environ, **(env or {}), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
                 "PYTHONDONTWRITEBYTECODE": "1"}
    cmd = [sys.executable, "-m", "pytest", str(folder), "-q", "-p", "pytest_asyncio.plugin",
           "-p", "no:cacheprovider", "--rootdir", str(folder), "--color=no", *args]
    if (folder / "pytest.ini").is_file():
        cmd += ["-c", str(folder / "pytest.ini")]
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=folder, env=child_env, capture_output=True, text=True, timeout=timeout)
    return PytestRun(proc.returncode, proc.stdout + proc.stderr, time.perf_counter() - started)
