"""A health endpoint, with switchable mistakes.

`make_app(db_url, variant=...)`; the lifespan never connects, so the app starts
even when `db_url` points nowhere.

- "correct": SELECT 1 under a timeout; 503 with the reason when it fails
- "reference_200": the reference skill's version: 200 {"status": "unhealthy"}
- "static": 200 without asking the database
- "unhandled": the error escapes, a bare 500
"""

from __future__ import annotations

import asyncio

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from tests.apps.common import database_lifespan

VARIANTS = {"correct", "reference_200", "static", "unhandled"}


def make_app(db_url: str, variant: str = "correct") -> FastAPI:
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}")

    app = FastAPI(lifespan=database_lifespan(db_url))  # never connects: the app starts when the database is down

    @app.get("/health")
    async def health(request: Request):
        engine = request.app.state.engine
        if variant == "static":
            return {"status": "healthy"}  # BUG: never asks the database
        if variant == "unhandled":
            async with engine.connect() as conn:  # BUG: a failure is a bare 500
                await conn.execute(text("SELECT 1"))
            return {"status": "healthy"}
        try:
            async with asyncio.timeout(2):
                async with engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
        except Exception as exc:  # noqa: BLE001 - any failure to reach the database is "unhealthy"
            body = {"status": "unhealthy", "reason": f"{type(exc).__name__}: {exc}"}
            if variant == "reference_200":
                return body  # BUG: 200 says healthy to every load balancer
            return JSONResponse(body, status_code=503)
        return {"status": "healthy"}

    return app
