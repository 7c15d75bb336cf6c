"""Check that a large export is streamed, not built in memory first.

A `StreamingResponse` over rows fetched with `.all()` looks like streaming but
holds the whole result in memory before the first byte goes out. The only
honest test is to measure: this check runs the request with `tracemalloc`
tracing every Python allocation and reports the peak.

The request is sent straight to the app's ASGI callable (with the lifespan
state the probe's driver holds) and each body chunk is counted and dropped:
an HTTP client would buffer the whole body, and that buffer would be measured
too.
"""

from __future__ import annotations

import asyncio
import gc
import time
import tracemalloc
from typing import Any
from urllib.parse import urlsplit

from autograder.checks.messages import Findings, app_error, check, verdict
from autograder.checks.probe import Call, Probe
from autograder.checks.verdict import Verdict


def _mb(n: float) -> str:
    return f"{n / 1e6:.1f} MB"


async def _send_and_drop(probe: Probe, call: Call) -> dict[str, Any]:
    """Run one GET-like request through the ASGI app; count the body, keep none of it."""
    lifespan = getattr(probe.driver, "_lifespan", None)
    app = getattr(lifespan, "app", None) or probe.app  # carries lifespan state into scope["state"]
    parts = urlsplit(call.url)
    params = call.kwargs.get("params") or {}
    query = parts.query or "&".join(f"{k}={v}" for k, v in params.items())
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": call.method,
        "scheme": "http",
        "path": parts.path,
        "raw_path": parts.path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"test")],
        "client": ("127.0.0.1", 50000),
        "server": ("test", 80),
    }
    out: dict[str, Any] = {"status": None, "bytes": 0, "chunks": 0, "lines": 0, "head": b"", "error": None}
    received = False

    async def receive() -> dict[str, Any]:
        nonlocal received
        if not received:
            received = True
            return {"type": "http.request", "body": b"", "more_body": False}
        # the client stays connected: Starlette listens for a disconnect while it
        # streams and would stop the stream at once if we reported one
        await asyncio.Event().wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            out["status"] = message["status"]
        elif message["type"] == "http.response.body":
            body = message.get("body", b"")
            if body:
                out["chunks"] += 1
                out["bytes"] += len(body)
                out["lines"] += body.count(b"\n")
                if len(out["head"]) < 200:
                    out["head"] += body[: 200 - len(out["head"])]

    try:
        await app(scope, receive, send)
    except Exception as exc:  # noqa: BLE001 - a crash is a failed export, reported as such
        out["error"] = exc
    return out


@check
async def streams_within_memory(
    probe: Probe, call: Call, *, max_peak_bytes: int, expect_lines: int | None = None
) -> Verdict:
    """`call` must answer 200 with (at least) `expect_lines` lines while the Python
    heap grows by no more than `max_peak_bytes` above what it was before."""
    obs = probe.observation
    if obs is None:
        raise RuntimeError("the probe is not started: use `async with Probe(app) as probe:`")
    sql_at = len(obs.sql.statements)
    gc.collect()
    started_tracing = not tracemalloc.is_tracing()
    if started_tracing:
        tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    t0 = time.perf_counter()
    try:
        out = await _send_and_drop(probe, call)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        if started_tracing:
            tracemalloc.stop()
    seconds = time.perf_counter() - t0
    sql = [s.sql for s in obs.sql.statements[sql_at:]]
    leaked = probe.pool.checked_out()
    expected = (
        f"{call} streams {expect_lines if expect_lines is not None else 'all'} lines while the "
        f"Python heap grows by at most {_mb(max_peak_bytes)}"
    )
    actual = (
        f"status {out['status']}, {out['lines']} lines in {out['chunks']} chunk(s) "
        f"({_mb(out['bytes'])}) in {seconds:.1f} s; peak memory {_mb(peak)} "
        f"(bound {_mb(max_peak_bytes)})"
    )
    if out["error"] is not None:
        actual += f"; the app raised {app_error(out['error'])}"
    found = Findings()
    if out["error"] is not None or out["status"] != 200:
        found.add("not a successful response", "the export must answer 200 and stream its body.")
    elif expect_lines is not None and out["lines"] < expect_lines:
        found.add("rows missing", f"every row must be exported: expected {expect_lines} lines, got {out['lines']}.")
    elif peak > max_peak_bytes:
        found.add(
            "too much memory",
            "the whole result was held in memory at once (`.all()`, `fetchall()`, a list, or one "
            "big string) before or while it was sent. Stream it: `result = await "
            "session.stream(stmt.execution_options(yield_per=N))`, then `async for rows in "
            "result.partitions():` and yield one chunk per partition.",
        )
    if leaked:
        actual += f"; {leaked} connection(s) still checked out afterwards"
        found.add(
            "connection leak",
            "the session used for streaming was not closed. Open it inside the generator "
            "with `async with SessionLocal() as session:` so it closes when the stream ends.",
        )
    return verdict(not found, expected, actual, [] if not found else sql, hint=found.hint)
