from autograder.checks import Call, committed_once, rolled_back, savepoint_trace

BAD_USER = Call.post("/users", json={"email": "bad@x", "fail": True})
GOOD_USER = Call.post("/users", json={"email": "ok@x"})
BULK = Call.post("/authors/bulk", json=["ok1", "", "ok2"])
EXPECTED_SAVEPOINTS = ["BEGIN", "SAVEPOINT", "RELEASE", "SAVEPOINT", "ROLLBACK TO", "SAVEPOINT", "RELEASE", "COMMIT"]


async def test_rolled_back_passes_a_get_db_that_just_closes_the_session(probe_for):
    async with probe_for("correct") as probe:
        v = await rolled_back(probe, BAD_USER, table="users")
    assert v, str(v)
    assert "ROLLBACK" in v.actual and "COMMIT" not in v.actual


async def test_rolled_back_passes_an_explicit_rollback_too(probe_for):
    async with probe_for("explicit_rollback") as probe:
        v = await rolled_back(probe, BAD_USER, table="users")
        assert v, str(v)
        assert await committed_once(probe, GOOD_USER, table="users")


async def test_rolled_back_rejects_commit_in_finally(probe_for):
    async with probe_for("commit_in_finally") as probe:
        v = await rolled_back(probe, BAD_USER, table="users")
    assert not v
    text = str(v)
    assert "rolled_back: FAILED" in text
    assert "users now has 1 row (was 0)" in text
    assert "transactions: BEGIN, COMMIT" in text
    assert "INSERT INTO users" in text  # the SQL that ran is shown
    assert "never in `finally`" in text


async def test_rolled_back_rejects_a_route_that_commits_before_failing(probe_for):
    async with probe_for("commit_then_fail") as probe:
        v = await rolled_back(probe, BAD_USER, table="users", where="email = 'bad@x'")
    assert not v
    assert "-> 409" in v.actual and "now has 1 row (was 0)" in v.actual and "COMMIT" in v.actual


async def test_rolled_back_rejects_a_request_that_does_not_fail(probe_for):
    async with probe_for("correct") as probe:
        v = await rolled_back(probe, GOOD_USER, table="users")
    assert not v and "was expected to fail" in v.hint


async def test_committed_once_passes_the_correct_get_db(probe_for):
    async with probe_for("correct") as probe:
        v = await committed_once(probe, GOOD_USER, table="users")
    assert v, str(v)


async def test_committed_once_passes_commit_in_finally_on_success(probe_for):
    # committing in finally is wrong for failures only; a success commits once
    async with probe_for("commit_in_finally") as probe:
        assert await committed_once(probe, GOOD_USER, table="users")


async def test_committed_once_rejects_a_get_db_that_never_commits(probe_for):
    async with probe_for("no_commit") as probe:
        v = await committed_once(probe, GOOD_USER, table="users")
    assert not v
    assert "0 COMMIT(s)" in v.actual and "gained 0 rows" in v.actual
    assert "transactions: BEGIN, ROLLBACK" in v.actual
    assert "await session.commit()" in v.hint


async def test_savepoint_trace_passes_begin_nested_per_item(probe_for):
    async with probe_for("correct") as probe:
        ex = await probe.request(BULK)
        assert ex.response.json() == {"saved": ["ok1", "ok2"]}
        assert await probe.count_rows("authors") == 2
    v = savepoint_trace(ex, EXPECTED_SAVEPOINTS)
    assert v, str(v)


async def test_savepoint_trace_rejects_one_transaction_for_all_items(probe_for):
    async with probe_for("no_savepoint") as probe:
        ex = await probe.request(BULK)
        assert await probe.count_rows("authors") == 0  # one bad name lost the good ones
    v = savepoint_trace(ex, EXPECTED_SAVEPOINTS)
    assert not v
    text = str(v)
    assert "expected" in text and "got" in text
    assert "  ! 2 SAVEPOINT     ROLLBACK" in text  # aligned, differences marked
    assert "    1 BEGIN         BEGIN" in text
    assert "begin_nested" in v.hint


DUPLICATE_DEFERRED = Call.post("/users/deferred", json={"email": "dup@x"})


async def test_rolled_back_passes_a_failed_commit_reported_to_the_client(probe_for):
    # scope="function": the duplicate fails at commit, before the response -> 500, nothing kept
    async with probe_for("correct") as probe:
        assert await committed_once(probe, DUPLICATE_DEFERRED, table="users")
        v = await rolled_back(probe, DUPLICATE_DEFERRED, table="users")
    assert v, str(v)


async def test_rolled_back_rejects_a_commit_that_fails_after_a_success_was_sent(probe_for):
    # Default dependency scope: the client is told 201, then the commit fails.
    # The exception is recorded, but the client saw success: that is not a rollback it can see.
    async with probe_for("commit_after_response") as probe:
        assert await committed_once(probe, DUPLICATE_DEFERRED, table="users")
        v = await rolled_back(probe, DUPLICATE_DEFERRED, table="users")
    assert not v
    assert "-> 201" in v.actual and "IntegrityError" in v.actual
    assert 'scope="function"' in v.hint


async def test_committed_once_rejects_a_commit_that_fails_after_a_success_was_sent(probe_for):
    async with probe_for("commit_after_response") as probe:
        await committed_once(probe, DUPLICATE_DEFERRED, table="users")
        v = await committed_once(probe, DUPLICATE_DEFERRED, table="users", expect_new_rows=0)
    assert not v
    assert "after the response was sent" in v.hint
