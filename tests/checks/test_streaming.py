from autograder.checks import Call, Probe
from autograder.checks.streaming import streams_within_memory
from tests.apps.export import make_app

ROWS = 50_000
EXPORT = Call.get("/export.csv")
BOUND = 4_000_000


async def verdict_for(fresh_database, variant):
    async with Probe(make_app(fresh_database("exp"), variant, rows=ROWS)) as probe:
        return await streams_within_memory(probe, EXPORT, max_peak_bytes=BOUND, expect_lines=ROWS + 1)


async def test_streamed_partitions_stay_small(fresh_database):
    v = await verdict_for(fresh_database, "correct")
    assert v, str(v)
    assert f"{ROWS + 1} lines" in v.actual and "(bound 4.0 MB)" in v.actual


async def test_streamed_row_by_row_also_passes(fresh_database):
    v = await verdict_for(fresh_database, "row_by_row")
    assert v, str(v)


async def test_all_then_stream_is_rejected_with_its_peak(fresh_database):
    v = await verdict_for(fresh_database, "all_then_stream")
    assert not v
    assert f"{ROWS + 1} lines" in v.actual  # the export itself was complete
    peak = float(v.actual.split("peak memory ")[1].split(" MB")[0])
    assert peak > BOUND / 1e6
    assert ".all()" in v.hint and "partitions()" in v.hint
    assert "FROM events" in str(v)


async def test_a_stream_from_a_never_closed_session_is_rejected(fresh_database):
    v = await verdict_for(fresh_database, "leak")
    assert not v
    assert "1 connection(s) still checked out afterwards" in v.actual
    assert "async with SessionLocal() as session" in v.hint
