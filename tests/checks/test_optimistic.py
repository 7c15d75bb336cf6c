import pytest

from autograder.checks import Call, Probe
from autograder.checks.optimistic import single_winner
from tests.apps.tracker import make_tracker_app

BURST = [Call.patch("/tickets/5", json={"title": f"edit {i}", "version": 1}) for i in range(20)]
STATE = {"version of ticket 5": ("SELECT version FROM tickets WHERE id = 5", 2)}


@pytest.fixture
def tracker(fresh_database):
    def make(variant: str) -> Probe:
        return Probe(make_tracker_app(fresh_database("opt"), variant=variant))

    return make


async def test_version_id_col_with_409_passes(tracker):
    async with tracker("correct") as probe:
        v = await single_winner(probe, BURST, state=STATE)
    assert v, str(v)
    assert "1× 200, 19× 409" in v.actual


async def test_no_version_check_lets_everyone_win(tracker):
    async with tracker("no_version_check") as probe:
        v = await single_winner(probe, BURST, state=STATE)
    assert not v
    assert "20× 200" in v.actual and "20 requests that all sent the same version were accepted" in v.actual
    assert "version of ticket 5: expected 2, the database has 1" in v.actual
    assert "was accepted" in v.actual  # the stale replay too
    assert "never compared" in v.hint and "version_id_col" in v.hint
    assert "UPDATE tickets SET title" in str(v)


async def test_version_compared_in_python_only_races(tracker):
    async with tracker("python_check_only") as probe:
        v = await single_winner(probe, BURST, state=STATE)
    assert not v
    assert "requests that all sent the same version were accepted" in v.actual
    assert "comparing the version in Python is not enough" in v.hint
    assert "WHERE id = :id AND version = :old" in v.hint


async def test_unhandled_stale_data_error_is_a_500(tracker):
    async with tracker("stale_500") as probe:
        v = await single_winner(probe, BURST, state=STATE)
    assert not v
    assert "failed with a 5xx (StaleDataError" in v.actual
    assert "catch `sqlalchemy.orm.exc.StaleDataError` and answer 409" in v.hint
