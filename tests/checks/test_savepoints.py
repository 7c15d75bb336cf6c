import pytest

from autograder.checks import Call, Probe
from autograder.checks.savepoints import (
    batch_survives,
    expected_item_trace,
    nothing_kept,
    rows_exactly,
    savepoint_per_item,
    top_level_outcomes,
)
from autograder.demos.savepoints import uncommitted_insert
from tests.apps.imports import make_app
from tests.checks.expect import rejected


def item(sku, name="thing", price=100):
    return {"sku": sku, "name": name, "price_cents": price}


# index 1: negative price (23514), 3: name too long (22001), 4: duplicate of item 0 (23505)
BATCH = [item("A"), item("NEG", price=-5), item("B"), item("LONG", name="x" * 40), item("A"), item("C")]
BAD = {1, 3, 4}
GOOD_SKUS = {"A", "B", "C"}
IMPORT = Call.post("/imports", json={"label": "first", "items": BATCH})


@pytest.fixture
def app_for(fresh_database):
    urls = {}

    def make(variant="correct"):
        urls["url"] = fresh_database("sp")
        return Probe(make_app(urls["url"], variant=variant))

    make.url = lambda: urls["url"]
    return make


def test_expected_trace_and_outcomes():
    kinds = expected_item_trace(3, {1})
    assert kinds == ["BEGIN", "SAVEPOINT", "RELEASE", "SAVEPOINT", "ROLLBACK TO", "SAVEPOINT", "RELEASE", "COMMIT"]
    assert top_level_outcomes(kinds) == ["RELEASE", "ROLLBACK TO", "RELEASE"]
    nested = ["BEGIN", "SAVEPOINT", "SAVEPOINT", "ROLLBACK TO", "RELEASE", "SAVEPOINT", "COMMIT"]
    assert top_level_outcomes(nested) == ["RELEASE", "open"]


async def test_correct_import_passes_every_check(app_for):
    async with app_for("correct") as probe:
        ex = await probe.request(IMPORT)
        assert ex.status == 201, ex.response.text
        body = ex.response.json()
        assert body["imported"] == ["A", "B", "C"]
        assert [s["index"] for s in body["skipped"]] == [1, 3, 4]
        assert "too long" in body["skipped"][1]["reason"]
        v = savepoint_per_item(ex, n_items=len(BATCH), bad_indexes=BAD)
        assert v, str(v)
        v = batch_survives(ex)
        assert v, str(v)
        assert "6 savepoints, 3 rolled back (ROLLBACK TO), 3 released" in v.actual  # the trace, as evidence
        v = await rows_exactly(probe, "products", "sku", GOOD_SKUS)
        assert v, str(v)
        # the batch's own audit row fails: nothing of the batch is kept
        again = Call.post("/imports", json={"label": "first", "items": [item("D"), item("E")]})
        v = await nothing_kept(probe, again, tables=["products", "import_runs"])
        assert v, str(v)
        assert (await probe.request(again)).status == 409


async def test_correct_import_fails_whole_on_a_lock_timeout(app_for):
    async with app_for("correct") as probe:
        call = Call.post("/imports", json={"label": "locked", "items": [item("X"), item("HELD"), item("Y")]})
        async with uncommitted_insert(app_for.url(), "products", item("HELD") | {}):
            v = await nothing_kept(probe, call, tables=["products", "import_runs"])
    assert v, str(v)
    assert "-> 500" in v.actual and "lock timeout" in v.actual


async def test_savepoint_per_item_rejects_no_savepoint(app_for):
    async with app_for("no_savepoint") as probe:
        ex = await probe.request(IMPORT)
        rows = await rows_exactly(probe, "products", "sku", GOOD_SKUS)
    v = savepoint_per_item(ex, n_items=len(BATCH), bad_indexes=BAD)
    assert not v
    assert "no SAVEPOINT was used" in v.hint and "begin_nested" in v.hint
    assert "  ! 2 SAVEPOINT" in str(v)
    assert not rows
    # each rollback threw away the good rows before it: only those after the last bad item survive
    assert "missing ['B']" in rows.actual and "good items that were not committed" in rows.actual


async def test_savepoint_per_item_rejects_one_savepoint_for_all(app_for):
    async with app_for("one_savepoint") as probe:
        ex = await probe.request(IMPORT)
        rows = await rows_exactly(probe, "products", "sku", GOOD_SKUS)
    v = savepoint_per_item(ex, n_items=len(BATCH), bad_indexes=BAD)
    assert not v
    assert ex.tx_kinds() == ["BEGIN", "SAVEPOINT", "ROLLBACK TO", "COMMIT"]
    assert "one savepoint for the whole batch" in v.hint and "inside the loop" in v.hint
    assert not rows and "missing ['A', 'B', 'C']" in rows.actual


async def test_savepoint_per_item_rejects_commit_per_item(app_for):
    async with app_for("commit_per_item") as probe:
        ex = await probe.request(IMPORT)
    v = savepoint_per_item(ex, n_items=len(BATCH), bad_indexes=BAD)
    assert not v
    assert "COMMITs: committing per item" in v.hint
    assert "INSERT INTO products" in str(v)  # the SQL that ran is shown


@pytest.mark.parametrize(
    ("variant", "actual", "hint"),
    [
        pytest.param(
            "commit_per_item",
            ["-> 409", "products 4 rows (was 3)"],
            ["never per item"],
            id="commit per item when the batch fails",
        ),
        pytest.param(
            "audit_swallowed", ["-> 201", "import_runs 1 row (was 1)", "COMMIT"], [], id="a swallowed audit failure"
        ),
    ],
)
async def test_nothing_kept_rejects_a_label_used_twice(app_for, variant, actual, hint):
    async with app_for(variant) as probe:
        await probe.request(IMPORT)
        again = Call.post("/imports", json={"label": "first", "items": [item("D")]})
        v = await nothing_kept(probe, again, tables=["products", "import_runs"])
    rejected(v, actual=actual, hint=hint)


async def test_nothing_kept_rejects_except_pass_swallowing_a_lock_timeout(app_for):
    async with app_for("except_pass") as probe:
        # an ordinary batch looks right: the trace cannot tell the mutant apart ...
        ex = await probe.request(IMPORT)
        assert savepoint_per_item(ex, n_items=len(BATCH), bad_indexes=BAD)
        # ... a failure that is not about any item can
        call = Call.post("/imports", json={"label": "locked", "items": [item("X"), item("HELD"), item("Y")]})
        async with uncommitted_insert(app_for.url(), "products", item("HELD")):
            v = await nothing_kept(probe, call, tables=["products", "import_runs"], why="(the database is busy)")
    assert not v
    assert "-> 201" in v.actual and "products 5 rows (was 3)" in v.actual
    assert "the failure was swallowed" in v.hint and "SQLSTATE class 22" in v.hint
    assert "(the database is busy)" in v.expected


async def test_savepoint_per_item_names_misplaced_rollbacks(app_for):
    async with app_for("correct") as probe:
        ex = await probe.request(IMPORT)
    v = savepoint_per_item(ex, n_items=len(BATCH), bad_indexes={0, 1, 3, 4})
    assert not v
    assert "the good item(s) 4" not in v.hint
    assert "the bad item(s) 0 were released instead of rolled back" in v.hint


async def test_savepoint_per_item_rejects_a_failed_import(app_for):
    async with app_for("correct") as probe:
        call = Call.post("/imports", json={"label": "x", "items": [item("Q")]})
        await probe.request(call)
        ex = await probe.request(call)  # duplicate label -> 409
    v = savepoint_per_item(ex, n_items=1, bad_indexes={0})
    assert not v and "the import itself failed" in v.hint and "409" in v.hint


# ---------------------------------------------------------------- the outcome, whatever the technique


async def test_checking_items_first_passes_without_a_single_savepoint(app_for):
    async with app_for("validate_first") as probe:
        ex = await probe.request(IMPORT)
        body = ex.response.json()
        assert ex.status == 201, ex.response.text
        assert body["imported"] == ["A", "B", "C"] and [s["index"] for s in body["skipped"]] == [1, 3, 4]
        v = batch_survives(ex)
        assert v, str(v)
        assert "no savepoints" in v.actual and "the transaction: BEGIN, COMMIT" in v.actual
        v = await rows_exactly(probe, "products", "sku", GOOD_SKUS)
        assert v, str(v)
        # the stricter, form-level check would have refused this correct import
        assert not savepoint_per_item(ex, n_items=len(BATCH), bad_indexes=BAD)
        again = Call.post("/imports", json={"label": "first", "items": [item("D"), item("E")]})
        v = await nothing_kept(probe, again, tables=["products", "import_runs"])
        assert v, str(v)
        locked = Call.post("/imports", json={"label": "locked", "items": [item("X"), item("HELD"), item("Y")]})
        async with uncommitted_insert(app_for.url(), "products", item("HELD")):
            v = await nothing_kept(probe, locked, tables=["products", "import_runs"])
        assert v, str(v)
        assert "lock timeout" in v.actual


@pytest.mark.parametrize(
    ("variant", "actual", "hint"),
    [
        pytest.param(
            "no_savepoint",
            ["the transaction: BEGIN, ROLLBACK, BEGIN, ROLLBACK", "no savepoints"],
            ["rolled back during the import", "check the items before inserting", "begin_nested()"],
            id="a rollback of the session per bad item",
        ),
        pytest.param(
            "commit_per_item",
            ["-> 201", "COMMIT, BEGIN, COMMIT"],
            ["COMMITs: committing per item", "get_db commits once"],
            id="a commit per item",
        ),
    ],
)
async def test_batch_survives_rejects(app_for, variant, actual, hint):
    async with app_for(variant) as probe:
        ex = await probe.request(IMPORT)
    rejected(batch_survives(ex), actual=actual, hint=hint, shows=["INSERT INTO products"])


async def test_batch_survives_rejects_a_failed_import(app_for):
    async with app_for("validate_first") as probe:
        call = Call.post("/imports", json={"label": "x", "items": [item("Q")]})
        await probe.request(call)
        ex = await probe.request(call)  # duplicate label -> 409
    rejected(batch_survives(ex), actual=["-> 409"], hint=["the import itself failed", "record it as skipped"])


@pytest.mark.parametrize(
    ("variant", "actual"),
    [
        # one transaction, committed once: only the rows give these away
        pytest.param("one_savepoint", ["missing ['A', 'B', 'C']"], id="one savepoint around the loop"),
        pytest.param("truncating", ["unexpected ['LONG']", "should have been skipped"], id="a bad row repaired"),
    ],
)
async def test_rows_exactly_catches_what_the_transaction_cannot(app_for, variant, actual):
    async with app_for(variant) as probe:
        ex = await probe.request(IMPORT)
        assert batch_survives(ex)
        v = await rows_exactly(probe, "products", "sku", GOOD_SKUS)
    rejected(v, actual=actual, hint=["the good items must all be committed"])
