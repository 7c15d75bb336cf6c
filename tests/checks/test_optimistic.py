import pytest

from autograder.checks import Call
from autograder.checks.optimistic import single_winner
from tests.apps.tracker import make_tracker_app
from tests.checks.expect import rejected

BURST = [Call.patch("/tickets/5", json={"title": f"edit {i}", "version": 1}) for i in range(20)]
STATE = {"version of ticket 5": ("SELECT version FROM tickets WHERE id = 5", 2)}


@pytest.fixture
def tracker(probes):
    return probes(make_tracker_app, "opt")


async def test_version_id_col_with_409_passes(tracker):
    async with tracker("correct") as probe:
        v = await single_winner(probe, BURST, state=STATE)
    assert v, str(v)
    assert "1× 200, 19× 409" in v.actual


@pytest.mark.parametrize(
    ("variant", "actual", "hint", "shows"),
    [
        pytest.param(
            "no_version_check",
            [
                "20× 200",
                "20 requests that all sent the same version were accepted",
                "version of ticket 5: expected 2, the database has 1",
                "was accepted",
            ],  # the stale replay too
            ["never compared", "version_id_col"],
            ["UPDATE tickets SET title"],  # the SQL of the replayed request
            id="no version check lets everyone win",
        ),
        pytest.param(
            "python_check_only",
            ["requests that all sent the same version were accepted"],
            ["comparing the version in Python is not enough", "WHERE id = :id AND version = :old"],
            [],
            id="a version compared in Python only races",
        ),
        pytest.param(
            "stale_500",
            ["failed with a 5xx (StaleDataError"],
            ["catch `sqlalchemy.orm.exc.StaleDataError` and answer 409"],
            [],
            id="an unhandled StaleDataError is a 500",
        ),
    ],
)
async def test_single_winner_rejects(tracker, variant, actual, hint, shows):
    async with tracker(variant) as probe:
        v = await single_winner(probe, BURST, state=STATE)
    rejected(v, actual=actual, hint=hint, shows=shows)


@pytest.mark.parametrize("variant", ["python_check_only", "stale_500"])
async def test_held_writes_make_the_race_show_even_on_a_cold_pool(tracker, variant):
    # Each try is a fresh app with a cold pool, where the first request can finish before the
    # others connect: held writes make the overlap certain, so every try is caught.
    for _ in range(3):
        async with tracker(variant) as probe:
            v = await single_winner(probe, BURST, state=STATE, hold_writes_on="tickets", hold_seconds=0.2)
        assert not v, str(v)


async def test_held_writes_still_pass_a_correct_app_and_leave_no_trigger(tracker):
    async with tracker("correct") as probe:
        v = await single_winner(probe, BURST, state=STATE, hold_writes_on="tickets", hold_seconds=0.2)
        assert v, str(v)
        assert await probe.fetchval("SELECT count(*) FROM pg_trigger WHERE tgname = 'autograder_hold_write'") == 0
    assert "1× 200, 19× 409" in v.actual
