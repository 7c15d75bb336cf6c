"""Learners' PostgreSQL roles on the hub's own cluster (the bundled PostgreSQL, password-only).

Each learner can create and reset their own lesson databases (through `lesson.setup`, as a notebook
does), cannot connect to another learner's, cannot create roles, cannot lift their pinned limits,
and hits their connection limit; two learners' databases for the same lesson never share a name.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from autograder import lesson
from autograder.db import admin
from autograder.errors import SetupError
from autograder.hub import provision
from tests.hub.support import needs_root, provisioned

pytestmark = needs_root

LESSON = "00_foundations"


@pytest.fixture(scope="module")
def hub_admin_url():
    hub_dir = Path(tempfile.mkdtemp(prefix="hub-test-"))  # not under pytest's 0700 basetemp (see cli_support)
    cluster = provision.hub_cluster(hub_dir)
    info = cluster.acquire()
    try:
        yield make_url(info.url("postgres"))
    finally:
        cluster.release()  # the last holder: stops it
        shutil.rmtree(hub_dir, ignore_errors=True)


@pytest.fixture
async def learners(hub_admin_url):
    async with provisioned(hub_admin_url, ("a", "b"), provision.Limits(connections=3)) as made:
        yield made


def setup_lesson(monkeypatch, learner: provision.LearnerDatabase) -> lesson.LessonDatabase:
    """`lesson.setup` as a notebook in the learner's server runs it (their environment)."""
    with monkeypatch.context() as env:
        for key, value in learner.env().items():
            env.setenv(key, value)
        env.delenv("PYTEST_XDIST_WORKER", raising=False)
        env.delenv(lesson.ENV_DB_NAME, raising=False)
        env.delenv(lesson.ENV_PREPARED_URL, raising=False)
        return lesson.setup(LESSON)


async def connect(url: str, database: str | None = None) -> asyncpg.Connection:
    parsed = make_url(url)
    return await asyncpg.connect(**admin.asyncpg_params(parsed.set(database=database or parsed.database)))


async def test_learners_reach_their_own_databases_only(learners, monkeypatch):
    provisioner, (a, b) = learners
    db_a, db_b = setup_lesson(monkeypatch, a), setup_lesson(monkeypatch, b)
    assert db_a.name == f"{a.role}__lesson_{LESSON}" and db_b.name == f"{b.role}__lesson_{LESSON}"
    assert db_a.name != db_b.name

    own = await connect(db_a.url)
    try:
        assert await own.fetchval("SELECT current_database()") == db_a.name
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await own.execute("CREATE ROLE intruder LOGIN")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await own.execute("SET temp_file_limit = '100GB'")  # pinned by the hub, superuser-only
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await own.execute(f'DROP DATABASE "{db_b.name}"')
        # Nobody but its owner may connect: PUBLIC's CONNECT was revoked before it opened.
        assert not await own.fetchval("SELECT has_database_privilege($1, $2, 'CONNECT')", b.role, db_a.name)
        assert not await own.fetchval("SELECT has_database_privilege('public', $1, 'CONNECT')", db_b.name)
    finally:
        await own.close()

    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied for database"):
        await connect(a.url, database=db_b.name)  # A's credentials, B's database
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await connect(a.url, database="template1")
    assert sorted(await provisioner.databases(a.username)) == [db_a.name]


async def test_a_learner_resets_their_lesson_database(learners, monkeypatch):
    _, (a, _) = learners
    first = setup_lesson(monkeypatch, a)
    conn = await connect(first.url)
    try:
        await conn.execute("CREATE TABLE notes (id int)")
    finally:
        await conn.close()
    again = setup_lesson(monkeypatch, a)  # a notebook run from the top
    conn = await connect(again.url)
    try:
        assert await conn.fetchval("SELECT to_regclass('notes')") is None
    finally:
        await conn.close()


async def test_connection_limit(learners):
    _, (a, _) = learners
    held = [await connect(a.url) for _ in range(3)]
    try:
        with pytest.raises(asyncpg.TooManyConnectionsError):
            await connect(a.url)
    finally:
        for conn in held:
            await conn.close()


async def test_a_squatted_name_is_dropped_at_the_owners_next_spawn(learners, monkeypatch):
    provisioner, (a, b) = learners
    squat = f"{b.role}__lesson_{LESSON}"
    conn = await connect(a.url)
    try:
        await conn.execute(f'CREATE DATABASE "{squat}"')  # A has CREATEDB and knows B's name
    finally:
        await conn.close()
    with pytest.raises(SetupError, match="belongs to another role"):
        setup_lesson(monkeypatch, b)
    await provisioner.provision(b.username)  # B's next spawn
    assert setup_lesson(monkeypatch, b).name == squat


async def test_the_password_is_stable_and_the_superuser_needs_root(learners, hub_admin_url):
    provisioner, (a, _) = learners
    again = await provisioner.provision(a.username)
    assert again.url == a.url  # same password on every spawn: a kernel that kept it still connects
    superuser = hub_admin_url.set(password="wrong")  # root is let in by `peer`, whatever the password
    conn = await connect(admin.urls.render(superuser))
    await conn.close()
