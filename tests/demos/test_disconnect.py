"""The client of lesson 07 that leaves mid-stream: the app learns it the way Starlette is told by a server."""

from __future__ import annotations

import asyncio

import pytest
from fastapi import FastAPI
from fastapi.responses import StreamingResponse

from autograder.demos.disconnect import leave_mid_stream


def _app(ended: list[str]) -> FastAPI:
    app = FastAPI()

    async def chunks():
        try:
            for n in range(10):
                yield f"chunk {n}\n"
                await asyncio.sleep(0)
            ended.append("completed")
        except BaseException as exc:
            ended.append(type(exc).__name__)
            raise

    app.get("/s")(lambda: StreamingResponse(chunks(), media_type="text/plain"))
    return app


@pytest.mark.parametrize(
    ("spec", "how_it_ends", "app_raised"),
    [
        ("2.4", "GeneratorExit", "ClientDisconnect"),  # send fails; Starlette drops the generator
        ("2.3", "CancelledError", ""),  # Starlette hears http.disconnect, cancels the stream
    ],
)
async def test_the_stream_stops_where_the_client_left(spec, how_it_ends, app_raised):
    ended: list[str] = []
    departure = await leave_mid_stream(_app(ended), "/s", chunks=2, spec=spec)
    await asyncio.sleep(0.05)  # a dropped generator is closed by the event loop
    assert departure.chunks_received == 2
    assert departure.app_raised.startswith(app_raised)
    assert ended == [how_it_ends]


async def test_a_client_that_stays_reads_everything():
    ended: list[str] = []
    departure = await leave_mid_stream(_app(ended), "/s", chunks=100)
    assert (departure.chunks_received, departure.app_raised, ended) == (10, "", ["completed"])
