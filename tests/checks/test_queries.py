import pytest

from autograder.checks import Call, exact_queries, max_queries
from autograder.checks.content import matches_database
from autograder.checks.messages import plural
from autograder.checks.queries import queries_bounded
from tests.apps.catalog import make_listing_app
from tests.checks.expect import rejected

LIST = Call.get("/authors")


async def test_selectinload_listing_is_exactly_two_statements(probe_for):
    async with probe_for("correct", seed_authors=5) as probe:
        ex = await probe.request(LIST)
    assert len(ex.response.json()) == 5
    assert exact_queries(ex, 2), str(exact_queries(ex, 2))
    assert max_queries(ex, 2)


async def test_max_queries_names_the_n_plus_one_statement(probe_for):
    async with probe_for("n_plus_one", seed_authors=5) as probe:
        ex = await probe.request(LIST)
    assert ex.status == 200
    v = max_queries(ex, 2)
    assert not v
    text = str(v)
    assert "Got:      6 statements" in text
    assert "N+1: this statement ran 5 times: SELECT books." in text
    assert "SQL that ran (6 statements):" in text and "  6. SELECT books." in text
    assert not exact_queries(ex, 2)


async def test_exact_queries_rejects_too_few(probe_for):
    async with probe_for("correct") as probe:
        ex = await probe.request(LIST)
    v = exact_queries(ex, 2)
    assert not v and "fewer statements" in v.hint  # no authors: the selectin query is skipped


# ------------------------------------------------------------------ queries_bounded: "no N+1", any strategy
# The lesson-06 listing (authors -> books -> reviews) written the ways a learner may write it. Each
# route is run at two sizes; the correct ones differ in how many statements they need, not in
# whether that number grows with the rows.
NESTED_SQL = """
    SELECT a.id, b.id, r.id FROM authors a
    LEFT JOIN books b ON b.author_id = a.id LEFT JOIN reviews r ON r.book_id = b.id
    WHERE a.id IN (SELECT id FROM authors ORDER BY id LIMIT $1)
"""
RECENT_SQL = "SELECT a.id, b.id FROM authors a JOIN books b ON b.author_id = a.id WHERE b.year >= $1"
SIZES = (3, 12)  # authors listed
SINCES = (2022, 2015)  # fewer matching books first
WHY = "one SELECT per level: authors, books, reviews"


@pytest.fixture
def listing(probes):
    return probes(make_listing_app, "qb")


async def listed(probe, sizes=SIZES):
    return [await probe.request(Call.get("/authors", params={"limit": n})) for n in sizes]


@pytest.mark.parametrize(
    ("variant", "statements"), [("selectin_chain", 3), ("selectin_joined", 2), ("joined_chain", 1)]
)
async def test_queries_bounded_passes_every_constant_strategy(listing, variant, statements):
    async with listing(variant) as probe:
        runs = await listed(probe)
        for ex, n in zip(runs, SIZES, strict=True):  # correct, not just cheap: the same tree as the database
            v = await matches_database(probe, ex, NESTED_SQL, n, nested=("books", "reviews"), parent="author")
            assert v, str(v)
    v = queries_bounded(runs, 3, why=WHY)
    assert v, str(v)
    assert v.actual == (
        f"GET /authors?limit=3 -> 200: {plural(statements, 'statement')}; "
        f"GET /authors?limit=12 -> 200: {plural(statements, 'statement')}"
    )
    assert bool(exact_queries(runs[0], 3)) == (statements == 3)  # the old rule rejected the other two


async def test_queries_bounded_rejects_lazy_loading_and_names_the_repeated_statement(listing):
    async with listing("lazy_loop") as probe:
        runs = await listed(probe)
    rejected(
        queries_bounded(runs, 3, why=WHY),
        actual=["GET /authors?limit=3 -> 200: 13 statements", "GET /authors?limit=12 -> 200: 49 statements"],
        hint=["N+1: this statement ran 36 times: SELECT reviews."],
        shows=["SQL that ran (49 statements):", "the SQL below is GET /authors?limit=12's"],
    )


async def test_queries_bounded_rejects_a_count_that_grows_without_repeating_its_text(listing):
    async with listing("query_per_author") as probe:
        runs = await listed(probe)
    rejected(
        queries_bounded(runs, 3, why=WHY),
        actual=["limit=3 -> 200: 6 statements", "limit=12 -> 200: 15 statements"],
        hint=["grew with the data (6 -> 15)", "once per row", f"at most 3 statements here ({WHY})"],
        sql=["WHERE author_id = 12"],
    )


async def test_queries_bounded_grades_growth_even_within_the_budget(listing):
    async with listing("query_per_author") as probe:
        runs = await listed(probe, sizes=(1, 2))  # 4 and 5 statements: under a budget of 9, still N+1
    rejected(queries_bounded(runs, 9), hint=["grew with the data (4 -> 5)"])


async def test_queries_bounded_rejects_a_constant_count_over_the_budget(listing):
    async with listing("extra_count") as probe:
        runs = await listed(probe)
    rejected(
        queries_bounded(runs, 3, why=WHY),
        actual=["limit=3 -> 200: 4 statements", "limit=12 -> 200: 4 statements"],
        hint=[f"a correct solution needs at most 3 statements here ({WHY})", "merged or avoided"],
    )


@pytest.mark.parametrize(("variant", "statements"), [("contains_eager", 1), ("selectin_filtered", 2)])
async def test_queries_bounded_passes_both_ways_of_filtering_a_collection(listing, variant, statements):
    async with listing(variant) as probe:
        runs = [await probe.request(Call.get("/authors/recent", params={"since": y})) for y in SINCES]
        for ex, since in zip(runs, SINCES, strict=True):
            v = await matches_database(probe, ex, RECENT_SQL, since, parent="author")
            assert v, str(v)
        warm = await probe.request(Call.get("/authors/recent-warm", params={"since": 2020}))
        v = await matches_database(probe, warm, RECENT_SQL, 2020, parent="author")
        assert v, str(v)
    assert [len(ex.statements) for ex in runs] == [statements, statements]
    assert queries_bounded(runs, 2)


async def test_queries_bounded_needs_two_sizes(listing):
    async with listing("selectin_chain") as probe:
        runs = await listed(probe, sizes=(3,))
    with pytest.raises(ValueError, match="two data sizes"):
        queries_bounded(runs, 3)


async def test_exact_queries_hint_for_too_few_allows_a_different_correct_way(listing):
    async with listing("joined_chain") as probe:
        (ex,) = await listed(probe, sizes=(3,))
    rejected(exact_queries(ex, 3), hint=["fewer statements", "part of the work is missing", "combined differently"])
