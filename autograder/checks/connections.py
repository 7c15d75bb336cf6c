"""Check that requests give their pool connections back.

The probe's PoolWatch keeps every checked-out connection alive until it is
checked in, so a session that is never closed cannot be quietly rescued by the
garbage collector: the connection stays checked out and is counted here.
"""

from __future__ import annotations

from autograder.checks.messages import check, outcome, verdict
from autograder.checks.probe import Call, Probe
from autograder.checks.verdict import Verdict


@check
async def no_connection_leak(probe: Probe, call: Call, times: int = 20) -> Verdict:
    baseline = probe.pool.checked_out()
    done = 0
    last = None
    for _ in range(times):
        last = await probe.request(call)
        done += 1
        if probe.pool.checked_out() > baseline:
            # Stop at the first leak: going on would exhaust the pool and hang
            # each further request for the pool timeout.
            break
    if last is None:
        raise ValueError("times must be at least 1")
    leaked = probe.pool.checked_out() - baseline
    passed = leaked <= 0
    return verdict(
        passed,
        f"after {times} × {call}, no connection is still checked out of the pool",
        (
            f"{done} request(s) ran, last {outcome(last)}; "
            f"{leaked if leaked > 0 else 0} connection(s) still checked out"
            + (" (stopped at the first leak)" if done < times else "")
        ),
        sql=[] if passed else last.sql,
        hint=(
            "a session was not closed, so its connection never went back to the pool. Open it with "
            "`async with SessionLocal() as session:` in get_db so it is closed even when the request fails."
        ),
    )
