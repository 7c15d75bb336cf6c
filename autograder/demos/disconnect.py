"""A client that leaves in the middle of a streamed response, for lesson 07.

An in-process HTTP client (httpx's ASGI transport) reads the whole body before it
returns, so it cannot go away half-way. This drives the ASGI app directly, as a
server would, and after `chunks` body messages the client is gone. How the app
learns it depends on the ASGI spec version the server announces (see Starlette's
`StreamingResponse.__call__`), so both are here:

- "2.4" and later: the next `send` fails with an `OSError`; Starlette raises
  `ClientDisconnect` and drops the body iterator, which the event loop then closes;
- older: Starlette also listens for `http.disconnect` and cancels the stream's task.

Either way the response's async generator ends at its `yield`, not at its last line.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["Departure", "leave_mid_stream"]


@dataclass
class Departure:
    chunks_received: int
    # What the app raised, as text: the exception itself would keep its traceback's frames, and
    # with them the response's generator, alive — and keep it from being closed.
    app_raised: str = ""


async def leave_mid_stream(app: Any, path: str, *, chunks: int = 2, spec: Literal["2.3", "2.4"] = "2.4") -> Departure:
    """GET `path` from `app`, read `chunks` body messages, then leave."""
    gone = asyncio.Event()
    received = 0
    request_sent = False

    async def receive() -> dict[str, Any]:
        nonlocal request_sent
        if not request_sent:
            request_sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal received
        if message["type"] != "http.response.body" or not message.get("body"):
            return
        if gone.is_set():
            raise OSError("the client closed the connection")
        received += 1
        if received >= chunks:
            gone.set()

    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": spec},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"demo")],
        "client": ("127.0.0.1", 50000),
        "server": ("demo", 80),
    }
    try:
        await app(scope, receive, send)
    except Exception as exc:  # noqa: BLE001 - what the app raised is part of what the demo shows
        return Departure(received, f"{type(exc).__name__}: {exc}")
    return Departure(received)
