import pytest
from sqlalchemy import select
from sqlalchemy.exc import MissingGreenlet
from sqlalchemy.orm import selectinload
from sqlalchemy.orm.exc import DetachedInstanceError

from autograder.observe.loads import LazyLoadWatch, lazy_load_named_by
from tests.apps.library import Author, Book


async def test_awaitable_attrs_lazy_loads_are_named(SessionLocal):
    with LazyLoadWatch() as watch:
        async with SessionLocal() as s:
            for a in (await s.scalars(select(Author))).all():
                await a.awaitable_attrs.books
    assert watch.attributes() == ["Author.books", "Author.books"]


async def test_a_lazy_load_that_fails_with_missing_greenlet_is_recorded(SessionLocal):
    with LazyLoadWatch() as watch:
        async with SessionLocal() as s:
            book = (await s.scalars(select(Book).limit(1))).one()
            s.expunge_all()
            s.add(book)
            s.expire(book, ["author"])
            with pytest.raises(MissingGreenlet) as info:
                _ = book.author
    assert watch.attributes() == ["Book.author"]
    assert lazy_load_named_by(info.value) == "Book.author"


async def test_eager_loads_are_not_lazy_loads(SessionLocal):
    with LazyLoadWatch() as watch:
        async with SessionLocal() as s:
            authors = (await s.scalars(select(Author).options(selectinload(Author.books)))).all()
            assert all(a.books for a in authors)
    assert watch.loads == []


async def test_detached_instance_error_is_named(SessionLocal):
    async with SessionLocal() as s:
        author = (await s.scalars(select(Author).limit(1))).one()
    with pytest.raises(DetachedInstanceError) as info:
        _ = author.books
    assert lazy_load_named_by(info.value) == "Author.books"
    assert lazy_load_named_by(ValueError("x")) is None
