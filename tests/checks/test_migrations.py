"""The migration checks pass a correct migration and reject each reviewer's catch."""

import pytest

from autograder.checks.migrations import MigrationRig, data_migrated, migration_roundtrip, schema_matches_models
from tests.apps.migrations import EXPECTED, QUERY, SEED, Base, revisions, status_revisions
from tests.checks.expect import rejected


@pytest.fixture
async def db_url(fresh_database):
    return fresh_database("mig")


def _data(db_url, revs):
    return data_migrated(db_url, revs, schema="chk_data", seed=SEED, query=QUERY, expected=EXPECTED)


def _roundtrip(db_url, revs):
    return migration_roundtrip(db_url, revs, schema="chk_round", seed=SEED)


# the correct migration -----------------------------------------------------------


async def test_the_correct_migration_passes_every_check(db_url):
    revs = revisions()
    v = await schema_matches_models(db_url, revs, Base.metadata, schema="chk_models")
    assert v, str(v)
    assert v.actual == "no difference between the schema and the models"
    v = await _roundtrip(db_url, revs)
    assert v, str(v)
    v = await _data(db_url, revs)
    assert v, str(v)
    assert "(1, 1250)" in v.actual


async def test_the_rig_leaves_no_schema_behind(db_url):
    async with MigrationRig(db_url, revisions(), schema="chk_rig") as rig:
        assert (await rig.upgrade("head")).ok
        assert await rig.current() == "0002"
        assert await rig.tables() == ["orders"]
        rows = await rig.fetch("SELECT count(*) AS n FROM pg_namespace WHERE nspname = 'chk_rig'")
        assert rows[0]["n"] == 1
    import asyncpg
    from sqlalchemy.engine import make_url

    from autograder.db.admin import asyncpg_params

    conn = await asyncpg.connect(**asyncpg_params(make_url(db_url)))
    try:
        assert await conn.fetchval("SELECT count(*) FROM pg_namespace WHERE nspname = 'chk_rig'") == 0
    finally:
        await conn.close()


async def test_dropping_the_column_also_drops_its_check_so_that_downgrade_is_fine(db_url):
    v = await _roundtrip(db_url, revisions(downgrade="implicit_constraint_drop"))
    assert v, str(v)


# schema_matches_models -------------------------------------------------------------


@pytest.mark.parametrize(
    ("upgrade", "actual", "hint", "sql"),
    [
        pytest.param(
            "no_not_null",
            "column orders.total_cents: the models say NOT NULL, the database has NULL allowed",
            "nullable=False",
            ["ALTER TABLE orders ADD COLUMN total_cents"],
            id="a missing NOT NULL",
        ),
        # caught although compare_metadata cannot see it
        pytest.param(
            "no_check",
            "CHECK constraint ck_orders_total_cents_nonnegative (total_cents >= 0)",
            "create_check_constraint",
            [],
            id="a missing CHECK constraint",
        ),
        pytest.param(
            "server_default",
            "column orders.total_cents: the models say no default, the database has DEFAULT",
            "server_default=None",
            [],
            id="a server default left in place",
        ),
    ],
)
async def test_schema_matches_models_names(db_url, upgrade, actual, hint, sql):
    v = await schema_matches_models(db_url, revisions(upgrade), Base.metadata, schema="chk_models")
    rejected(v, actual=[actual], hint=[hint], sql=sql)


async def test_an_upgrade_that_raises_is_reported_with_its_error(db_url):
    def broken() -> None:
        raise RuntimeError("half-written migration")

    revs = revisions()
    revs[-1] = type(revs[-1])("0002", "0001", broken, revs[-1].downgrade)
    v = await schema_matches_models(db_url, revs, Base.metadata, schema="chk_models")
    assert not v
    assert "the upgrade to head failed: RuntimeError: half-written migration" in v.actual


# data_migrated ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("upgrade", "actual", "hint", "sql"),
    [
        pytest.param(
            "leaves_nulls",
            "expected (3, 0), got (3, None)",
            "never filled",
            ["WHERE total > 0"],
            id="a backfill that leaves NULLs",
        ),
        pytest.param(
            "truncates", "expected (1, 1250), got (1, 1300)", "rounding and casts", [], id="a truncating backfill"
        ),
    ],
)
async def test_data_migrated_rejects(db_url, upgrade, actual, hint, sql):
    v = await _data(db_url, revisions(upgrade))
    rejected(v, actual=[actual], hint=[hint], sql=sql)


async def test_a_one_step_not_null_column_fails_on_real_rows(db_url):
    v = await _data(db_url, revisions("one_step"))
    assert not v
    assert "the upgrade to 0002 failed on these rows" in v.actual
    assert "NotNullViolationError" in v.actual
    assert "before setting NOT NULL" in v.hint
    # the same migration runs cleanly on an empty schema: why reviewing on real data matters
    v = await schema_matches_models(db_url, revisions("one_step"), Base.metadata, schema="chk_models")
    assert v, str(v)


async def test_a_constant_default_instead_of_a_backfill_is_rejected(db_url):
    v = await _data(db_url, revisions("server_default"))
    assert not v
    assert "expected (1, 1250), got (1, 0)" in v.actual


# migration_roundtrip ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("revs", "actual", "hint"),
    [
        pytest.param(
            {"downgrade": "forgets_column"},
            [
                "column orders.total_cents (INTEGER NOT NULL) is left over",
                "check constraint orders.ck_orders_total_cents_nonnegative",
            ],
            ["undo every operation"],
            id="a downgrade that forgets a column",
        ),
        pytest.param(
            {"downgrade": "irreversible"},
            [
                "column orders.total (NUMERIC(10, 2) NOT NULL) existed before the upgrade and is missing",
                "column orders.total_cents (INTEGER NOT NULL) is left over",
            ],
            [],
            id="a downgrade that does nothing",
        ),
        pytest.param(
            {"downgrade": "loses_amounts"},
            ["orders row id=1: total was Decimal('12.50'), after the downgrade Decimal('0.00')"],
            ["values back"],
            id="a downgrade that loses the amounts",
        ),
        pytest.param(
            {"upgrade": "one_step"},
            ["failed on a schema holding rows"],
            ["nullable, fill it, then set NOT NULL"],
            id="an upgrade failing on rows",
        ),
    ],
)
async def test_migration_roundtrip_rejects(db_url, revs, actual, hint):
    v = await _roundtrip(db_url, revisions(**revs))
    rejected(v, actual=actual, hint=hint)


async def test_an_enum_type_left_behind_is_rejected_and_dropping_it_passes(db_url):
    v = await migration_roundtrip(db_url, status_revisions("leaves_type"), schema="chk_enum", seed=SEED)
    assert not v
    assert "enum type order_status (new, paid) is left over" in v.actual
    assert "enum types" in v.hint
    v = await migration_roundtrip(db_url, status_revisions("correct"), schema="chk_enum", seed=SEED)
    assert v, str(v)
