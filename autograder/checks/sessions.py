"""Check that every request gets its own Session.

A module-level session works in a demo and corrupts data under load: two
requests share one identity map and one transaction. SessionWatch numbers each
Session object that did work; no number may appear in two requests.
"""

from __future__ import annotations

from autograder.checks.messages import check, verdict
from autograder.checks.probe import Call, Probe
from autograder.checks.verdict import Verdict


@check
async def session_per_request(probe: Probe, call: Call, times: int = 3) -> Verdict:
    exchanges = [await probe.request(call) for _ in range(times)]
    owner: dict[int, int] = {}  # session serial -> first request (1-based) that used it
    shared: list[str] = []
    idle = []
    for i, ex in enumerate(exchanges, 1):
        if not ex.sessions:
            idle.append(i)
        for serial in ex.sessions:
            if serial in owner and owner[serial] != i:
                shared.append(f"request {i} reused the session of request {owner[serial]}")
            owner.setdefault(serial, i)
    passed = not shared and not idle
    per_request = ", ".join(f"#{i}: {ex.sessions or '-'}" for i, ex in enumerate(exchanges, 1))
    problems = shared + [f"request {i} used no session" for i in idle]
    return verdict(
        passed,
        f"each of {times} × {call} uses its own new Session",
        ("; ".join(problems) + "; " if problems else "") + f"sessions by request: {per_request}",
        hint=""
        if not shared
        else (
            "create the session inside the dependency for each request "
            "(`async with SessionLocal() as session: yield session`), never at module level."
        ),
    )
