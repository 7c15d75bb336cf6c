import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from tests.apps.library import Author, Base, Book


@pytest.fixture
async def engine(fresh_database):
    """An async engine on a fresh database with the library tables and two authors."""
    eng = create_async_engine(fresh_database("obs"))
    async with eng.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    async with async_sessionmaker(eng)() as s:
        s.add_all([Author(name=f"a{i}", books=[Book(title=f"b{i}")]) for i in range(2)])
        await s.commit()
    yield eng
    await eng.dispose()


@pytest.fixture
def SessionLocal(engine):
    return async_sessionmaker(engine, expire_on_commit=False)
