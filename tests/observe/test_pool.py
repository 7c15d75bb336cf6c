import gc
import warnings

from sqlalchemy import select

from autograder.observe.pool import PoolWatch
from tests.apps.library import Author


async def _leak_a_session(SessionLocal):
    session = SessionLocal()  # never closed: the mistake under test
    await session.scalars(select(Author))


async def test_a_never_closed_session_stays_visible(engine, SessionLocal):
    with PoolWatch(engine) as watch:
        await _leak_a_session(SessionLocal)
        gc.collect()
        assert watch.checked_out() == 1
        assert engine.sync_engine.pool.checkedout() == 1
        assert await watch.release_leaked() == 1
    assert engine.sync_engine.pool.checkedout() == 0


async def test_without_the_strong_reference_gc_hides_the_leak(engine, SessionLocal):
    # Why PoolWatch keeps proxies alive: otherwise the garbage collector returns
    # the leaked connection to the pool and nothing is left to see.
    with PoolWatch(engine, keep_alive=False) as watch:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "The garbage collector is trying to clean up ..."
            await _leak_a_session(SessionLocal)
            gc.collect()
        assert watch.checked_out() == 0
        assert engine.sync_engine.pool.checkedout() == 0


async def test_closed_sessions_are_checked_in(engine, SessionLocal):
    with PoolWatch(engine) as watch:
        for _ in range(3):
            async with SessionLocal() as s:
                await s.scalars(select(Author))
        assert watch.checked_out() == 0
        assert watch.checkouts == watch.checkins == 3
