"""Stage 2, main thread: ask for the submission's database — a fresh database and role, cloned
from the lesson's template. It is made on the admin loop while this thread prepares the next
submission; the worker waits for it. `release` drops it again, in the background."""

from __future__ import annotations

import asyncio
import logging

from autograder.grading.context import RunContext
from autograder.grading.job import SubmissionJob

log = logging.getLogger(__name__)


def provision(job: SubmissionJob, run: RunContext) -> SubmissionJob:
    job.database_future = run.loop.submit(run.dbs.create(job.lesson))
    return job


def release(job: SubmissionJob, run: RunContext) -> None:
    """Drop the job's database once it is made (a drop waits for a checkpoint: not on this thread).
    Releasing twice, or a job that never asked for one, does nothing."""
    made, job.database_future = job.database_future, None
    if made is None:
        return
    name = job.name

    async def drop_when_made() -> None:
        try:
            database = await asyncio.wrap_future(made)
        except Exception as exc:  # noqa: BLE001 - never made: nothing to drop
            log.debug("no database to drop for %s (%s)", name, exc)
            return
        try:
            await run.dbs.drop(database.name)
        except Exception as exc:
            # Not lost: the run drops all of its databases at its end, the next run sweeps them.
            log.warning("could not drop %s's database %s: %s", name, database.name, exc)
            raise

    run.drops.append(run.loop.submit(drop_when_made()))
