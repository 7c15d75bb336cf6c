from autograder.checks import Call, Probe
from autograder.checks.concurrency_safety import fans_out_concurrently
from tests.apps.fanout import make_app

DASHBOARD = Call.get("/dashboard")


async def verdict_for(fresh_database, variant):
    async with Probe(make_app(fresh_database("fan"), variant)) as probe:
        return await fans_out_concurrently(probe, DASHBOARD, queries=3, matching="pg_sleep")


async def test_one_session_per_task_overlaps(fresh_database):
    v = await verdict_for(fresh_database, "correct")
    assert v, str(v)
    assert "3 statements containing 'pg_sleep' on 3 connections ran concurrently" in v.actual


async def test_gather_on_a_connected_shared_session_is_rejected(fresh_database):
    v = await verdict_for(fresh_database, "shared_gather")
    assert not v
    assert "were started together but shared 1 connection(s), so they queued" in v.actual
    assert "connection A" in v.actual and "connection B" not in v.actual
    assert "one session per task" in v.hint
    assert "pg_sleep" in str(v)  # the SQL that ran is shown


async def test_gather_on_a_fresh_shared_session_is_rejected(fresh_database):
    v = await verdict_for(fresh_database, "fresh_shared_gather")
    assert not v
    assert "GET /dashboard -> 500 (InvalidRequestError: This session is provisioning" in v.actual
    assert "its own session" in v.hint


async def test_awaiting_one_after_another_is_rejected(fresh_database):
    v = await verdict_for(fresh_database, "sequential")
    assert not v
    assert "ran one after another, never all at once" in v.actual
    assert "asyncio.gather" in v.hint


async def test_a_query_left_out_of_the_gather_is_rejected(fresh_database):
    v = await verdict_for(fresh_database, "partial")
    assert not v
    assert "statement(s) 3 of the statements containing 'pg_sleep' ran alone" in v.actual
    assert "start every query before awaiting any of them" in v.hint
