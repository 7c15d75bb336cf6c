"""A dashboard that runs three slow queries per request, with switchable mistakes.

`make_app(db_url, variant=...)`; each panel query sleeps 0.15 s in PostgreSQL so
that whether they overlap is measurable.

- "correct": asyncio.gather of three tasks, each with its own session
- "shared_gather": the get_db session first reads the user, then gathers the
  three panels on that same (already connected) session: no error, one connection,
  the queries queue one after another
- "fresh_shared_gather": gathers on a session that has not connected yet:
  InvalidRequestError ("provisioning a new connection"), a 500
- "sequential": one session per panel, but awaited one after another
- "partial": two panels gathered (own sessions), the third awaited afterwards
"""

from __future__ import annotations

import asyncio

from fastapi import Depends, FastAPI, Request
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from tests.apps.common import database_lifespan

VARIANTS = {"correct", "shared_gather", "fresh_shared_gather", "sequential", "partial"}
PANEL = text("SELECT pg_sleep(0.15), :panel AS panel")


def make_app(db_url: str, variant: str = "correct") -> FastAPI:
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}")

    app = FastAPI(lifespan=database_lifespan(db_url))

    async def get_db(request: Request):
        async with request.app.state.sessionmaker() as session:
            yield session

    async def panel(session: AsyncSession, name: str) -> str:
        return (await session.execute(PANEL, {"panel": name})).one().panel

    @app.get("/dashboard")
    async def dashboard(request: Request, db: AsyncSession = Depends(get_db)):
        Session = request.app.state.sessionmaker
        names = ("orders", "users", "stock")
        if variant == "shared_gather":
            await db.execute(text("SELECT 1"))  # the session now holds a connection
            panels = await asyncio.gather(*(panel(db, n) for n in names))  # BUG: one session
        elif variant == "fresh_shared_gather":
            panels = await asyncio.gather(*(panel(db, n) for n in names), return_exceptions=True)
            for p in panels:
                if isinstance(p, Exception):
                    raise p  # BUG: gather on a session that is still connecting
        elif variant == "sequential":
            panels = []
            for n in names:  # BUG: correct sessions, but no concurrency at all
                async with Session() as s:
                    panels.append(await panel(s, n))
        else:

            async def own_session(n: str) -> str:
                async with Session() as s:
                    return await panel(s, n)

            if variant == "partial":  # BUG: the last panel waits for the first two
                panels = [*await asyncio.gather(*(own_session(n) for n in names[:2])), await own_session(names[2])]
            else:
                panels = await asyncio.gather(*(own_session(n) for n in names))
        return {"panels": panels}

    return app
