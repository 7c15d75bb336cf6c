"""A catalog API (authors → books → reviews) with switchable loading mistakes.

`make_app(db_url, variant=..., authors=...)` builds a FastAPI app whose lifespan
creates the engine (`app.state.engine`), the tables and a deterministic seed:
every author has 3 books, every book 2 reviews; a book's year is
2000 + (7 * author + 5 * j) % 25, so "books since 2020" keeps some of an
author's books and drops others.

Routes:
- GET /authors?limit=N              authors with books with reviews (nested)
- GET /authors/recent?since=Y       authors with only their books of year >= Y
- GET /authors/recent-warm?since=Y  the same, after the session already loaded
                                    every author with all of its books

Variants ("mutants"), each a mistake a check must catch:
- "correct": selectinload(...).selectinload(...); contains_eager on the filtered
  join with populate_existing
- "n_plus_one": /authors walks `awaitable_attrs` in a loop (1 + N + 3N statements)
- "lazy_serialise": /authors eager-loads books but not reviews; the response
  model reads Book.reviews while serialising
- "filter_parents_only": /authors/recent joins and filters, but loads books
  with selectinload: the filter picks authors, the books are all of them
- "no_populate_existing": contains_eager without populate_existing: the warm
  route returns the stale, full collections from the identity map
- "outer_join": an outer join with the filter in ON keeps authors with no match
- "limit_on_join": contains_eager with LIMIT: the limit counts joined rows and
  cuts authors and books short

`make_listing_app(db_url, variant)` serves the same routes with other loading strategies
(LISTING_VARIANTS): correct ones in 1, 2 or 3 statements, and counts that grow with the data.
"""

from __future__ import annotations

from fastapi import Depends, FastAPI
from pydantic import BaseModel, ConfigDict
from sqlalchemy import ForeignKey, String, insert, select, text
from sqlalchemy.ext.asyncio import AsyncAttrs, AsyncSession
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    contains_eager,
    joinedload,
    mapped_column,
    relationship,
    selectinload,
)

from tests.apps.common import database_lifespan, get_db, schema

VARIANTS = {
    "correct",
    "n_plus_one",
    "lazy_serialise",
    "filter_parents_only",
    "no_populate_existing",
    "outer_join",
    "limit_on_join",
}
BOOKS_EACH, REVIEWS_EACH = 3, 2


class Base(AsyncAttrs, DeclarativeBase):
    pass


class Author(Base):
    __tablename__ = "authors"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
    books: Mapped[list[Book]] = relationship(back_populates="author", order_by="Book.id")


class Book(Base):
    __tablename__ = "books"
    id: Mapped[int] = mapped_column(primary_key=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("authors.id"))
    title: Mapped[str] = mapped_column(String(100))
    year: Mapped[int]
    author: Mapped[Author] = relationship(back_populates="books")
    reviews: Mapped[list[Review]] = relationship(order_by="Review.id")


class Review(Base):
    __tablename__ = "reviews"
    id: Mapped[int] = mapped_column(primary_key=True)
    book_id: Mapped[int] = mapped_column(ForeignKey("books.id"))
    stars: Mapped[int]


class ReviewOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    stars: int


class BookOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    title: str
    reviews: list[ReviewOut]


class AuthorOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    name: str
    books: list[BookOut]


class BookBrief(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    year: int


class AuthorRecent(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    books: list[BookBrief]


def year_of(author_id: int, j: int) -> int:
    return 2000 + (7 * author_id + 5 * j) % 25


async def seed(conn, authors: int) -> None:
    await conn.execute(insert(Author), [{"id": a, "name": f"Author {a}"} for a in range(1, authors + 1)])
    await conn.execute(
        insert(Book),
        [
            {"id": (a - 1) * BOOKS_EACH + j, "author_id": a, "title": f"Book {a}.{j}", "year": year_of(a, j)}
            for a in range(1, authors + 1)
            for j in range(1, BOOKS_EACH + 1)
        ],
    )
    await conn.execute(
        insert(Review),
        [
            {"id": (b - 1) * REVIEWS_EACH + k, "book_id": b, "stars": 1 + (b + k) % 5}
            for b in range(1, authors * BOOKS_EACH + 1)
            for k in range(1, REVIEWS_EACH + 1)
        ],
    )


def seeded_app(db_url: str, authors: int) -> FastAPI:
    """An app whose lifespan makes the catalog's tables and seeds `authors` authors."""

    async def seed_authors(conn):
        await seed(conn, authors)

    return FastAPI(lifespan=database_lifespan(db_url, schema(Base.metadata, seed=seed_authors)))


def make_app(db_url: str, variant: str = "correct", authors: int = 12) -> FastAPI:
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}")
    app = seeded_app(db_url, authors)

    DB = Depends(get_db, scope="function")

    @app.get("/authors", response_model=list[AuthorOut])
    async def list_authors(limit: int = 10, db: AsyncSession = DB):
        page = select(Author).order_by(Author.id).limit(limit)
        if variant == "n_plus_one":
            out = []
            for a in (await db.scalars(page)).all():  # BUG: 1 + N + 3N statements
                books = await a.awaitable_attrs.books
                out.append(
                    {
                        "id": a.id,
                        "name": a.name,
                        "books": [
                            {
                                "id": b.id,
                                "title": b.title,
                                "reviews": [{"id": r.id, "stars": r.stars} for r in await b.awaitable_attrs.reviews],
                            }
                            for b in books
                        ],
                    }
                )
            return out
        if variant == "lazy_serialise":
            page = page.options(selectinload(Author.books))  # BUG: reviews are read while serialising
        else:
            page = page.options(selectinload(Author.books).selectinload(Book.reviews))
        return (await db.scalars(page)).all()

    async def recent(db: AsyncSession, since: int) -> list[Author]:
        stmt = select(Author).order_by(Author.id, Book.id)
        if variant == "filter_parents_only":
            # BUG: the filter chooses authors; selectinload then loads all their books
            stmt = stmt.join(Author.books).where(Book.year >= since).options(selectinload(Author.books))
        elif variant == "outer_join":
            # BUG: keeps authors without a recent book (with an empty list)
            stmt = stmt.outerjoin(Author.books.and_(Book.year >= since)).options(contains_eager(Author.books))
        else:
            stmt = stmt.join(Author.books).where(Book.year >= since).options(contains_eager(Author.books))
            if variant == "limit_on_join":
                stmt = stmt.limit(5)  # BUG: five joined rows, not five authors
        if variant != "no_populate_existing":
            stmt = stmt.execution_options(populate_existing=True)
        return list((await db.scalars(stmt)).unique().all())

    @app.get("/authors/recent", response_model=list[AuthorRecent])
    async def recent_authors(since: int, db: AsyncSession = DB):
        return await recent(db, since)

    @app.get("/authors/recent-warm", response_model=list[AuthorRecent])
    async def recent_authors_warm(since: int, db: AsyncSession = DB):
        # the session now holds every author with all its books (the identity map keeps
        # objects only while they are referenced, so keep them)
        everyone = (await db.scalars(select(Author).options(selectinload(Author.books)))).all()
        found = await recent(db, since)
        assert len(everyone) >= len(found)
        return found

    return app


# Variants of make_listing_app: correct strategies that differ in statement count, and mistakes.
LISTING_VARIANTS = {
    "selectin_chain",  # 3 statements: authors, books, reviews
    "selectin_joined",  # 2: authors, then books joined with their reviews
    "joined_chain",  # 1: both collections joined, rows deduplicated
    "contains_eager",  # /authors/recent in 1: the filtered join, with populate_existing
    "selectin_filtered",  # /authors/recent in 2: the authors, then only their matching books
    "lazy_loop",  # BUG: awaitable_attrs per author and per book, 1 + N + 3N
    "query_per_author",  # BUG: one statement per author
    "extra_count",  # constant, but one statement more than the task needs
}


def make_listing_app(db_url: str, variant: str, authors: int = 12):
    """The same routes, each variant a different loading strategy (for `queries_bounded`):
    correct ones written other ways, and statement counts that grow with the data."""
    if variant not in LISTING_VARIANTS:
        raise ValueError(f"unknown variant {variant!r}")
    app = seeded_app(db_url, authors)
    DB = Depends(get_db, scope="function")

    @app.get("/authors", response_model=list[AuthorOut])
    async def list_authors(limit: int = 10, db: AsyncSession = DB):
        page = select(Author).order_by(Author.id).limit(limit)
        if variant == "joined_chain":  # 1 statement: both collections joined, rows deduplicated
            return (await db.scalars(page.options(joinedload(Author.books).joinedload(Book.reviews)))).unique().all()
        if variant == "selectin_joined":  # 2 statements: authors, then books joined with their reviews
            return (await db.scalars(page.options(selectinload(Author.books).joinedload(Book.reviews)))).all()
        if variant == "lazy_loop":  # BUG: awaitable_attrs per author and per book, 1 + N + 3N
            found = (await db.scalars(page)).all()
            for author in found:
                for book in await author.awaitable_attrs.books:
                    await book.awaitable_attrs.reviews
            return found
        found = (await db.scalars(page.options(selectinload(Author.books).selectinload(Book.reviews)))).all()
        if variant == "query_per_author":  # BUG: one statement per author, each with its own text
            for author in found:
                await db.execute(text(f"SELECT count(*) FROM books WHERE author_id = {author.id}"))
        if variant == "extra_count":  # constant, but one statement more than the task needs
            await db.scalar(select(Author.id).limit(1))
        return found

    async def recent(db: AsyncSession, since: int) -> list[Author]:
        if variant == "selectin_filtered":  # 2 statements: the authors, then only their matching books
            stmt = (
                select(Author)
                .where(Author.books.any(Book.year >= since))
                .order_by(Author.id)
                .options(selectinload(Author.books.and_(Book.year >= since)))
            )
            return list((await db.scalars(stmt.execution_options(populate_existing=True))).all())
        stmt = (
            select(Author)
            .join(Author.books)
            .where(Book.year >= since)
            .order_by(Author.id, Book.id)
            .options(contains_eager(Author.books))
        )
        return list((await db.scalars(stmt.execution_options(populate_existing=True))).unique().all())

    @app.get("/authors/recent", response_model=list[AuthorRecent])
    async def recent_authors(since: int, db: AsyncSession = DB):
        return await recent(db, since)

    @app.get("/authors/recent-warm", response_model=list[AuthorRecent])
    async def recent_authors_warm(since: int, db: AsyncSession = DB):
        everyone = (await db.scalars(select(Author).options(selectinload(Author.books)))).all()
        found = await recent(db, since)
        assert everyone  # referenced until now: the identity map keeps only referenced objects
        return found

    return app
