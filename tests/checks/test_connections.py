from autograder.checks import Call, no_connection_leak


async def test_closed_sessions_do_not_leak(probe_for):
    async with probe_for("correct") as probe:
        v = await no_connection_leak(probe, Call.get("/users"), times=20)
        assert await probe.server_connections() >= 1  # the app's pooled connection(s)
    assert v, str(v)
    assert "20 request(s) ran" in v.actual


async def test_a_never_closed_session_leaks(probe_for):
    async with probe_for("leak") as probe:
        v = await no_connection_leak(probe, Call.get("/users"), times=20)
        assert probe.pool.checked_out() == 1
    assert not v
    assert "1 connection(s) still checked out (stopped at the first leak)" in v.actual
    assert "async with SessionLocal() as session" in v.hint
    assert "SELECT users." in str(v)
