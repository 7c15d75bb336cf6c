"""A tiny library API (authors, books, users) with switchable mistakes ("mutants").

`make_app(db_url, variant=...)` builds a FastAPI app whose lifespan creates the
engine (kept in `app.state.engine`) and the tables. `variant` selects one known
mistake so that every check can be shown to reject it:

- "correct": `async with SessionLocal() as s: yield s; await s.commit()`
- "explicit_rollback": also correct: `except Exception: await s.rollback(); raise`
- "commit_in_finally": get_db commits in `finally`, even when the request failed
- "no_commit": get_db never commits
- "leak": get_db never closes the session
- "shared": one module-level session serves every request
- "commit_then_fail": POST /users commits, then raises (the row stays)
- "n_plus_one": GET /authors loads each author's books with awaitable_attrs in a loop
- "lazy_serialise": GET /authors/full returns books without eager-loading them
- "no_savepoint": POST /authors/bulk without begin_nested: one bad name loses all
- "commit_after_response": POST /users/deferred only adds (no flush) and get_db runs with
  FastAPI's default dependency scope, so the failing commit happens after the 201 was sent
"""

from __future__ import annotations

from fastapi import Depends, FastAPI, HTTPException, Request
from pydantic import BaseModel, ConfigDict
from sqlalchemy import CheckConstraint, ForeignKey, String, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncAttrs, AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, selectinload

from tests.apps.common import database_lifespan, schema

VARIANTS = {
    "correct",
    "explicit_rollback",
    "commit_in_finally",
    "no_commit",
    "leak",
    "shared",
    "commit_then_fail",
    "n_plus_one",
    "lazy_serialise",
    "no_savepoint",
    "commit_after_response",
}


class Base(AsyncAttrs, DeclarativeBase):
    pass


class Author(Base):
    __tablename__ = "authors"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
    books: Mapped[list[Book]] = relationship(back_populates="author")
    __table_args__ = (CheckConstraint("name <> ''", name="author_name_not_empty"),)


class Book(Base):
    __tablename__ = "books"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(100))
    author_id: Mapped[int] = mapped_column(ForeignKey("authors.id"))
    author: Mapped[Author] = relationship(back_populates="books")


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(100), unique=True)


class UserIn(BaseModel):
    email: str
    fail: bool = False


class BookOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    title: str


class AuthorOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    name: str
    books: list[BookOut]


def make_app(db_url: str, variant: str = "correct", seed_authors: int = 0, books_each: int = 2) -> FastAPI:
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}")

    async def add_authors(app: FastAPI):
        if seed_authors:
            async with app.state.sessionmaker() as s:
                for i in range(seed_authors):
                    s.add(Author(name=f"a{i}", books=[Book(title=f"b{i}.{j}") for j in range(books_each)]))
                await s.commit()

    async def close_shared_session(app: FastAPI):
        shared = getattr(app.state, "shared_session", None)
        if shared is not None:
            await shared.close()

    app = FastAPI(
        lifespan=database_lifespan(db_url, schema(Base.metadata), started=add_authors, stopping=close_shared_session)
    )

    async def get_db(request: Request):
        SessionLocal = request.app.state.sessionmaker
        if variant == "commit_in_finally":
            session = SessionLocal()
            try:
                yield session
            finally:
                await session.commit()  # BUG: commits a failed request too
                await session.close()
        elif variant == "no_commit":
            async with SessionLocal() as session:
                yield session  # BUG: never commits
        elif variant == "leak":
            session = SessionLocal()
            yield session  # BUG: never closed, its connection stays checked out
        elif variant == "shared":
            if getattr(request.app.state, "shared_session", None) is None:
                request.app.state.shared_session = SessionLocal()
            session = request.app.state.shared_session  # BUG: one session for everyone
            yield session
            await session.commit()
        elif variant == "explicit_rollback":
            async with SessionLocal() as session:
                try:
                    yield session
                    await session.commit()
                except Exception:  # FastAPI throws the route's HTTPException in here
                    await session.rollback()
                    raise
        else:
            async with SessionLocal() as session:
                yield session
                await session.commit()

    @app.post("/users", status_code=201)
    async def create_user(body: UserIn, session: AsyncSession = Depends(get_db)):
        session.add(User(email=body.email))
        await session.flush()
        if body.fail:
            if variant == "commit_then_fail":
                await session.commit()  # BUG: committed before deciding the request fails
            raise HTTPException(409, "refused")
        return {"email": body.email}

    # Nothing reaches the database until get_db commits; with FastAPI's default
    # ("request") scope that commit runs after the response was sent. The correct
    # app ends the dependency with the route (scope="function") so a failed commit is a 500.
    scope = "request" if variant == "commit_after_response" else "function"

    @app.post("/users/deferred", status_code=201)
    async def create_user_deferred(body: UserIn, session: AsyncSession = Depends(get_db, scope=scope)):
        session.add(User(email=body.email))
        return {"email": body.email}

    @app.get("/users")
    async def list_users(session: AsyncSession = Depends(get_db)):
        return [u.email for u in (await session.scalars(select(User).order_by(User.id)))]

    @app.get("/authors")
    async def list_authors(session: AsyncSession = Depends(get_db)):
        if variant == "n_plus_one":
            authors = (await session.scalars(select(Author).order_by(Author.id))).all()
            out = []
            for a in authors:  # BUG: one SELECT per author
                books = await a.awaitable_attrs.books
                out.append({"name": a.name, "books": [b.title for b in books]})
            return out
        stmt = select(Author).options(selectinload(Author.books)).order_by(Author.id)
        authors = (await session.scalars(stmt)).all()
        return [{"name": a.name, "books": [b.title for b in a.books]} for a in authors]

    @app.get("/authors/full", response_model=list[AuthorOut])
    async def list_authors_full(session: AsyncSession = Depends(get_db)):
        stmt = select(Author).order_by(Author.id)
        if variant != "lazy_serialise":
            stmt = stmt.options(selectinload(Author.books))
        return (await session.scalars(stmt)).all()  # BUG (lazy_serialise): books loaded while serialising

    @app.post("/authors/bulk")
    async def bulk_authors(names: list[str], session: AsyncSession = Depends(get_db)):
        saved = []
        if variant == "no_savepoint":
            try:
                for name in names:
                    session.add(Author(name=name))
                    await session.flush()  # BUG: no savepoint; one failure poisons the transaction
                    saved.append(name)
            except IntegrityError:
                await session.rollback()
                saved = []
            return {"saved": saved}
        for name in names:
            try:
                async with session.begin_nested():
                    session.add(Author(name=name))
            except IntegrityError:
                continue
            saved.append(name)
        return {"saved": saved}

    return app
