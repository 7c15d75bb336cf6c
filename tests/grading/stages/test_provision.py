"""provision / release: the database is asked for on the admin loop and dropped once, in the background."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest

from autograder.grading.admin_loop import AdminLoop
from autograder.grading.job import SubmissionJob
from autograder.grading.stages.provision import provision, release


class FakeDatabases:
    def __init__(self, fail_drop: bool = False, fail_create: bool = False):
        self.created: list[str] = []
        self.dropped: list[str] = []
        self.fail_drop, self.fail_create = fail_drop, fail_create

    async def create(self, lesson):
        if self.fail_create:
            raise OSError("refused")
        self.created.append(lesson)
        return SimpleNamespace(name=f"grade_{lesson}")

    async def drop(self, name):
        if self.fail_drop:
            raise OSError("the server went away")
        self.dropped.append(name)


@pytest.fixture
def loop():
    loop = AdminLoop()
    yield loop
    loop.close()


def _job():
    return SubmissionJob("ada", "00_foundations", None)


def test_provision_makes_the_database_on_the_loop_and_release_drops_it_once(loop):
    run = SimpleNamespace(loop=loop, dbs=FakeDatabases(), drops=[])
    job = provision(_job(), run)
    assert job.database_future.result(5).name == "grade_00_foundations"
    release(job, run)
    release(job, run)  # a second release (the retry path after a failure) does nothing
    [drop] = run.drops
    drop.result(5)
    assert run.dbs.dropped == ["grade_00_foundations"] and job.database_future is None


def test_a_database_never_made_is_not_dropped(loop):
    run = SimpleNamespace(loop=loop, dbs=FakeDatabases(fail_create=True), drops=[])
    job = provision(_job(), run)
    release(job, run)
    run.drops[0].result(5)
    assert run.dbs.dropped == []


def test_a_drop_that_fails_is_logged(loop, caplog):
    run = SimpleNamespace(loop=loop, dbs=FakeDatabases(fail_drop=True), drops=[])
    job = provision(_job(), run)
    with caplog.at_level(logging.WARNING, logger="autograder.grading.stages.provision"):
        release(job, run)
        with pytest.raises(OSError, match="went away"):
            run.drops[0].result(5)
    assert "could not drop ada/00_foundations's database grade_00_foundations" in caplog.text
