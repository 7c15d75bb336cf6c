"""What the test apps share: their lifespan and the correct session dependency (their mutants live elsewhere).

`database_lifespan(db_url, setup)` is every app's lifespan: it creates the engine and a
sessionmaker on `app.state`, runs `setup(conn)` (schema, seed rows) in one transaction at
startup, and disposes the engine at shutdown. `schema(metadata, fresh=..., seed=...)`
builds the usual `setup`.

`get_db` opens one session per request from `app.state.sessionmaker`, commits once the
route succeeded and before the response is sent (scope="function"), and closing rolls
back otherwise.
"""

from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker, create_async_engine

Setup = Callable[[AsyncConnection], Awaitable[Any]]
Hook = Callable[[FastAPI], Awaitable[Any]]


def database_lifespan(
    db_url: str,
    setup: Setup | None = None,
    *,
    started: Hook | None = None,
    stopping: Hook | None = None,
    **engine_options: Any,
):
    """A lifespan with `app.state.engine` and `app.state.sessionmaker`; `started(app)` runs after
    `setup`, `stopping(app)` before the engine is disposed."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        engine = create_async_engine(db_url, **engine_options)
        app.state.engine = engine
        app.state.sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
        if setup is not None:
            async with engine.begin() as conn:
                await setup(conn)
        if started is not None:
            await started(app)
        yield
        if stopping is not None:
            await stopping(app)
        await engine.dispose()

    return lifespan


def schema(metadata: MetaData, *, fresh: bool = False, seed: Setup | None = None) -> Setup:
    """A `setup` that creates `metadata`'s tables (dropped first when `fresh`), then runs `seed(conn)`."""

    async def setup(conn: AsyncConnection) -> None:
        if fresh:
            await conn.run_sync(metadata.drop_all)
        await conn.run_sync(metadata.create_all)
        if seed is not None:
            await seed(conn)

    return setup


async def get_db(request: Request):
    async with request.app.state.sessionmaker() as session:
        yield session
        await session.commit()


DB = Annotated[AsyncSession, Depends(get_db, scope="function")]
