"""What a lesson notebook calls first: its own, freshly reset database.

    from autograder import lesson
    db = lesson.setup("01_session_dependency")
    engine = create_async_engine(db.url)

Every lesson gets its own database so lessons never see each other's tables, and
running a notebook from the top resets it, so the same notebook gives the same
output every time. The grader gives each graded submission a database of its
own (COURSE_DB_URL, prepared in advance; see autograder/grading/databases.py);
the lesson code does not change.

nbgrader's Validate runs the notebook again in a kernel of its own while the learner's
kernel is still open. Resetting the lesson's database there would end the learner's
connections and replace their data, so a validation run (NBGRADER_EXECUTION=validate,
set by nbgrader's Validator) gets a database of its own, dropped when its kernel exits;
one a killed validation left behind is dropped by the next one.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import re
from dataclasses import dataclass

from sqlalchemy.engine import URL

from autograder.db import admin
from autograder.db import url as urls
from autograder.db.embedded import pid_alive
from autograder.db.server import server_url

ENV_DB_NAME = "COURSE_DB_NAME"
# Workshop hub mode (autograder/hub/): the learner's role. Their lesson databases are named
# `<role>__<lesson database>` (so two learners' names never collide) and open to that role only.
ENV_DB_PREFIX = "COURSE_DB_PREFIX"
PREFIX_SEPARATOR = "__"
# Set by the grader: a database prepared for this one submission (fresh, owned by a
# role that may not create or drop databases). The lesson uses it as it is.
ENV_PREPARED_URL = "COURSE_DB_URL"
# nbgrader sets it to "validate" while its Validator runs a notebook (and "autograde").
ENV_NBGRADER_EXECUTION = "NBGRADER_EXECUTION"
# A validation run's database ends in _v<pid of its kernel>.
VALIDATION_SUFFIX = re.compile(r"_v(\d+)$")

log = logging.getLogger(__name__)


def validating() -> bool:
    return os.environ.get(ENV_NBGRADER_EXECUTION, "") == "validate"


def owner_prefix() -> str:
    """The learner's role in workshop hub mode (COURSE_DB_PREFIX), else ""."""
    prefix = urls.setting(ENV_DB_PREFIX)
    return admin.check_identifier(prefix) if prefix else ""


def database_name(lesson_id: str) -> str:
    # A validation never uses the learner's database, overridden or not.
    validation = f"_v{os.getpid()}" if validating() else ""
    prefix = owner_prefix()
    prefix = prefix + PREFIX_SEPARATOR if prefix else ""
    override = os.environ.get(ENV_DB_NAME, "").strip()
    if override:
        admin.check_identifier(override)
        return admin.check_identifier(prefix + override[: 63 - len(prefix) - len(validation)] + validation)
    slug = re.sub(r"[^a-z0-9_]+", "_", lesson_id.lower()).strip("_")
    # Parallel test workers (pytest-xdist) run the same lesson at once: kernels inherit
    # the worker's name, and each worker gets databases of its own.
    worker = re.sub(r"[^a-z0-9]", "", os.environ.get("PYTEST_XDIST_WORKER", "").lower())
    suffix = (f"_{worker}" if worker else "") + validation
    return admin.check_identifier(prefix + f"lesson_{slug}"[: 63 - len(prefix) - len(suffix)] + suffix)


@dataclass(frozen=True)
class LessonDatabase:
    lesson_id: str
    name: str
    url: str
    """asyncpg URL of this lesson's database, password included: pass it to create_async_engine."""
    admin_url: str

    def __repr__(self) -> str:  # notebooks print this; never show a password
        return f"LessonDatabase(lesson={self.lesson_id!r}, database={self.name!r})"


def setup(lesson_id: str) -> LessonDatabase:
    """Create (or reset) the lesson's database and return how to reach it."""
    prepared = os.environ.get(ENV_PREPARED_URL, "").strip()
    if prepared:
        url = urls.normalize(prepared)
        return LessonDatabase(lesson_id=lesson_id, name=url.database or "", url=urls.render(url), admin_url="")
    # A kernel that uses the bundled server holds it: a pytest run or JupyterLab
    # finishing elsewhere will not stop the server while this kernel is alive.
    admin_url = server_url(hold=True)
    name = database_name(lesson_id)
    if validating():
        _drop_abandoned_validations(admin_url, name)
        atexit.register(_drop_quietly, admin_url, name)
    lesson_url = admin.recreate_database(admin_url, name, private=bool(owner_prefix()))
    return LessonDatabase(lesson_id=lesson_id, name=name, url=urls.render(lesson_url), admin_url=urls.render(admin_url))


def _drop_quietly(admin_url: URL, name: str) -> None:
    # At exit no new thread may start (admin.run_sync uses one), so a loop of our own on this
    # thread. A server reached by host name would need the resolver's thread: then the next
    # validation drops it (_drop_abandoned_validations).
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(admin.drop(admin_url, name))
    except Exception as exc:  # noqa: BLE001 - the kernel is exiting; the next validation drops it
        log.warning("could not drop validation database %s: %s", name, exc)
    finally:
        loop.close()


def _drop_abandoned_validations(admin_url: URL, own_name: str) -> None:
    """Drop this lesson's validation databases whose kernel is gone (killed before its atexit ran).

    Only those of a process that no longer exists on this machine, and only when nobody is
    connected: a validation running elsewhere against a shared server keeps its database."""
    prefix = VALIDATION_SUFFIX.sub("", own_name)

    async def go() -> None:
        conn = await admin.connect(admin_url)
        try:
            rows = await conn.fetch(
                "SELECT datname FROM pg_database d WHERE starts_with(datname, $1) "
                "AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.datid = d.oid)",
                prefix + "_v",
            )
            for row in rows:
                found = VALIDATION_SUFFIX.search(row["datname"])
                if found and row["datname"] == prefix + found.group(0) and not pid_alive(int(found.group(1))):
                    await conn.execute(f'DROP DATABASE IF EXISTS "{admin.check_identifier(row["datname"])}"')
        finally:
            await conn.close()

    try:
        admin.run_sync(go)
    except Exception as exc:  # noqa: BLE001 - a leftover database is not worth failing a validation
        log.warning("could not drop abandoned validation databases: %s", exc)
