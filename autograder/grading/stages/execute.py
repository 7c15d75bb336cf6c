"""Stage 3, a worker thread: run the sanitized notebook's code cells in a forked, sandboxed process.

The worker waits for the fork server's imports (at the start of a run only) and for the
submission's database, takes a sandbox slot (its uid and cgroup), and gives the process
a database URL that reaches that database only. An exception here is the grader's
failure (the submission's own failures are an `Execution`): the scheduler retries it.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from sqlalchemy.engine import make_url

from autograder.db import url as urls
from autograder.grading import sandbox
from autograder.grading.context import RunContext
from autograder.grading.databases import SubmissionDatabase
from autograder.grading.dbproxy import SubmissionProxy, Upstream
from autograder.grading.executor import JobSpec
from autograder.grading.job import SubmissionJob
from autograder.paths import project_root

log = logging.getLogger(__name__)

DATABASE_WAIT = 120  # seconds a worker waits for the admin loop to make the database


def execute(job: SubmissionJob, run: RunContext) -> SubmissionJob:
    t0 = time.monotonic()
    if run.warming is not None and run.warming.is_alive():
        run.warming.join()
    t1 = time.monotonic()
    run.timings.add("fork server wait", t1 - t0)  # at the start only, while it imports
    assert job.database_future is not None, "provision runs before execute"
    job.database = database = job.database_future.result(timeout=DATABASE_WAIT)
    run.timings.add("database", time.monotonic() - t1)
    slot = run.slots.get()
    proxy = None
    try:
        workdir = run.paths.workdir(job.lesson, job.student)
        shutil.rmtree(workdir, ignore_errors=True)
        sandbox.prepare_workdir(workdir, slot)
        keep, url = kept_paths(run), database.url
        if not run.dbs.isolated_server:
            # Not the external server's socket: one of its own, that reaches its own
            # database as its own role only (see dbproxy).
            proxy = _proxy(run, database, slot)
            run.loop.run(proxy.start(sandbox.SANDBOX_UID_BASE + slot if os.geteuid() == 0 else None))
            keep.append(proxy.folder)
            url = urls.render(make_url(database.url).set(host=None, port=None, query={"host": str(proxy.folder)}))
        sandboxed = sandbox.SandboxSpec(
            workdir=workdir, slot=slot, isolate=run.options.isolate, keep=keep, limits=run.options.limits
        )
        env = {
            "COURSE_DB_URL": url,
            "DATABASE_URL": url,
            "NBGRADER_EXECUTION": "autograde",
            "PYTHONHASHSEED": "0",
            "MPLBACKEND": "Agg",
        }
        spec = JobSpec(
            env=env,
            sandbox=sandboxed,
            output_limit=run.options.output_limit,
            deadlines=run.options.deadlines,
            graded_cells=job.graded_cells,
        )
        job.execution = run.executor.execute(job.cells, spec)
        # Its process is gone: end what it left running on the server now, not at the drop.
        try:
            run.loop.run(run.dbs.end_submission(database.name), timeout=15)
        except Exception as exc:  # noqa: BLE001 - the drop ends them too; the run goes on
            log.warning("could not end %s's backends: %s", database.name, exc)
        return job
    finally:
        if proxy is not None:
            try:
                run.loop.run(proxy.close())
            except Exception as exc:  # noqa: BLE001 - its folder is removed when the run ends
                log.warning("could not close %s's database proxy %s: %s", job.name, proxy.folder, exc)
        run.slots.put(slot)


def kept_paths(run: RunContext) -> list[Path]:
    """What the sandbox binds into its root: Python, the package, and — for our own grading
    cluster, which asks every role for its password and lets it into its own database only —
    the cluster's socket folder. An external server's is never bound (see dbproxy)."""
    keep = sorted({Path(sys.prefix), project_root() / "autograder", Path(os.path.realpath(sys.base_prefix))})
    host = _query_value(run.dbs.admin_url.query, "host") or run.dbs.admin_url.host or ""
    if run.dbs.isolated_server and host.startswith("/"):
        keep.append(Path(host))
    return keep


def _proxy(run: RunContext, database: SubmissionDatabase, slot: int) -> SubmissionProxy:
    admin = run.dbs.admin_url
    host = _query_value(admin.query, "host") or admin.host or "localhost"
    port = admin.port or int(_query_value(admin.query, "port") or 5432)
    # Short: a unix socket's path has at most 107 bytes.
    folder = run.paths.proxy_sockets / f"{slot}-{next(run.proxy_numbers)}"
    return SubmissionProxy(folder, Upstream(host, port), role=database.role, database=database.name)


def _query_value(query: Mapping[str, str | tuple[str, ...]], key: str) -> str | None:
    """One value of a URL's query (SQLAlchemy gives a tuple for a repeated key: the first)."""
    value = query.get(key)
    return value[0] if isinstance(value, tuple) else value
