import pytest

from autograder.checks import Call, Probe
from autograder.checks.errors import (
    collide,
    maps_integrity_error,
    not_retried,
    retried_until_success,
    retries_bounded,
)
from tests.apps.errors import make_errors_app
from tests.checks.expect import rejected

TABLES = ["users", "audit_log"]
FIRST = Call.post("/users", json={"email": "a@x", "username": "a", "team_id": 1})
DUP_EMAIL = Call.post("/users", json={"email": "a@x", "username": "b", "team_id": 1})
NO_TEAM = Call.post("/users", json={"email": "c@x", "username": "c", "team_id": 99})
DUP_COUNTER = Call.post("/counters", json={"name": "c"})
BUMP = Call.post("/counters/c/bump")
CONFLICT = "UPDATE counters SET value = value + 100 WHERE name = 'c'"
VALUE = "SELECT value FROM counters WHERE name = 'c'"


@pytest.fixture
def app_for(probes):
    return probes(make_errors_app, "err")


async def test_maps_integrity_error_passes_the_correct_app(app_for):
    async with app_for("correct") as probe:
        assert (await probe.request(FIRST)).status == 201
        v = await maps_integrity_error(probe, DUP_EMAIL, status=409, field="email", tables=TABLES)
        assert v, str(v)
        v = await maps_integrity_error(probe, NO_TEAM, status=422, field="team_id", tables=TABLES)
        assert v, str(v)


async def test_maps_integrity_error_rejects_text_matching_on_a_foreign_key_violation(app_for):
    async with app_for("text_match") as probe:
        assert (await probe.request(FIRST)).status == 201
        # the duplicate happens to come out right ...
        assert await maps_integrity_error(probe, DUP_EMAIL, status=409, field="email", tables=TABLES)
        # ... the unknown team does not: "constraint" is in every message, "email" is in the SQL
        v = await maps_integrity_error(probe, NO_TEAM, status=422, field="team_id", tables=TABLES)
    assert not v
    text = str(v)
    assert "-> 409" in v.actual and '"field":"email"' in v.actual
    assert "Read the SQLSTATE, not the message" in v.hint and "23503" in v.hint
    assert "INSERT INTO users" in text  # the SQL that ran


async def test_maps_integrity_error_rejects_a_session_not_rolled_back(app_for):
    async with app_for("no_rollback") as probe:
        assert (await probe.request(FIRST)).status == 201
        v = await maps_integrity_error(probe, DUP_EMAIL, status=409, field="email", tables=TABLES)
    assert not v
    assert "-> 500 (PendingRollbackError" in v.actual
    assert "PendingRollbackError" in v.hint and "session.rollback()" in v.hint


async def test_not_retried_passes_the_correct_app_and_rejects_retrying_everything(app_for):
    async with app_for("correct") as probe:
        v = await not_retried(probe, DUP_COUNTER, table="counters")
    assert v, str(v)
    assert "sent 1 time(s)" in v.actual
    async with app_for("retry_everything") as probe:
        v = await not_retried(probe, DUP_COUNTER, table="counters")
    assert not v
    assert "sent 4 time(s) in 4 transaction(s)" in v.actual
    assert "40001" in v.hint and "re-raise everything else" in v.hint
    assert str(v).count("INSERT INTO counters") == 4


@pytest.mark.parametrize("conflicts", [1, 2])
async def test_retried_until_success_passes_the_correct_app(app_for, conflicts):
    async with app_for("correct") as probe:
        v = await retried_until_success(
            probe, BUMP, conflict_sql=CONFLICT, state_sql=VALUE, expected=lambda n: 100 * n + 1, conflicts=conflicts
        )
    assert v, str(v)
    assert f"blocked {conflicts} time(s)" in v.actual and f"final value {100 * conflicts + 1}" in v.actual
    assert v.actual.count("ROLLBACK") == conflicts


@pytest.mark.parametrize(
    ("variant", "actual", "hint", "shows"),
    [
        pytest.param(
            "single_statement",
            ["-> 500", "final value 100"],
            ["NEW session", "whole unit of work"],
            ["UPDATE counters SET value"],
            id="a retry around one statement",
        ),
        pytest.param("no_retry", ["-> 503", "transactions: BEGIN, ROLLBACK"], ["was not run again"], [], id="no retry"),
    ],
)
async def test_retried_until_success_rejects(app_for, variant, actual, hint, shows):
    async with app_for(variant) as probe:
        v = await retried_until_success(
            probe, BUMP, conflict_sql=CONFLICT, state_sql=VALUE, expected=lambda n: 100 * n + 1
        )
    rejected(v, actual=actual, hint=hint, shows=shows)


async def test_retries_bounded_passes_the_correct_app(app_for):
    async with app_for("correct") as probe:
        v = await retries_bounded(probe, BUMP, conflict_sql=CONFLICT, max_attempts=5)
    assert v, str(v)
    assert "-> 503" in v.actual and "after 4 attempt(s)" in v.actual


@pytest.mark.parametrize(
    ("variant", "actual", "hint"),
    [
        pytest.param(
            "unbounded",
            ["after 9 attempt(s)", "-> 200"],
            ["made 9 attempts and stopped only because the test stopped conflicting after 8", "bounded number"],
            id="an unbounded retry",
        ),
        pytest.param("no_retry", ["after 1 attempt(s)"], ["at least once"], id="no retry"),
    ],
)
async def test_retries_bounded_rejects(app_for, variant, actual, hint):
    async with app_for(variant) as probe:
        v = await retries_bounded(probe, BUMP, conflict_sql=CONFLICT, max_attempts=5)
    rejected(v, actual=actual, hint=hint)


async def test_collide_leaves_a_plain_read_unblocked(fresh_database):
    # an action that never touches the row: no block, the conflict is rolled back, not committed
    import asyncio

    url = fresh_database("col")
    async with Probe(make_errors_app(url)) as probe:
        col = await collide(url, CONFLICT, asyncio.sleep(0.05, result="done"), wait=0.5)
        assert (col.result, col.blocked, col.committed) == ("done", 0, 0)
        assert await probe.fetchval(VALUE) == 0
