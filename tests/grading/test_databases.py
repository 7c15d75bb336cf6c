"""Where the grading cluster lives, and that RAM it no longer needs is given back."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from pathlib import Path
from typing import ClassVar

import asyncpg
import pytest

from autograder.db.admin import asyncpg_params
from autograder.errors import SetupError
from autograder.grading import databases


def test_a_plain_folder_is_not_taken_for_ram(tmp_path):
    # Only a tmpfs *mount point* with room to spare counts; a folder inside one does not.
    assert databases._ram_backed(tmp_path) is False
    assert databases._ram_backed(tmp_path / "missing") is False


def test_the_cluster_lives_in_ram_only_when_ram_is_roomy(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "state"))
    monkeypatch.setattr(databases, "RAM_FOLDER", tmp_path / "shm")
    monkeypatch.setattr(databases, "_ram_backed", lambda folder: False)
    assert databases.grading_cluster().data_dir == tmp_path / "state" / "grading-pgdata"

    monkeypatch.setattr(databases, "_ram_backed", lambda folder: True)
    data_dir = databases.grading_cluster().data_dir
    assert data_dir.parent.parent == tmp_path / "shm"
    assert data_dir.name == "grading-pgdata"
    # it records whose it is, so an orphan can be recognised later
    assert (data_dir.parent / databases.OWNER_FILE).read_text() == str(tmp_path / "state")
    # the password stays with the course, not in RAM: a reboot keeps it
    assert databases.grading_cluster().password_file == tmp_path / "state" / "grading-pg.password"


def test_orphaned_ram_clusters_are_removed_and_nothing_else(monkeypatch, tmp_path):
    shm = tmp_path / "shm"
    monkeypatch.setattr(databases, "RAM_FOLDER", shm)
    alive_state = tmp_path / "checkout" / ".course"
    alive_state.mkdir(parents=True)

    def home(name: str, owner: Path | None) -> Path:
        folder = shm / name
        (folder / "grading-pgdata").mkdir(parents=True)
        if owner is not None:
            (folder / databases.OWNER_FILE).write_text(str(owner))
        return folder

    orphan = home("autograder-aaaa", tmp_path / "deleted-checkout" / ".course")
    kept = home("autograder-bbbb", alive_state)
    unknown = home("autograder-cccc", None)  # no owner file: not ours to judge
    other = shm / "someone-else"
    other.mkdir()

    assert databases.sweep_orphaned_ram_clusters() == [orphan]
    assert not orphan.exists()
    assert kept.exists() and unknown.exists() and other.exists()


def test_a_running_cluster_is_never_swept(monkeypatch, tmp_path):
    shm = tmp_path / "shm"
    monkeypatch.setattr(databases, "RAM_FOLDER", shm)
    folder = shm / "autograder-dddd"
    (folder / "grading-pgdata").mkdir(parents=True)
    (folder / databases.OWNER_FILE).write_text(str(tmp_path / "gone"))
    monkeypatch.setattr(databases.EmbeddedPostgres, "status", lambda self: object())
    assert databases.sweep_orphaned_ram_clusters() == []
    assert folder.exists()


@pytest.mark.parametrize(("size", "expected"), [(64 * 1024**2, False), (4 * 1024**3, True)])
def test_a_small_tmpfs_is_not_used(monkeypatch, tmp_path, size, expected):
    """Docker gives containers a 64 MB /dev/shm: the cluster would not fit."""
    mounts = tmp_path / "mounts"
    mounts.write_text(f"tmpfs {tmp_path} tmpfs rw 0 0\n")
    real_open = open

    def fake_open(path, *args, **kwargs):
        return real_open(mounts if path == "/proc/self/mounts" else path, *args, **kwargs)

    class Stat:
        f_bavail = size // 4096
        f_frsize = 4096

    monkeypatch.setattr("builtins.open", fake_open)
    monkeypatch.setattr(databases.os, "statvfs", lambda folder: Stat())
    assert databases._ram_backed(tmp_path) is expected


# ---------------------------------------------------------------- the grading server, live
# Each test below opens the real grading cluster (a test of its own pid's roles only), gives a
# submission a database, and attacks from that submission's role with what its URL allows.

LESSON = "00_foundations"


@contextlib.asynccontextmanager
async def grading(limits: databases.Limits | None = None):
    dbs, cluster = databases.GradingDatabases.open_for_run()
    if limits is not None:
        dbs.limits = limits
        dbs._role_settings = dbs._settings(pinned=True)
    try:
        await dbs.connect()
        yield dbs
    finally:
        with contextlib.suppress(Exception):
            await dbs.drop_all_of_this_run()
        await dbs.close()
        if cluster is not None:
            cluster.release()


async def connect_as(db: databases.SubmissionDatabase, database: str | None = None) -> asyncpg.Connection:
    params = asyncpg_params(db.url)
    if database is not None:
        params["database"] = database
    return await asyncpg.connect(**params)


async def test_a_role_gets_into_its_own_database_only():
    async with grading() as dbs:
        mine, neighbour = await dbs.create(LESSON), await dbs.create(LESSON)
        conn = await connect_as(mine)
        assert await conn.fetchval("SELECT current_database()") == mine.name
        await conn.close()
        template = await dbs.template_for(LESSON)
        for other in (neighbour.name, template, "postgres", "template1", "template0"):
            with pytest.raises(asyncpg.InvalidAuthorizationSpecificationError, match=r"no pg_hba\.conf entry"):
                await connect_as(mine, other)


async def test_a_new_database_admits_nobody_until_its_privileges_are_set():
    """CREATE DATABASE grants CONNECT to PUBLIC; until the REVOKE the database is closed to all."""
    seen = []
    async with grading() as dbs:
        real = dbs._conn

        class Watching:  # the admin connection, looking at the database just before the REVOKE
            def __getattr__(self, name):
                return getattr(real, name)

            async def execute(self, sql, *args, **kwargs):
                if sql.startswith('REVOKE ALL ON DATABASE "grade_'):
                    name = sql.split('"')[1]
                    seen.append(await real.fetchval("SELECT datallowconn FROM pg_database WHERE datname = $1", name))
                    with pytest.raises(asyncpg.ObjectNotInPrerequisiteStateError, match="not currently accepting"):
                        await asyncpg.connect(**{**asyncpg_params(dbs.admin_url), "database": name})  # not the admin
                return await real.execute(sql, *args, **kwargs)

        dbs._conn = Watching()
        mine = await dbs.create(LESSON)
        dbs._conn = real
        assert seen == [False]
        row = await dbs._conn.fetchrow(
            "SELECT datallowconn, datacl::text AS acl FROM pg_database WHERE datname = $1", mine.name
        )
        assert row["datallowconn"] and "=" + "c" not in row["acl"].replace(mine.name, "")  # no PUBLIC entry


@contextlib.asynccontextmanager
async def own_template(dbs: databases.GradingDatabases):
    """A lesson name and template of this test's own: opening a template to let an intruder in must
    not disturb other graders on the cluster (they would make a template they find open again)."""
    lesson = f"test_{os.getpid()}_{time.monotonic_ns()}"
    template = await dbs.template_for(lesson)
    try:
        yield lesson, template
    finally:
        conn = dbs._conn
        assert conn is not None, "the grading databases are open"
        await conn.execute(f'ALTER DATABASE "{template}" IS_TEMPLATE false')
        await conn.execute(f'DROP DATABASE "{template}" WITH (FORCE)')


async def test_templates_are_closed_and_an_open_one_is_made_again():
    async with grading() as dbs, own_template(dbs) as (lesson, template):
        row = await dbs._conn.fetchrow(
            "SELECT datallowconn, datistemplate FROM pg_database WHERE datname = $1", template
        )
        assert (row["datallowconn"], row["datistemplate"]) == (False, True)
        # A template left open by an older grader, with an intruder's table in it:
        await dbs._conn.execute(f'ALTER DATABASE "{template}" ALLOW_CONNECTIONS true')
        intruder = await asyncpg.connect(**{**asyncpg_params(dbs.admin_url), "database": template})
        await intruder.execute("CREATE TABLE planted (x int)")
        dbs._templates.clear()
        assert await dbs.template_for(lesson) == template
        assert intruder.is_closed() or not await _alive(intruder)
        clone = await dbs.create(lesson)
        conn = await connect_as(clone)
        assert await conn.fetchval("SELECT to_regclass('planted')") is None
        await conn.close()


async def _alive(conn: asyncpg.Connection) -> bool:
    try:
        await conn.fetchval("SELECT 1")
        return True
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
        return False


async def test_an_intruder_in_the_template_is_ended_and_a_busy_template_is_a_grader_failure(monkeypatch):
    async with grading() as dbs, own_template(dbs) as (lesson, template):
        await dbs._conn.execute(f'ALTER DATABASE "{template}" ALLOW_CONNECTIONS true')
        try:
            intruder = await asyncpg.connect(**{**asyncpg_params(dbs.admin_url), "database": template})
            await dbs.create(lesson)  # the intruder is ended, the clone made
            assert not await _alive(intruder)
            intruder = await asyncpg.connect(**{**asyncpg_params(dbs.admin_url), "database": template})

            async def ends_nobody(database):
                return 0

            monkeypatch.setattr(dbs, "_end_backends_in", ends_nobody)
            monkeypatch.setattr(databases.asyncio, "sleep", _no_sleep)
            with pytest.raises(databases.GraderFailure, match="could not create database"):
                await dbs.create(lesson)
            await intruder.close()
        finally:
            await dbs._conn.execute(f'ALTER DATABASE "{template}" ALLOW_CONNECTIONS false')


_real_sleep = asyncio.sleep


async def _no_sleep(seconds):
    await _real_sleep(0)


async def test_superuser_only_limits_cannot_be_lifted_by_the_role():
    async with grading() as dbs:
        mine = await dbs.create(LESSON)
        conn = await connect_as(mine)
        assert await conn.fetchval("SHOW temp_file_limit") == "64MB"
        for sql in (
            "SET temp_file_limit = -1",
            "ALTER ROLE CURRENT_USER SET temp_file_limit = -1",
            "SET track_activities = off",
            "ALTER ROLE CURRENT_USER CONNECTION LIMIT -1",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(sql)
        # RESET ALL resets only what the role may set itself
        await conn.execute("ALTER ROLE CURRENT_USER RESET ALL")
        again = await connect_as(mine)
        assert await again.fetchval("SHOW temp_file_limit") == "64MB"
        await again.close()
        # nor through its own database, which it owns
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(
                f'ALTER DATABASE "{await conn.fetchval("SELECT current_database()")}" SET temp_file_limit = -1'
            )
        await conn.execute("SET work_mem = '64kB'")
        with pytest.raises(asyncpg.ConfigurationLimitExceededError, match="temp_file_limit"):
            await conn.fetchval(
                "SELECT count(*) FROM (SELECT g, md5(g::text) FROM generate_series(1, 3000000) g ORDER BY 2) s"
            )
        await conn.close()


async def _until(predicate, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await predicate():
            return True
        await asyncio.sleep(0.1)
    return False


async def test_the_watchdog_ends_a_statement_whose_timeout_was_lifted():
    async with grading(databases.Limits(statement_seconds=1.0)) as dbs:
        mine = await dbs.create(LESSON)
        conn = await connect_as(mine)
        await conn.execute("SET statement_timeout = 0")
        started = time.monotonic()
        with pytest.raises((asyncpg.AdminShutdownError, asyncpg.ConnectionDoesNotExistError)):
            await conn.fetchval("SELECT pg_sleep(30)")
        assert time.monotonic() - started < 5
        assert any("ran longer than 1 s" in e for e in dbs.watchdog_events(mine.name))


async def test_the_watchdog_ends_a_transaction_left_open_whatever_the_role_set():
    async with grading(databases.Limits(transaction_seconds=1.0)) as dbs:
        mine = await dbs.create(LESSON)
        conn = await connect_as(mine)
        await conn.execute("SET idle_in_transaction_session_timeout = 0; BEGIN; SELECT 1")
        await asyncio.sleep(2.5)
        with pytest.raises((asyncpg.AdminShutdownError, asyncpg.ConnectionDoesNotExistError, asyncpg.InterfaceError)):
            await conn.fetchval("SELECT 1")
        assert any("stayed open longer than 1 s" in e for e in dbs.watchdog_events(mine.name))


async def test_the_watchdog_ends_a_backend_that_takes_too_much_memory():
    async with grading(databases.Limits(backend_memory=64 * databases.MiB)) as dbs:
        mine = await dbs.create(LESSON)
        conn = await connect_as(mine)
        await conn.execute("SET work_mem = '1GB'")
        with pytest.raises((asyncpg.AdminShutdownError, asyncpg.ConnectionDoesNotExistError)):
            # ~400 MB sorted in memory if nobody stops it
            await conn.fetchval(
                "SELECT count(*) FROM (SELECT g, md5(g::text) FROM generate_series(1, 4000000) g ORDER BY 2) s"
            )
        assert any("MiB of server memory (limit 64 MiB)" in e for e in dbs.watchdog_events(mine.name))


async def test_the_watchdog_closes_a_database_that_grows_past_its_cap():
    async with grading(databases.Limits(database_size=48 * databases.MiB)) as dbs:
        mine = await dbs.create(LESSON)
        conn = await connect_as(mine)

        async def fill() -> None:
            await conn.execute(
                "CREATE TABLE filler AS SELECT g, repeat('x', 200) AS pad FROM generate_series(1, 200000) g"
            )  # ~50 MB
            for _ in range(20):  # and on, until the watchdog notices
                await conn.execute("INSERT INTO filler SELECT * FROM filler LIMIT 200000")
                await asyncio.sleep(0.2)

        with pytest.raises((asyncpg.AdminShutdownError, asyncpg.ConnectionDoesNotExistError, asyncpg.InterfaceError)):
            await fill()
        assert any("grew to" in e and "limit 48 MiB" in e for e in dbs.watchdog_events(mine.name))
        with pytest.raises(asyncpg.InvalidAuthorizationSpecificationError, match="not permitted to log in"):
            await connect_as(mine)


async def test_ending_a_submission_ends_every_backend_of_its_role():
    async with grading() as dbs:
        mine = await dbs.create(LESSON)
        conns = [await connect_as(mine) for _ in range(3)]
        sleeping = asyncio.ensure_future(conns[0].fetchval("SELECT pg_sleep(60)"))
        await asyncio.sleep(0.3)
        await dbs.end_submission(mine.name)
        with pytest.raises((asyncpg.AdminShutdownError, asyncpg.ConnectionDoesNotExistError)):
            await asyncio.wait_for(sleeping, 5)
        count = await dbs._conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE usename = $1", mine.name)
        assert count == 0
        await dbs.drop(mine.name)


async def test_a_role_that_would_have_powers_is_refused(monkeypatch):
    real = databases.GradingDatabases._create_role

    async def with_a_risky_membership(self, name, password):
        await real(self, name, password)
        await self._conn.execute(f'GRANT pg_execute_server_program TO "{name}"')

    monkeypatch.setattr(databases.GradingDatabases, "_create_role", with_a_risky_membership)
    with pytest.raises(SetupError, match=r"Refusing to grade.*pg_execute_server_program"):
        async with grading():
            pass


async def test_an_external_server_gets_the_same_databases_and_pinned_limits():
    # A server we do not own: no FILE_COPY, the same closed creation and pinned settings. (Whether
    # its socket trusts local logins no longer matters: submissions reach it only through a relay
    # that admits their own role on their own database, see test_dbproxy.)
    dbs, cluster = databases.GradingDatabases.open_for_run()
    try:
        external = databases.GradingDatabases(dbs.admin_url, isolated_server=False)
        await external.connect()
        mine = await external.create(LESSON)
        conn = await connect_as(mine)
        assert await conn.fetchval("SHOW temp_file_limit") == "64MB"
        await conn.close()
        await external.drop(mine.name)
        await external.close()
    finally:
        cluster.release()


async def test_temporary_files_count_against_the_database_cap():
    """temp_file_limit is per backend; the cap counts every backend's temporary files as its database's."""
    async with grading(databases.Limits(database_size=48 * databases.MiB, temp_file_limit="400MB")) as dbs:
        mine = await dbs.create(LESSON)
        conn = await connect_as(mine)
        await conn.execute("SET work_mem = '64kB'")
        with pytest.raises((asyncpg.AdminShutdownError, asyncpg.ConnectionDoesNotExistError)):
            await conn.fetchval(
                "SELECT count(*) FROM (SELECT g, repeat(md5(g::text), 16) AS pad "
                "FROM generate_series(1, 600000) g ORDER BY pad) s"
            )  # ~320 MB spilled
        assert any("grew to" in e for e in dbs.watchdog_events(mine.name))


@pytest.mark.skipif(not databases.CpuGroups.available(), reason="needs root and the cgroup v1 cpu controller")
async def test_a_submission_s_backends_share_one_cpu_group():
    async with grading() as dbs:
        mine = await dbs.create(LESSON)
        conns = [await connect_as(mine) for _ in range(3)]
        pids = {await c.fetchval("SELECT pg_backend_pid()") for c in conns}
        group = dbs.watchdog.cpu.base / mine.name

        async def all_moved():
            return group.exists() and pids <= {int(p) for p in (group / "cgroup.procs").read_text().split()}

        assert await _until(all_moved, 5)
        assert int((group / "cpu.cfs_quota_us").read_text()) == int(dbs.limits.backend_cpus * 100_000)
        for c in conns:
            await c.close()
        await dbs.drop(mine.name)
        assert not group.exists()
    assert not dbs_cpu_base_exists(dbs)


def dbs_cpu_base_exists(dbs) -> bool:
    return (databases.CpuGroups.ROOT / f"autograder-db-{dbs.pid}").exists()


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


@pytest.mark.skipif(not databases.CpuGroups.available(), reason="needs root and the cgroup v1 cpu controller")
async def test_busy_backends_together_get_no_more_than_their_cpu_share():
    async with grading(databases.Limits(backend_cpus=0.25)) as dbs:
        mine = await dbs.create(LESSON)
        conns = [await connect_as(mine) for _ in range(4)]
        pids = [await c.fetchval("SELECT pg_backend_pid()") for c in conns]
        await asyncio.sleep(0.5)  # the watchdog moves them into the submission's group
        work = [
            asyncio.ensure_future(c.fetchval("SELECT count(*) FROM (SELECT generate_series(1, 10000000000)) s"))
            for c in conns
        ]
        await asyncio.sleep(0.3)
        before, started = sum(_cpu_seconds(p) for p in pids), time.monotonic()
        await asyncio.sleep(3)
        used, elapsed = sum(_cpu_seconds(p) for p in pids) - before, time.monotonic() - started
        await dbs.end_submission(mine.name)
        await asyncio.gather(*work, return_exceptions=True)
        # 4 busy backends could take every core (measured without the group: 2.4 CPU-s in 3 s on a
        # loaded 2-core machine); their group gives them a quarter of one
        assert used <= 0.25 * elapsed * 1.25 + 0.2, f"{used:.2f} CPU-s in {elapsed:.2f} s"


async def test_on_a_server_whose_rules_are_not_ours_a_role_elsewhere_is_ended():
    """An external server may admit PUBLIC into `postgres` (our cluster's hba never lets a role
    there, so this is checked on what pg_stat_activity would say)."""

    class Conn:
        terminated: ClassVar[list[int]] = []

        async def fetch(self, sql, *args):
            return [
                {
                    "pid": 41,
                    "usename": "grade_1_2",
                    "datname": "postgres",
                    "state": "idle",
                    "statement_s": 0.1,
                    "xact_s": None,
                },
                {
                    "pid": 42,
                    "usename": "grade_1_2",
                    "datname": "grade_1_2",
                    "state": "idle",
                    "statement_s": 0.1,
                    "xact_s": None,
                },
            ]

        async def execute(self, sql, *args):
            self.terminated.append(args[0])

    watchdog = databases.Watchdog(None, Conn(), 1, databases.Limits(size_every=10**9), local_backends=False)
    await watchdog.check()
    assert Conn.terminated == [41]
    assert watchdog.events["grade_1_2"] == [
        "a database connection to 'postgres', not its own database: the grader ended it"
    ]
