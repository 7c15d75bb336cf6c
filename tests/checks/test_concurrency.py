import pytest

from autograder.checks import Call
from autograder.checks.concurrency import random_transfers, run_transfer_storm, takes_row_lock, transfer_storm
from tests.apps.bank import make_bank_app
from tests.checks.expect import rejected

BALANCES = ("50.00", "30.00", "20.00", "10.00")
STORM = random_transfers(200, [1, 2, 3, 4], ["0.10", "0.25", "1.00", "5.00", "7.35", "20.00"], seed=7)
# 20 requests at once try to take 5.00 from account 3, which holds 20.00 (19.00 after DOWNHILL)
DRAIN = [{"from_id": 3, "to_id": 1, "amount": "5.00"}] * 20
# high id -> low id: a source-first lock takes 3 before 1
DOWNHILL = Call.post("/transfers", json={"from_id": 3, "to_id": 1, "amount": "1.00"})


@pytest.fixture
def bank(probes):
    return probes(make_bank_app, "bank", balances=BALANCES)


@pytest.mark.parametrize("variant", ["for_update", "atomic"])
async def test_transfer_storm_passes_a_locked_and_an_atomic_transfer(bank, variant):
    async with bank(variant) as probe:
        v = await transfer_storm(probe, STORM, concurrency=20)
    assert v, str(v)
    assert "total 110.00 -> 110.00" in v.actual and "× 409" in v.actual  # some overdrafts were refused


@pytest.mark.parametrize("variant", ["for_update", "atomic"])
async def test_takes_row_lock_passes_a_locked_and_an_atomic_transfer(bank, variant):
    async with bank(variant) as probe:
        ex = await probe.request(DOWNHILL)
    assert ex.status == 200
    v = takes_row_lock(ex)
    assert v, str(v)
    assert (
        "FOR UPDATE before the first UPDATE" if variant == "for_update" else "computing balance in the database"
    ) in v.actual


async def test_transfer_storm_rejects_read_modify_write(bank):
    async with bank("read_modify_write") as probe:
        v = await transfer_storm(probe, STORM, concurrency=20)
    assert not v
    text = str(v)
    assert "the total changed from 110.00 to" in text
    assert "differ from a serial replay" in text
    assert "lost updates" in v.hint and "with_for_update()" in v.hint
    assert "SELECT accounts.id" in text and "UPDATE accounts SET balance=$1" in text  # the SQL of one transfer


async def test_the_race_is_real_and_measurable(bank):
    # what the lesson's demonstration measures: one payer, same amount, so no lost write can cancel another
    payroll = [{"from_id": 1, "to_id": 2 + i % 3, "amount": "0.10"} for i in range(200)]
    async with bank("read_modify_write") as probe:
        result = await run_transfer_storm(probe, payroll, concurrency=20)
    assert result.statuses == {200: 200}
    assert result.lost_updates() > 0, result.table()
    assert result.drift[1] > 0 and all(result.drift[k] <= 0 for k in (2, 3, 4))


@pytest.mark.parametrize(
    ("variant", "actual", "hint", "shows"),
    [
        pytest.param(
            "read_modify_write",
            "value computed in Python, from a plain SELECT that took no lock",
            ["with_for_update()", "lost update"],
            ["UPDATE accounts SET balance=$1::NUMERIC(12, 2)"],
            id="read-modify-write",
        ),
        pytest.param(
            "unordered_lock",
            "locked one statement at a time in the order [3, 1]",
            ["40P01", "sorted by id"],
            [],
            id="locks taken source first",
        ),
    ],
)
async def test_takes_row_lock_rejects(bank, variant, actual, hint, shows):
    async with bank(variant) as probe:
        v = takes_row_lock(await probe.request(DOWNHILL))
    rejected(v, actual=[actual], hint=hint, shows=shows)


async def test_transfer_storm_rejects_float_money(bank):
    async with bank("float") as probe:
        v = await transfer_storm(probe, STORM, concurrency=20)
    assert not v
    assert "accounts.balance is stored as double precision" in v.actual
    assert "Numeric(12, 2)" in v.hint
    assert "E-" not in v.actual  # drift is printed in full, not in scientific notation


async def test_transfer_storm_rejects_locks_taken_source_first_and_stops_early(bank):
    # opposite transfers deadlock; the storm stops after 3 failures instead of waiting 1 s per deadlock
    opposite = [{"from_id": a, "to_id": b, "amount": "0.10"} for _ in range(40) for a, b in ((1, 2), (2, 1))]
    async with bank("unordered_lock") as probe:
        v = await transfer_storm(probe, opposite, concurrency=20)
    assert not v
    assert "failed with a 5xx" in v.actual and "deadlock detected" in v.actual
    assert "40P01" in v.hint and "lowest first" in v.hint


@pytest.mark.parametrize("variant", ["for_update", "atomic"])
async def test_transfer_storm_passes_a_drain_burst(bank, variant):
    async with bank(variant) as probe:
        v = await transfer_storm(probe, DRAIN, concurrency=20)
    assert v, str(v)
    assert "20 transfers" in v.expected and "× 409" in v.actual


async def test_transfer_storm_rejects_check_then_act(bank):
    async with bank("check_then_act") as probe:
        assert takes_row_lock(await probe.request(DOWNHILL))  # every UPDATE is atomic ...
        v = await transfer_storm(probe, DRAIN, concurrency=20)
    assert not v  # ... but the balance was checked on an unlocked read
    assert "negative balance(s)" in v.actual
    assert "balance >= :amount" in v.hint


async def test_transfer_storm_rejects_an_app_that_never_refuses(bank):
    async with bank("overdraft") as probe:
        v = await transfer_storm(probe, STORM, concurrency=20)
    assert not v
    assert "negative balance(s)" in v.actual and "× 409" not in v.actual


async def test_transfer_storm_rejects_an_app_that_refuses_everything(bank):
    everything_too_big = [{"from_id": 1, "to_id": 2, "amount": "1000.00"}] * 5
    async with bank("for_update") as probe:
        v = await transfer_storm(probe, everything_too_big, concurrency=5)
    assert not v
    assert "only 0 of 5 transfers were accepted" in v.actual
