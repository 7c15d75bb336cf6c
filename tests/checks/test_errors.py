import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from autograder.checks import Call, Probe
from autograder.checks.errors import (
    collide,
    french_messages,
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
BLANK = Call.post("/users", json={"email": "d@x", "username": "  ", "team_id": 1})
# (the call, the status, the field) for a unique, a foreign-key and a check violation
VIOLATIONS = [(DUP_EMAIL, 409, "email"), (NO_TEAM, 422, "team_id"), (BLANK, 422, "username")]
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


async def verdicts(probe, messages):
    """maps_integrity_error's verdict on each of VIOLATIONS, with PostgreSQL speaking `messages`."""
    return [
        await maps_integrity_error(probe, call, status=status, field=field, tables=TABLES, messages=messages)
        for call, status, field in VIOLATIONS
    ]


@pytest.mark.parametrize("variant", ["correct", "asyncpg_classes", "constraint_names"])
async def test_maps_integrity_error_in_french_passes_handlers_that_read_the_error_fields(app_for, variant):
    async with app_for(variant) as probe:
        assert (await probe.request(FIRST)).status == 201
        english = await verdicts(probe, "english")
        french = await verdicts(probe, "french")
    for v in english + french:
        assert v, str(v)
    assert 'PostgreSQL said: 23505 "la valeur d\'une clé dupliquée rompt la contrainte unique « uq_users_email »"' in (
        french[0].actual
    )
    assert "in French" in french[0].expected
    assert "duplicate key value violates unique constraint" in english[0].actual


async def test_maps_integrity_error_in_french_rejects_english_words(app_for):
    async with app_for("english_words") as probe:
        assert (await probe.request(FIRST)).status == 201
        # full marks on an English server: the loophole the French run closes
        assert all(await verdicts(probe, "english"))
        french = await verdicts(probe, "french")
    for v in french:
        rejected(v, actual=["-> 500", "PostgreSQL said: 23"], hint=["answered in French", "exc.orig.sqlstate"])
    assert "23503" in french[1].actual and "viole la contrainte de clé étrangère" in french[1].actual


async def test_maps_integrity_error_in_french_rejects_text_matching_even_on_the_duplicate(app_for):
    async with app_for("text_match") as probe:
        assert (await probe.request(FIRST)).status == 201
        assert await maps_integrity_error(probe, DUP_EMAIL, status=409, field="email", tables=TABLES)
        v = await maps_integrity_error(probe, DUP_EMAIL, status=409, field="email", tables=TABLES, messages="french")
    rejected(v, actual=["-> 400"], hint=["answered in French", "constraint_name"])


async def test_french_messages_keep_the_error_fields_and_let_good_rows_in(app_for):
    async with app_for("correct") as probe, french_messages(probe.engine, ["users", "audit_log"]):
        assert (await probe.request(FIRST)).status == 201  # a good row is inserted once
        assert await probe.count_rows("users") == 1
        async with probe.engine.connect() as conn:
            with pytest.raises(IntegrityError) as caught:
                await conn.execute(text("INSERT INTO users (email, username, team_id) VALUES (NULL, 'n', 1)"))
    orig = caught.value.orig
    driver = orig.driver_exception
    assert (orig.sqlstate, type(driver), driver.column_name, driver.constraint_name, driver.table_name) == (
        "23502",
        asyncpg.NotNullViolationError,
        "email",
        None,
        "users",
    )
    assert (
        str(orig) == "une valeur NULL viole la contrainte NOT NULL de la colonne « email » dans la relation « users »"
    )
    assert driver.detail.startswith("La ligne en échec contient (")


async def test_french_messages_are_gone_afterwards(app_for):
    async with app_for("correct") as probe:
        assert (await probe.request(FIRST)).status == 201
        await maps_integrity_error(probe, DUP_EMAIL, status=409, field="email", tables=TABLES, messages="french")
        v = await maps_integrity_error(probe, DUP_EMAIL, status=409, field="email", tables=TABLES)
        assert await probe.fetchval("SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal") == 0
    assert "duplicate key value violates unique constraint" in v.actual


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
