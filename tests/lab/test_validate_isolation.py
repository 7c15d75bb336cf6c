"""Validate and "check my work" never touch the database the learner's open kernel uses.

A learner's kernel runs lesson 01's setup and keeps a connection with data in it; then
nbgrader's Validator runs the same notebook (in a kernel of its own, as the lab's Validate
button does) and the grader checks it. The learner's connection, its database (same oid)
and its data must all still be there, and no validation database may be left behind.
"""

from __future__ import annotations

import asyncio
import atexit
import shutil
from pathlib import Path

import asyncpg
import pytest
from jupyter_client.manager import start_new_kernel
from nbgrader.validator import Validator

from autograder import lesson
from autograder.db import admin
from autograder.db import url as urls
from autograder.grading.api import grade_notebook
from tests.cli_support import REPO

LESSON = "01_session_dependency"

LEARNER_CELL = f"""
import asyncpg
from autograder import lesson
from autograder.db import admin
from autograder.db import url as urls
db = lesson.setup({LESSON!r})
conn = await asyncpg.connect(**admin.asyncpg_params(urls.normalize(db.url)))
await conn.execute("CREATE TABLE learner_work (note text); INSERT INTO learner_work VALUES ('mine')")
before = (db.name, await conn.fetchval("SELECT pg_backend_pid()"),
          await conn.fetchval("SELECT oid FROM pg_database WHERE datname = current_database()"))
"""

STILL_THERE = """
after = (db.name, await conn.fetchval("SELECT pg_backend_pid()"),
         await conn.fetchval("SELECT oid FROM pg_database WHERE datname = current_database()"))
notes = [r["note"] for r in await conn.fetch("SELECT note FROM learner_work")]
print(repr((before == after, notes)))
"""


def run_in(client, code: str) -> str:
    """Execute `code` in the kernel; return what it printed, raise with its traceback if it failed."""
    printed: list[str] = []

    def on_output(msg: dict) -> None:
        content = msg["content"]
        if msg["msg_type"] == "stream":
            printed.append(content["text"])
        elif msg["msg_type"] == "error":
            printed.append("\n".join(content["traceback"]))

    reply = client.execute_interactive(code, timeout=120, output_hook=on_output)
    assert reply["content"]["status"] == "ok", "".join(printed)
    return "".join(printed)


async def validation_databases(admin_url) -> list[str]:
    conn = await admin.connect(admin_url)
    try:
        names = await conn.fetch("SELECT datname FROM pg_database")
    finally:
        await conn.close()
    return [r["datname"] for r in names if lesson.VALIDATION_SUFFIX.search(r["datname"])]


@pytest.mark.timeout(300)
def test_validate_and_check_leave_the_learners_kernel_and_data_alone(tmp_path: Path, server_url):
    release = REPO / "notebooks" / LESSON / f"{LESSON}.ipynb"
    mine = tmp_path / f"{LESSON}.ipynb"
    shutil.copyfile(release, mine)
    admin_url = server_url
    km, client = start_new_kernel(kernel_name="python3")
    try:
        run_in(client, LEARNER_CELL)

        result = Validator().validate(str(mine))  # nbgrader's own, as the lab's Validate button calls it
        assert "failed" in result, "the release's unanswered exercises fail their visible tests"
        graded = grade_notebook(mine, LESSON)
        assert graded.max_score > 0 and graded.score == 0

        assert run_in(client, STILL_THERE).strip() == "(True, ['mine'])"
    finally:
        client.stop_channels()
        km.shutdown_kernel(now=True)
    assert asyncio.run(validation_databases(admin_url)) == [], "the validation kernel drops its database on exit"


def test_a_killed_validations_database_is_dropped_by_the_next(monkeypatch, server_url):
    admin_url = server_url
    monkeypatch.delenv(lesson.ENV_DB_NAME, raising=False)
    monkeypatch.setenv(lesson.ENV_NBGRADER_EXECUTION, "validate")
    own = lesson.database_name("isolation_probe")
    dead = lesson.VALIDATION_SUFFIX.sub("_v4194999", own)  # above pid_max: no such process
    busy = lesson.VALIDATION_SUFFIX.sub("_v4194998", own)
    admin.recreate_database(admin_url, dead)
    admin.recreate_database(admin_url, busy)

    async def hold_and_validate() -> list[str]:
        # Someone is connected to `busy` (a validation on another machine, say): it stays.
        holder = await asyncpg.connect(**admin.asyncpg_params(urls.with_database(admin_url, busy)))
        try:
            await asyncio.to_thread(lesson.setup, "isolation_probe")
            return await validation_databases(admin_url)
        finally:
            await holder.close()

    try:
        left = asyncio.run(hold_and_validate())
        assert dead not in left and busy in left and own in left
    finally:
        atexit.unregister(lesson._drop_quietly)  # dropped here: this process outlives the server
        for name in (dead, busy, own):
            admin.drop_database(admin_url, name)
