from autograder.checks import Call, exact_queries, max_queries

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
