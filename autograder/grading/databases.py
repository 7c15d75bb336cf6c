"""A database of its own for every graded submission, and a role that can reach nothing else.

Graded code must not see the course's other databases, other submissions or
the server's superuser. With the bundled server, grading therefore uses a
*separate* cluster (in RAM when the machine has a tmpfs to spare, else
`.course/grading-pgdata`) with password authentication:
the sandboxed process only ever learns its own role's password. Each submission:

    CREATE ROLE grade_<pid>_<n> LOGIN PASSWORD … CONNECTION LIMIT 16       -- no superuser, no CREATEDB
    ALTER ROLE … SET statement_timeout / lock_timeout / idle_in_transaction_session_timeout
    CREATE DATABASE grade_<pid>_<n> TEMPLATE lesson template OWNER that role  -- ~25 ms, a file copy
    REVOKE ALL ON DATABASE … FROM PUBLIC                                   -- nobody else connects

and both are dropped when it has been graded. Names carry the grader's pid, so
databases left by a grader that was killed are found and dropped by the next run.
With GRADING_DATABASE_URL (an external server, e.g. docker compose's) the same
is done on that server, but whether other roles can log in there is up to its
pg_hba.conf: the run says so.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from sqlalchemy.engine import URL, make_url

from autograder.db import admin
from autograder.db import url as urls
from autograder.db.embedded import EmbeddedPostgres, pid_alive

NAME_PREFIX = "grade_"
ENV_GRADING_URL = "GRADING_DATABASE_URL"
_NAME = re.compile(r"^grade_(\d+)_(\d+)$")
STATEMENT_TIMEOUT = "10s"
CONNECTION_LIMIT = 16


@dataclass(frozen=True)
class SubmissionDatabase:
    name: str
    role: str
    url: str  # asyncpg URL for the submission's role, password included

    def __repr__(self) -> str:
        return f"SubmissionDatabase({self.name!r})"


RAM_FOLDER = Path("/dev/shm")
RAM_NEEDED = 2 * 1024**3  # the cluster is ~200 MB; leave room for many submissions' databases


def _ram_backed(folder: Path) -> bool:
    """A tmpfs with room to spare (Docker's default /dev/shm is 64 MB: not that)."""
    try:
        with open("/proc/self/mounts") as mounts:
            on_tmpfs = any(line.split()[1:3] == [str(folder), "tmpfs"] for line in mounts)
        free = os.statvfs(folder)
    except OSError:
        return False
    return on_tmpfs and free.f_bavail * free.f_frsize >= RAM_NEEDED


OWNER_FILE = "course-state"  # which course's state folder a RAM cluster belongs to


def _claim(home: Path, state: Path) -> None:
    home.mkdir(parents=True, exist_ok=True)
    owner = home / OWNER_FILE
    if not owner.exists():
        owner.write_text(str(state))


def sweep_orphaned_ram_clusters() -> list[Path]:
    """Remove RAM clusters whose course state folder is gone (a deleted checkout, a test
    run's temporary course): nothing else would ever free that memory. Never one that runs."""
    removed = []
    for home in sorted(RAM_FOLDER.glob("autograder-*")):
        owner = home / OWNER_FILE
        try:
            state = Path(owner.read_text().strip())
        except OSError:
            continue  # not ours, or being made right now
        if state.exists():
            continue
        cluster = EmbeddedPostgres(home / "grading-pgdata")
        if cluster.status() is not None:
            continue
        shutil.rmtree(home, ignore_errors=True)
        removed.append(home)
    return removed


def grading_cluster() -> EmbeddedPostgres:
    state = urls.state_dir()
    tag = hashlib.sha256(str(state / "grading-pgdata").encode()).hexdigest()[:12]
    # Every submission's database is created (~300 files copied) and dropped again. On a
    # disk filesystem that churn is kernel time: ext4's inode allocator slows down
    # with every recently deleted inode (measured: PostgreSQL 3.5-5 CPU-s per 40
    # submissions on ext4, 1.8 s on tmpfs; the whole run 7.1 s -> 5.5 s). Nothing in
    # this cluster outlives a run, so it lives in RAM when the machine has a roomy tmpfs;
    # after a reboot it is simply made again (~2 s).
    if _ram_backed(RAM_FOLDER):
        home = RAM_FOLDER / f"autograder-{tag}"
        data_dir = home / "grading-pgdata"
        _claim(home, state)
    else:
        data_dir = state / "grading-pgdata"
    if os.geteuid() == 0:
        # Outside the course folder, which the sandbox hides; short enough for a socket path.
        socket_dir = Path("/run") / f"autograder-pg-{tag}"
    else:
        socket_dir = state / "grading-run"
    # Everything in this cluster is thrown away after grading, so it need not survive a
    # power cut: without fsync, the checkpoint each DROP DATABASE forces costs
    # milliseconds instead of stalling the run (measured: 270 ms to 1.5 s per drop), and
    # wal_level=minimal writes no WAL for what a transaction creates and fills itself.
    # scram_iterations (PostgreSQL 16+): each submission's role gets a fresh random 144-bit
    # password that lives for one submission; PBKDF2 stretching protects guessable
    # passwords and only costs both sides ~1 ms on every connection a lesson opens.
    throwaway = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off",
                 "wal_level": "minimal", "max_wal_senders": "0", "scram_iterations": "1"}
    return EmbeddedPostgres(data_dir, password_file=state / "grading-pg.password", socket_dir=socket_dir,
                            settings=throwaway)


class GradingDatabases:
    """Creates and drops per-submission databases on the grading server."""

    def __init__(self, admin_url: URL, *, isolated_server: bool):
        self.admin_url = admin_url
        self.isolated_server = isolated_server  # False: an external server whose auth we do not control
        self.pid = os.getpid()
        self._seq = 0
        self._conn: asyncpg.Connection | None = None
        self._lock = asyncio.Lock()
        # Drops go through a connection of their own so that the next submission's
        # database can be created meanwhile (a drop waits for a checkpoint).
        self._drop_conn: asyncpg.Connection | None = None
        self._drop_lock = asyncio.Lock()
        self.live: set[str] = set()

    @classmethod
    def open_for_run(cls) -> tuple["GradingDatabases", EmbeddedPostgres | None]:
        # Not DATABASE_URL: that is the learners' server (trusting local logins on the
        # bundled one). Grading uses its own password-protected cluster unless an
        # instructor names a server for it explicitly.
        raw = os.environ.get(ENV_GRADING_URL, "").strip()
        if raw:
            return cls(urls.normalize(raw), isolated_server=False), None
        sweep_orphaned_ram_clusters()
        cluster = grading_cluster()
        info = cluster.acquire()
        return cls(make_url(info.url("postgres")), isolated_server=True), cluster

    async def connect(self) -> None:
        self._conn = await admin.connect(self.admin_url)
        self._drop_conn = await admin.connect(self.admin_url)
        if self.isolated_server:
            # Submissions may connect to their own database only.
            await self._conn.execute("REVOKE CONNECT ON DATABASE postgres FROM PUBLIC")
            await self._conn.execute("REVOKE CONNECT ON DATABASE template1 FROM PUBLIC")

    async def close(self) -> None:
        for conn in (self._conn, self._drop_conn):
            if conn is not None:
                await conn.close()
        self._conn = self._drop_conn = None

    async def template_for(self, lesson: str) -> str:
        name = admin.check_identifier(f"course_tpl_{re.sub(r'[^a-z0-9_]', '_', lesson.lower())}"[:63])
        async with self._lock:
            exists = await self._conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
            if not exists:
                try:
                    await self._conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0 ENCODING \'UTF8\'')
                except asyncpg.DuplicateDatabaseError:
                    pass  # another grader on this cluster made it first
                await self._conn.execute(f'REVOKE ALL ON DATABASE "{name}" FROM PUBLIC')
        return name

    async def create(self, lesson: str) -> SubmissionDatabase:
        template = await self.template_for(lesson)
        async with self._lock:
            self._seq += 1
            name = f"{NAME_PREFIX}{self.pid}_{self._seq}"
            password = secrets.token_urlsafe(18)
            self.live.add(name)
            conn = self._conn
            # One round trip for the role and its settings (one implicit transaction: all or none).
            await conn.execute(
                f'CREATE ROLE "{name}" LOGIN PASSWORD \'{password}\' NOSUPERUSER NOCREATEDB NOCREATEROLE '
                f"NOREPLICATION CONNECTION LIMIT {CONNECTION_LIMIT};"
                + "".join(f"ALTER ROLE \"{name}\" SET {setting} = '{value}';"
                          for setting, value in (("statement_timeout", STATEMENT_TIMEOUT), ("lock_timeout", "5s"),
                                                 ("idle_in_transaction_session_timeout", "30s")))
            )
            # FILE_COPY copies the template's few files (4.5 ms) instead of WAL-logging each of
            # their blocks (PostgreSQL 15+'s default: 9-11 ms, measured). It checkpoints first,
            # which costs nothing on our cluster (no fsync) but could stall a real server.
            strategy = " STRATEGY FILE_COPY" if self.isolated_server else ""
            await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}" OWNER "{name}"{strategy}')
            await conn.execute(f'REVOKE ALL ON DATABASE "{name}" FROM PUBLIC;'
                               f'GRANT CONNECT, TEMPORARY ON DATABASE "{name}" TO "{name}"')
        url = self.admin_url.set(username=name, password=password, database=name)
        return SubmissionDatabase(name=name, role=name, url=urls.render(url))

    async def drop(self, name: str) -> None:
        async with self._drop_lock:
            await self._drop(name)
            self.live.discard(name)

    async def _drop(self, name: str) -> None:
        await self._drop_conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await self._drop_conn.execute(f'DROP ROLE IF EXISTS "{name}"')

    async def drop_all_of_this_run(self) -> None:
        for name in sorted(self.live):
            await self.drop(name)

    async def sweep_stale(self) -> list[str]:
        """Drop databases and roles left by graders that are no longer running."""
        rows = await self._conn.fetch(
            "SELECT datname AS name FROM pg_database WHERE datname LIKE 'grade\\_%' "
            "UNION SELECT rolname FROM pg_roles WHERE rolname LIKE 'grade\\_%'"
        )
        dropped = []
        for row in rows:
            match = _NAME.match(row["name"])
            if not match:
                continue
            pid = int(match.group(1))
            if pid == self.pid or pid_alive(pid):
                continue
            async with self._drop_lock:
                await self._drop(row["name"])
            dropped.append(row["name"])
        return sorted(set(dropped))

    async def names(self) -> list[str]:
        rows = await self._conn.fetch("SELECT datname FROM pg_database WHERE datname LIKE 'grade\\_%'")
        return sorted(r["datname"] for r in rows)
