import pytest

from autograder.checks import Call, rolled_back
from autograder.checks.unit_of_work import session_from_dependency, single_transaction
from tests.apps.repositories import make_app

GOOD = Call.post("/orders", json={"email": "ann@x", "item": "mug", "quantity": 2})
BAD = Call.post("/orders", json={"email": "bob@x", "item": "mug", "quantity": 0})


@pytest.fixture
def shop(probes):
    return probes(make_app, "uow")


async def test_single_transaction_passes_two_repositories_sharing_get_db(shop):
    async with shop("correct") as probe:
        good = await probe.request(GOOD)
        bad = await probe.request(BAD)
        assert await probe.count_rows("users") == 1
    assert good.status == 201 and bad.status == 422
    v = single_transaction(good)
    assert v, str(v)
    assert "1 session(s) did work; 1 BEGIN, 1 COMMIT; transactions: BEGIN, COMMIT" in v.actual
    v = single_transaction(bad, end="ROLLBACK")
    assert v, str(v)


@pytest.mark.parametrize("variant", ["own_sessions", "no_cache", "mixed_scope"])
async def test_single_transaction_rejects_two_sessions_in_one_request(shop, variant):
    async with shop(variant) as probe:
        ex = await probe.request(GOOD)
    assert ex.status == 201  # the client cannot tell
    v = single_transaction(ex)
    assert not v
    text = str(v)
    assert "2 session(s) did work; 2 BEGIN, 2 COMMIT" in v.actual
    assert "connection 1: BEGIN, COMMIT; connection 2: BEGIN, COMMIT" in v.actual
    assert "INSERT INTO orders" in text
    assert "2 different sessions worked in this one request" in v.hint
    assert 'Depends(get_db, scope="function")' in v.hint and "use_cache=False" in v.hint


async def test_single_transaction_rejects_a_repository_that_commits(shop):
    async with shop("commit_in_repo") as probe:
        good = await probe.request(GOOD)
        bad = await probe.request(BAD)
        assert await probe.count_rows("users", "email = 'bob@x'") == 1  # the half-write stayed
    v = single_transaction(good)
    assert not v
    assert "1 session(s) did work; 2 BEGIN, 2 COMMIT" in v.actual
    assert "committed 2 times" in v.hint and "Repositories (and routes) only `flush()`" in v.hint
    v = single_transaction(bad, end="ROLLBACK")
    assert not v
    assert "transactions: BEGIN, COMMIT, BEGIN, ROLLBACK" in v.actual
    assert "part of this failed request was committed" in v.hint
    # and the existing check sees the same mistake from the data's side
    async with shop("commit_in_repo") as probe:
        assert not await rolled_back(probe, BAD, table="users")


async def test_single_transaction_rejects_a_get_db_that_never_commits(shop):
    async with shop("no_commit") as probe:
        ex = await probe.request(GOOD)
    v = single_transaction(ex)
    assert not v
    assert "0 COMMIT, 1 ROLLBACK" in v.actual
    assert "nothing was committed" in v.hint


def test_single_transaction_refuses_an_unknown_end():
    with pytest.raises(ValueError, match="end must be 'COMMIT' or 'ROLLBACK'"):
        single_transaction(None, end="SAVEPOINT")


async def test_session_from_dependency_passes_and_restores_overrides(shop):
    async with shop("correct") as probe:
        get_db = probe.app.state.get_db
        v = await session_from_dependency(probe, GOOD, get_db)
        assert v, str(v)
        assert "get_db ran 1 time(s); 1 session(s) did work, 0 of them not from get_db" in v.actual
        assert probe.app.dependency_overrides == {}
        # the app still works normally afterwards, and a failing request is thrown into get_db
        v = await session_from_dependency(probe, BAD, get_db)
        assert v, str(v)
        assert "ROLLBACK" in v.actual
        assert await probe.count_rows("users") == 1


async def test_session_from_dependency_wraps_an_existing_override(shop):
    async with shop("correct") as probe:
        get_db = probe.app.state.get_db

        async def replacement(request: __import__("fastapi").Request):
            async with request.app.state.sessionmaker() as session:
                yield session
                await session.commit()

        probe.app.dependency_overrides[get_db] = replacement
        v = await session_from_dependency(probe, GOOD, get_db)
        assert v, str(v)
        assert probe.app.dependency_overrides == {get_db: replacement}


async def test_session_from_dependency_rejects_sessions_opened_by_providers(shop):
    async with shop("own_sessions") as probe:
        v = await session_from_dependency(probe, GOOD, probe.app.state.get_db)
    assert not v
    assert "get_db ran 0 time(s); 2 session(s) did work, 2 of them not from get_db" in v.actual
    assert "get_db never ran for this request" in v.hint
    assert "INSERT INTO users" in str(v)


@pytest.mark.parametrize("variant", ["no_cache", "mixed_scope"])
async def test_session_from_dependency_rejects_get_db_running_twice(shop, variant):
    async with shop(variant) as probe:
        v = await session_from_dependency(probe, GOOD, probe.app.state.get_db)
    assert not v
    assert "get_db ran 2 time(s)" in v.actual
    assert "ran 2 times in one request" in v.hint and '`scope="function"` in one place' in v.hint


async def test_session_from_dependency_passes_a_commit_in_the_repository(shop):
    # one session from get_db: that check is about where the session comes from;
    # the extra commit is single_transaction's job
    async with shop("commit_in_repo") as probe:
        v = await session_from_dependency(probe, GOOD, probe.app.state.get_db)
    assert v, str(v)
