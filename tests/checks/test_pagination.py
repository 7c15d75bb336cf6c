import pytest

from autograder.checks import Call
from autograder.checks.pagination import keyset_pages_stable
from tests.apps.tracker import DELETED_ID, make_tracker_app

INSERT = Call.post("/tickets", json={"title": "inserted meanwhile"})


@pytest.fixture
def tracker(probes):
    return probes(make_tracker_app, "trk")


async def walk(probe, **kw):
    return await keyset_pages_stable(
        probe, "/tickets", table="tickets", where="deleted_at IS NULL", limit=5, insert=INSERT, **kw
    )


async def test_keyset_listing_passes(tracker):
    async with tracker("correct") as probe:
        v = await walk(probe)
    assert v, str(v)
    assert "5 page(s) with 22 rows, 4 insert(s) in between" in v.actual


async def test_offset_cursor_repeats_rows_under_inserts(tracker):
    async with tracker("offset_cursor") as probe:
        v = await walk(probe)
    assert not v
    assert "rows listed twice: [19, 15, 11, 7, 2]" in v.actual
    assert "OFFSET counts rows" in v.hint and "WHERE id < :after ORDER BY id DESC" in v.hint
    assert "OFFSET" in str(v)  # the SQL of a page is shown


async def test_offset_cursor_is_fine_without_inserts(tracker):
    # the check's failure comes from the concurrent inserts, not from the offset itself
    async with tracker("offset_cursor") as probe:
        v = await keyset_pages_stable(probe, "/tickets", table="tickets", where="deleted_at IS NULL", limit=5)
    assert v, str(v)


async def test_count_per_page_is_over_budget(tracker):
    async with tracker("count_per_page") as probe:
        v = await walk(probe)
    assert not v
    assert "a page ran 2 SQL statements (budget 1)" in v.actual
    assert "SELECT count(*)" in str(v)


async def test_inclusive_cursor_repeats_the_boundary_row(tracker):
    async with tracker("inclusive_cursor") as probe:
        v = await keyset_pages_stable(probe, "/tickets", table="tickets", where="deleted_at IS NULL", limit=5)
    assert not v
    assert "rows listed twice" in v.actual
    assert "strictly less than" in v.hint


async def test_forgotten_soft_delete_filter_is_named(tracker):
    async with tracker("shows_deleted") as probe:
        v = await walk(probe)
    assert not v
    assert f"rows listed that must not be: [{DELETED_ID}]" in v.actual
    assert "with_loader_criteria" in v.hint and "do_orm_execute" in v.hint


async def test_lazy_related_rows_are_over_budget(tracker):
    async with tracker("lazy_project") as probe:
        v = await walk(probe)
    assert not v
    assert "a page ran 2 SQL statements (budget 1)" in v.actual
    assert "joinedload" in v.hint
    assert "FROM projects WHERE projects.id" in str(v)
