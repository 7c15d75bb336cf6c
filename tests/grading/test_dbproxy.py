"""A submission's own database socket on an external grading server (GRADING_DATABASE_URL).

The learners' bundled server stands in for an external one here: like many a docker image or
developer's server, it trusts every local connection, so whoever reaches its socket folder can
log in as any role — the superuser included. A submission must never reach it."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import asyncpg
import nbformat
import pytest

from autograder.db import admin
from autograder.grading.databases import GradingDatabases
from autograder.grading.dbproxy import SubmissionProxy, Upstream, parse_startup
from autograder.grading.run import EXPORTS_DIR, GradeOptions, GradeRun
from autograder.paths import project_root
from benchmarks.submissions import answered

ROOT = os.geteuid() == 0


def upstream_of(url) -> Upstream:
    host = dict(url.query).get("host") or url.host
    return Upstream(host, url.port or 5432)


def test_the_startup_message_is_read_as_postgres_writes_it():
    body = b"user\0alice\0database\0shop\0application_name\0x\0\0"
    assert parse_startup(body) == {"user": "alice", "database": "shop", "application_name": "x"}


async def test_only_its_own_role_on_its_own_database_gets_through(server_url):
    dbs = GradingDatabases(server_url, isolated_server=False)
    await dbs.connect()
    database = await dbs.create("00_foundations")
    folder = Path(tempfile.mkdtemp(prefix="ag-proxy-"))
    proxy = SubmissionProxy(folder / "s", upstream_of(server_url), role=database.role, database=database.name)
    await proxy.start()
    try:
        own = admin.asyncpg_params(database.url)
        conn = await asyncpg.connect(
            host=str(proxy.folder), user=own["user"], password=own["password"], database=database.name
        )
        try:
            assert await conn.fetchrow("SELECT current_user AS u, current_database() AS d") == (
                database.role,
                database.name,
            )
        finally:
            await conn.close()
        superuser = server_url.username or "postgres"
        for user, db in ((superuser, database.name), (superuser, "postgres"), (database.role, "postgres")):
            with pytest.raises(asyncpg.PostgresError, match="its own database only"):
                await asyncpg.connect(host=str(proxy.folder), user=user, database=db, password=own["password"])
        assert len(proxy.refused) == 3
    finally:
        await proxy.close()
        await dbs.drop(database.name)
        await dbs.close()


def test_a_submission_on_an_external_server_reaches_its_own_database_only(server_url, tmp_path, monkeypatch):
    # The admin's socket folder is the learners' server's; it trusts local logins.
    host = dict(server_url.query).get("host") or server_url.host or ""
    superuser = server_url.username or "postgres"
    monkeypatch.setenv("GRADING_DATABASE_URL", server_url.render_as_string(hide_password=False))
    lesson = "00_foundations"
    solution = nbformat.read(project_root() / "solutions" / lesson / f"{lesson}.ipynb", as_version=4)
    release = nbformat.read(project_root() / "notebooks" / lesson / f"{lesson}.ipynb", as_version=4)
    attack = release.copy()
    attack = nbformat.from_dict(json.loads(json.dumps(attack)))
    cell = next(c for c in attack.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "ex_product_model")
    cell.source = (
        "import asyncpg, os\n"
        f"for host in ({host!r}, os.environ['DATABASE_URL'].split('host=')[-1]):\n"
        f"    for db in ('postgres', 'template1'):\n"
        f"        try:\n"
        f"            c = await asyncpg.connect(host=host, user={superuser!r}, database=db, timeout=3)\n"
        f"            print('REACHED:', host, db, await c.fetchval('SELECT rolsuper FROM pg_roles "
        f"WHERE rolname = current_user'))\n"
        f"        except Exception as exc:\n"
        f"            print('refused:', type(exc).__name__)\n"
    )
    for student, nb in (("ada", answered(release, solution)), ("eve", attack)):
        folder = tmp_path / "submitted" / student / lesson
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / f"{lesson}.ipynb")
    report = GradeRun(tmp_path, GradeOptions(workers=2)).run()
    results = {r.student: r for r in report.results}
    assert results["ada"].score == results["ada"].max_score == 8.0, results["ada"].verdict
    graded = (tmp_path / "autograded" / "eve" / lesson / f"{lesson}.ipynb").read_text()
    assert "REACHED:" not in graded.replace("print('REACHED:'", "")
    assert "refused:" in graded
    assert report.database_note  # the run says the server is not ours
    assert json.loads((tmp_path / EXPORTS_DIR / lesson / "eve" / "result.json").read_text())["score"] == 0
    assert not list(Path("/run" if ROOT else tempfile.gettempdir()).glob(f"autograder-proxy-{os.getpid()}"))
