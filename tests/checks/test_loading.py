from autograder.checks import Call, no_lazy_load


async def test_eager_loaded_response_passes(probe_for):
    async with probe_for("correct", seed_authors=3) as probe:
        ex = await probe.request(Call.get("/authors/full"))
    assert ex.status == 200 and ex.response.json()[0]["books"]
    assert no_lazy_load(ex), str(no_lazy_load(ex))


async def test_lazy_load_while_serialising_is_named(probe_for):
    async with probe_for("lazy_serialise", seed_authors=3) as probe:
        ex = await probe.request(Call.get("/authors/full"))
    assert ex.status == 500
    v = no_lazy_load(ex)
    assert not v
    assert "Author.books was lazy-loaded" in v.actual
    assert "MissingGreenlet" in v.actual or "DetachedInstanceError" in v.actual
    assert "selectinload(Author.books)" in v.hint


async def test_awaitable_attrs_in_a_loop_is_a_lazy_load(probe_for):
    async with probe_for("n_plus_one", seed_authors=3) as probe:
        ex = await probe.request(Call.get("/authors"))
    v = no_lazy_load(ex)
    assert not v and "Author.books was lazy-loaded 3 times" in v.actual


async def test_the_error_is_shown_without_the_background_link(probe_for):
    async with probe_for("lazy_serialise", seed_authors=1) as probe:
        v = no_lazy_load(await probe.request(Call.get("/authors/full")))
    assert "failed with MissingGreenlet: greenlet_spawn has not been called" in v.actual
    assert "Background on this error" not in v.actual
