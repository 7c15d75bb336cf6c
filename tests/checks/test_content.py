import pytest

from autograder.checks import Call, exact_queries, no_lazy_load
from autograder.checks.content import matches_database
from tests.apps.catalog import make_app

NESTED_SQL = """
    SELECT a.id, b.id, r.id FROM authors a
    LEFT JOIN books b ON b.author_id = a.id LEFT JOIN reviews r ON r.book_id = b.id
    WHERE a.id IN (SELECT id FROM authors ORDER BY id LIMIT $1)
"""
RECENT_SQL = "SELECT a.id, b.id FROM authors a JOIN books b ON b.author_id = a.id WHERE b.year >= $1"
LIST = Call.get("/authors", params={"limit": 5})
RECENT = Call.get("/authors/recent", params={"since": 2020})
WARM = Call.get("/authors/recent-warm", params={"since": 2020})


@pytest.fixture
def catalog(probes):
    return probes(make_app, "cat")


async def test_correct_catalog_passes_every_check(catalog):
    async with catalog("correct") as probe:
        ex = await probe.request(LIST)
        assert exact_queries(ex, 3) and no_lazy_load(ex)
        v = await matches_database(probe, ex, NESTED_SQL, 5, nested=("books", "reviews"), parent="author")
        assert v, str(v)
        assert "5 authors, all matching" in v.actual
        for call in (RECENT, WARM):
            ex = await probe.request(call)
            v = await matches_database(probe, ex, RECENT_SQL, 2020, parent="author")
            assert v, str(v)
        assert exact_queries(await probe.request(RECENT), 1)


async def test_n_plus_one_nested_listing_names_the_repeated_statement(catalog):
    async with catalog("n_plus_one") as probe:
        ex = await probe.request(LIST)
        assert await matches_database(probe, ex, NESTED_SQL, 5, nested=("books", "reviews"))
    v = exact_queries(ex, 3)
    assert not v and "Got:      21 statements" in str(v)  # 1 + 5 + 15
    assert "N+1: this statement ran 15 times: SELECT reviews." in v.hint


async def test_lazy_serialise_nested_is_named(catalog):
    async with catalog("lazy_serialise") as probe:
        ex = await probe.request(LIST)
        v = no_lazy_load(ex)
        assert not v and "Book.reviews was lazy-loaded" in v.actual
        m = await matches_database(probe, ex, NESTED_SQL, 5, nested=("books", "reviews"))
    assert not m and "the request failed" in m.actual and "500" in m.actual


async def test_filter_that_only_picks_parents_shows_extra_children(catalog):
    async with catalog("filter_parents_only") as probe:
        ex = await probe.request(RECENT)
        v = await matches_database(probe, ex, RECENT_SQL, 2020, parent="author")
    assert not v
    assert "with the wrong books: author " in v.actual and "extra books" in v.actual
    assert "missing" not in v.actual
    assert "contains_eager" in v.hint
    assert "SELECT books." in str(v)  # the SQL that ran is shown: the separate selectin query


async def test_stale_identity_map_without_populate_existing(catalog):
    async with catalog("no_populate_existing") as probe:
        cold = await matches_database(probe, await probe.request(RECENT), RECENT_SQL, 2020, parent="author")
        warm = await matches_database(probe, await probe.request(WARM), RECENT_SQL, 2020, parent="author")
    assert cold, "a fresh session has nothing stale: contains_eager alone is right"
    assert not warm and "extra books" in warm.actual
    assert "populate_existing=True" in warm.hint


async def test_outer_join_keeps_parents_without_a_match(catalog):
    async with catalog("outer_join") as probe:
        v = await matches_database(probe, await probe.request(RECENT), RECENT_SQL, 2020, parent="author")
    assert not v
    assert "in the response that the database query does not return" in v.actual
    assert "inner join keeps only parents with a matching child" in v.hint


async def test_limit_on_a_joined_query_cuts_rows_short(catalog):
    async with catalog("limit_on_join") as probe:
        v = await matches_database(probe, await probe.request(RECENT), RECENT_SQL, 2020, parent="author")
    assert not v and "missing from the response" in v.actual
    assert "LIMIT/OFFSET on a joined query counts joined rows" in v.hint


async def test_unexpected_shape_is_one_sentence(catalog):
    async with catalog("correct") as probe:
        ex = await probe.request(RECENT)
        v = await matches_database(probe, ex, NESTED_SQL, 5, nested=("books", "reviews"))
    assert not v and "has no list 'reviews'" in v.actual
    assert "each with a list 'books' whose items have 'id' and 'reviews'" in v.hint
