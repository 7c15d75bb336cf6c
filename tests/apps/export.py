"""A CSV export of a large table, with switchable mistakes.

`make_app(db_url, variant=..., rows=...)` seeds `events` with `rows` rows.

- "correct": the generator opens its own session and streams partitions
  (`session.stream(... yield_per=1000)`, one chunk per partition)
- "row_by_row": also correct, one chunk per row (slow but small)
- "all_then_stream": fetches `.all()` first, then wraps the list in a StreamingResponse
- "leak": streams correctly from a session that is never closed
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import column, select, table, text

from tests.apps.common import database_lifespan

VARIANTS = {"correct", "row_by_row", "all_then_stream", "leak"}
events = table("events", column("id"), column("kind"), column("payload"))
QUERY = select(events.c.id, events.c.kind, events.c.payload).order_by(events.c.id)


def make_app(db_url: str, variant: str = "correct", rows: int = 50_000) -> FastAPI:
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}")

    async def events(conn):
        await conn.execute(text("CREATE TABLE IF NOT EXISTS events (id serial PRIMARY KEY, kind text, payload text)"))
        if not await conn.scalar(text("SELECT count(*) FROM events")):
            await conn.execute(
                text(
                    "INSERT INTO events (kind, payload) SELECT 'k' || (g % 7), "
                    "md5(g::text) FROM generate_series(1, :n) g"
                ),
                {"n": rows},
            )

    app = FastAPI(lifespan=database_lifespan(db_url, events))

    @app.get("/export.csv")
    async def export(request: Request):
        Session = request.app.state.sessionmaker
        stmt = QUERY.execution_options(yield_per=1000)

        if variant == "all_then_stream":
            async with Session() as s:
                everything = (await s.execute(QUERY)).all()  # BUG: the whole table in memory

            async def lines():
                yield "id,kind,payload\n"
                for r in everything:
                    yield f"{r.id},{r.kind},{r.payload}\n"

            return StreamingResponse(lines(), media_type="text/csv")

        async def body():
            yield "id,kind,payload\n"
            if variant == "leak":
                s = Session()  # BUG: never closed
                result = await s.stream(stmt)
                async for part in result.partitions():
                    yield "".join(f"{r.id},{r.kind},{r.payload}\n" for r in part)
                return
            async with Session() as s:
                result = await s.stream(stmt)
                if variant == "row_by_row":
                    async for r in result:
                        yield f"{r.id},{r.kind},{r.payload}\n"
                else:
                    async for part in result.partitions():
                        yield "".join(f"{r.id},{r.kind},{r.payload}\n" for r in part)

        return StreamingResponse(body(), media_type="text/csv")

    return app
