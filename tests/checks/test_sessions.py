from autograder.checks import Call, session_per_request


async def test_a_session_per_request_passes(probe_for):
    async with probe_for("correct") as probe:
        v = await session_per_request(probe, Call.get("/users"), times=3)
    assert v, str(v)


async def test_a_module_level_session_is_rejected(probe_for):
    async with probe_for("shared") as probe:
        v = await session_per_request(probe, Call.get("/users"), times=3)
    assert not v
    assert "request 2 reused the session of request 1" in v.actual
    assert "never at module level" in v.hint
