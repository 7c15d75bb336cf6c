"""An items API whose engine lifecycle has switchable mistakes ("mutants").

`make_factory(variant, import_url)` returns `create_app(database_url) -> FastAPI`.
The tables are created beforehand with `create_tables(url)`. `import_url` plays the role of
the settings a module reads when it is imported (only the import-time variants use it).

- "correct": engine + sessionmaker created in the lifespan and kept on app.state,
  `SELECT 1` at startup raising an error that names the database, dispose at shutdown
- "import_time_engine": the seed's pattern: one engine created when the module is
  imported, checked and disposed by every app's lifespan (all apps share it)
- "cached_engine": `lru_cache`d engine per URL: every app for one URL shares it
- "no_dispose": engine in the lifespan, never disposed
- "no_startup_probe": engine in the lifespan, nothing connects before the first request
- "raw_startup_error": `SELECT 1` at startup, the driver's error left as it is
- "password_in_error": the startup error shows the URL with its password
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from functools import lru_cache

from fastapi import Depends, FastAPI, Request
from pydantic import BaseModel
from sqlalchemy import String, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

VARIANTS = {
    "correct",
    "import_time_engine",
    "cached_engine",
    "no_dispose",
    "no_startup_probe",
    "raw_startup_error",
    "password_in_error",
}


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "items"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50))


class ItemIn(BaseModel):
    name: str


@lru_cache
def _cached_engine(url: str):
    return create_async_engine(url)


async def create_tables(url: str) -> None:
    """The schema exists before the app starts (migrations' job, not the lifespan's)."""
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
    finally:
        await engine.dispose()


def make_factory(variant: str = "correct", import_url: str | None = None):
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}")
    module_engine = create_async_engine(import_url) if variant == "import_time_engine" else None

    def create_app(database_url: str) -> FastAPI:
        @asynccontextmanager
        async def lifespan(app: FastAPI):
            if module_engine is not None:
                engine = module_engine  # BUG: one engine for every app the process builds
            elif variant == "cached_engine":
                engine = _cached_engine(database_url)  # BUG: same engine for the same URL
            else:
                engine = create_async_engine(database_url)
            app.state.engine = engine
            app.state.sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
            if variant == "raw_startup_error":
                async with engine.begin() as conn:  # BUG: the error does not say which database
                    await conn.execute(text("SELECT 1"))
            elif variant != "no_startup_probe":  # BUG (no_startup_probe): nothing connects yet
                try:
                    async with engine.connect() as conn:
                        await conn.execute(text("SELECT 1"))
                except (OSError, SQLAlchemyError) as exc:
                    await engine.dispose()
                    shown = engine.url.render_as_string(hide_password=variant != "password_in_error")
                    raise RuntimeError(f"cannot connect to the database at {shown}: {exc!r}") from exc
            try:
                yield
            finally:
                if variant != "no_dispose":  # BUG (no_dispose): the pool keeps its connections
                    await engine.dispose()

        app = FastAPI(lifespan=lifespan)

        async def get_db(request: Request):
            async with request.app.state.sessionmaker() as session:
                yield session
                await session.commit()

        @app.get("/items")
        async def list_items(session: AsyncSession = Depends(get_db, scope="function")):
            return [i.name for i in await session.scalars(select(Item).order_by(Item.id))]

        @app.post("/items", status_code=201)
        async def add_item(body: ItemIn, session: AsyncSession = Depends(get_db, scope="function")):
            session.add(Item(name=body.name))
            await session.flush()
            return {"name": body.name}

        return app

    return create_app
