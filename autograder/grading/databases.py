"""A database of its own for every graded submission, and a role that can reach nothing else.

Graded code must not see the course's other databases, other submissions or
the server's superuser, nor take the server's memory, disk or CPU from the
submissions graded beside it. With the bundled server, grading therefore uses a
*separate* cluster (in RAM when the machine has a tmpfs to spare, on a tmpfs of
its own with a size limit when we are root, else `.course/grading-pgdata`) with
password authentication and a pg_hba.conf that lets a submission's role into the
database of the same name only (`sameuser`): the sandboxed process only ever learns
its own role's password, and that password opens one database. Each submission:

    CREATE ROLE grade_<pid>_<n> LOGIN PASSWORD … CONNECTION LIMIT 16       -- no superuser, no CREATEDB
    ALTER ROLE … SET statement_timeout / lock_timeout / …                  -- defaults it may lift
    ALTER ROLE … SET temp_file_limit / track_activities                    -- superuser-only: it cannot
    CREATE DATABASE grade_<pid>_<n> TEMPLATE lesson template OWNER that role ALLOW_CONNECTIONS false
    REVOKE ALL … FROM PUBLIC; GRANT CONNECT … TO that role; ALTER DATABASE … ALLOW_CONNECTIONS true

so no other role is ever let in, not even between CREATE DATABASE and the REVOKE
(a new database grants CONNECT to PUBLIC), on any server. Lesson templates are
empty, `IS_TEMPLATE` and never open to connections; anyone found inside one is
ended before it is cloned. A watchdog on the admin loop (`Watchdog`) enforces
what a role setting cannot: it ends a backend whose statement or transaction
overruns, whose private memory passes a cap (local cluster: /proc), and every
backend of a submission whose database (with its temporary files) passes a size
cap; what it ended is kept for the verdict (`watchdog_events`). All of a
submission's backends are ended before its database and role are dropped.

Names carry the grader's pid, so databases left by a grader that was killed are
found and dropped by the next run. With GRADING_DATABASE_URL (an external server,
e.g. docker compose's) the same is done on that server; we cannot write its
pg_hba.conf, so the run refuses to start when that server lets a role in without a
password, or when a submission's role would have powers it must not have.
A failure on the grader's side (the server, a template) raises `GraderFailure`:
the submission is then not graded at all (retried by the next run), never scored 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import re
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from sqlalchemy.engine import URL, make_url

from autograder.db import admin
from autograder.db import url as urls
from autograder.db.embedded import SUPERUSER, EmbeddedPostgres, pid_alive
from autograder.errors import SetupError

logger = logging.getLogger(__name__)

NAME_PREFIX = "grade_"
ENV_GRADING_URL = "GRADING_DATABASE_URL"
_NAME = re.compile(r"^grade_(\d+)_(\d+)$")
MiB = 1024**2
STATEMENT_TIMEOUT = "10s"
CONNECTION_LIMIT = 16
CREATE_ATTEMPTS = 3
# The built-in roles a submission's role must be a member of none of, and end_role: shared with the
# workshop hub's per-learner roles (autograder/db/admin.py).
RISKY_ROLES = admin.RISKY_ROLES
end_role = admin.end_role

# The grading cluster's whole pg_hba.conf: the admin anywhere, a submission's role only in
# the database named like it, nobody without a password; no `host` lines (unix socket only).
GRADING_HBA = f"""\
# Written by the grader (autograder/grading/databases.py); rewritten on every start.
# TYPE  DATABASE  USER       METHOD
local   all       {SUPERUSER}   scram-sha-256
local   sameuser  all        scram-sha-256
"""


class GraderFailure(Exception):
    """The grader could not give a submission its database (a server or template problem,
    not the submission's doing): record nothing for it, the next run grades it."""


@dataclass(frozen=True)
class Limits:
    """What one submission may take from the grading server. The role settings are defaults
    it may lift (USERSET) or pinned ones it may not (superuser-only); the rest is enforced
    by the watchdog from outside."""

    # Measured over every lesson's solution in a class run: lessons 04 (the 200-request storm)
    # and 11 peak at 16 connections (a default pool of 5 + 10, and the check's own), lesson 07
    # at a 25 MiB database; no backend above 6 MiB of private memory. The caps leave ~10x room.
    connections: int = CONNECTION_LIMIT
    statement_timeout: str = STATEMENT_TIMEOUT  # the role's default; `SET statement_timeout = 0` lifts it
    statement_seconds: float = 15.0  # ... so the watchdog ends any statement running longer
    transaction_seconds: float = 120.0  # and any transaction open longer (cells have 60 s each)
    temp_file_limit: str = "64MB"  # per backend, pinned: a sort or hash cannot spill more
    backend_memory: int = 256 * MiB  # private memory (RssAnon) of one backend: `SET work_mem = '4GB'`
    database_size: int = 256 * MiB  # the database plus its backends' temporary files
    backend_cpus: float = 1.0  # CPU cores all of a submission's backends share (local cluster, root)
    poll_seconds: float = 0.2
    size_every: int = 5  # sizes are read every 5th poll (each stats the database's files)


@dataclass(frozen=True)
class SubmissionDatabase:
    name: str
    role: str
    url: str  # asyncpg URL for the submission's role, password included

    def __repr__(self) -> str:
        return f"SubmissionDatabase({self.name!r})"


RAM_FOLDER = Path("/dev/shm")
RAM_NEEDED = 2 * 1024**3  # the cluster is ~200 MB; leave room for many submissions' databases
RAM_LIMIT = 2 * 1024**3  # the size of the cluster's own tmpfs (root): it can never fill the host's RAM


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


def _umount(folder: Path) -> None:
    if os.path.ismount(folder):
        subprocess.run(["umount", "-l", str(folder)], capture_output=True, check=False)


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
        _umount(cluster.data_dir)  # its own tmpfs (see limit_cluster_size)
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
    throwaway = {
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
        "wal_level": "minimal",
        "max_wal_senders": "0",
        "scram_iterations": "1",
        # Bounded by the server, whatever a submission SETs: WAL kept between
        # checkpoints (default 1 GB), and parallel workers (a `SET
        # max_parallel_workers_per_gather` multiplies one backend's CPU).
        "max_wal_size": "256MB",
        "max_worker_processes": "4",
        "max_parallel_workers_per_gather": "0",
    }
    return EmbeddedPostgres(
        data_dir,
        password_file=state / "grading-pg.password",
        socket_dir=socket_dir,
        settings=throwaway,
        hba=GRADING_HBA,
    )


def limit_cluster_size(cluster: EmbeddedPostgres, size: int = RAM_LIMIT) -> str | None:
    """Put a RAM cluster's data folder on a tmpfs of its own, `size` bytes at most, so that
    nothing in it (tables, WAL, temporary files) can fill the machine's memory. Needs root;
    returns why it could not (None when the limit is in place)."""
    if RAM_FOLDER not in cluster.data_dir.parents:
        return None  # on disk: the file system's own size is the limit
    if os.path.ismount(cluster.data_dir):
        return None
    if os.geteuid() != 0:
        return "the RAM grading cluster has no size limit of its own (mounting a tmpfs needs root)"
    with cluster._locked():
        if cluster.status() is not None:
            return "the RAM grading cluster was started without a size limit; it gets one at its next start"
        # The cluster is thrown away anyway (made again in ~2 s; its password is kept elsewhere).
        shutil.rmtree(cluster.data_dir, ignore_errors=True)
        cluster.data_dir.mkdir(parents=True)
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(cluster.data_dir)],
            capture_output=True,
            text=True,
            check=False,
        )
    if mounted.returncode != 0:
        return f"the RAM grading cluster has no size limit of its own (mount failed: {mounted.stderr.strip()})"
    logger.info("grading cluster on its own tmpfs of %d MiB at %s", size // MiB, cluster.data_dir)
    return None


def _private_memory(pid: int) -> int | None:
    """A local backend's private memory in bytes (RssAnon: its sorts, hashes and caches;
    not the shared buffers every backend maps, which VmRSS would count too)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None


class CpuGroups:
    """A CPU cgroup per submission (cgroup v1 `cpu` controller) that its backends are moved
    into: the kernel then shares the CPU between submissions, not between backends, so 15
    busy backends of one submission get what one process would, and together at most
    `cpus` cores. Lesson 04's storm keeps 15 backends active, so fewer connections is not
    the fix. Needs root and the v1 controller; `available()` says whether it can be used."""

    ROOT = Path("/sys/fs/cgroup/cpu")
    PERIOD_US = 100_000

    def __init__(self, pid: int, cpus: float):
        self.base = self.ROOT / f"autograder-db-{pid}"
        self.cpus = cpus
        self.moved: dict[str, set[int]] = {}

    @classmethod
    def available(cls) -> bool:
        return os.geteuid() == 0 and (cls.ROOT / "cpu.cfs_quota_us").exists()

    def add(self, role: str, backend: int) -> None:
        moved = self.moved.setdefault(role, set())
        if backend in moved:
            return
        group = self.base / role
        if not group.exists():
            group.mkdir(parents=True)
            (group / "cpu.cfs_quota_us").write_text(str(int(self.cpus * self.PERIOD_US)))
        with contextlib.suppress(ProcessLookupError):  # (a backend that has just ended)
            (group / "cgroup.procs").write_text(str(backend))
        moved.add(backend)

    def remove(self, role: str) -> None:
        """After the role's backends have ended (a group with processes cannot be removed)."""
        self.moved.pop(role, None)
        with contextlib.suppress(OSError):
            (self.base / role).rmdir()

    @classmethod
    def sweep(cls, keep_pid: int) -> None:
        """Remove the (empty) groups of graders that are no longer running, and our own."""
        for base in cls.ROOT.glob("autograder-db-*"):
            pid = base.name.rsplit("-", 1)[1]
            if not pid.isdigit() or (int(pid) != keep_pid and pid_alive(int(pid))):
                continue
            for group in base.iterdir():
                if group.is_dir():
                    with contextlib.suppress(OSError):
                        group.rmdir()
            with contextlib.suppress(OSError):
                base.rmdir()


class Watchdog:
    """Polls the server for this run's roles and ends what overruns (see `Limits`).

    Runs as a task on the admin loop with a connection of its own; `events` maps a
    submission's name to what was ended, as sentences for its verdict."""

    def __init__(self, admin_url: URL, conn: asyncpg.Connection, pid: int, limits: Limits, *, local_backends: bool):
        self.admin_url = admin_url
        self.conn = conn
        self.pattern = f"{NAME_PREFIX}{pid}\\_%"
        self.limits = limits
        self.local_backends = local_backends  # the server's pids are this machine's: /proc can be read
        self.cpu = CpuGroups(pid, limits.backend_cpus) if local_backends and CpuGroups.available() else None
        self.events: dict[str, list[str]] = {}
        self.blocked: set[str] = set()  # roles shut out for the rest of their submission
        self._task: asyncio.Task[None] | None = None
        self._polls = 0

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="grading-db-watchdog")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.check()
            except asyncio.CancelledError:
                raise
            except Exception:  # a failed poll must not end the watch
                logger.exception("grading database watchdog: a poll failed")
                if self.conn.is_closed():  # the server restarted, or ended us: connect again
                    await asyncio.sleep(1)
                    with contextlib.suppress(SetupError):
                        self.conn = await admin.connect(self.admin_url)
            await asyncio.sleep(self.limits.poll_seconds)

    def _record(self, role: str, what: str) -> None:
        logger.warning("grading database watchdog: %s: %s", role, what)
        events = self.events.setdefault(role, [])
        if what not in events:
            events.append(what)

    async def check(self) -> None:
        """One poll: end overrunning statements and transactions, memory hogs, and every
        backend of a submission whose database grew too large."""
        limits = self.limits
        rows = await self.conn.fetch(
            "SELECT pid, usename, datname, state, extract(epoch FROM now() - query_start) AS statement_s, "
            "extract(epoch FROM now() - xact_start) AS xact_s FROM pg_stat_activity "
            "WHERE usename LIKE $1 AND pid <> pg_backend_pid()",
            self.pattern,
        )
        for row in rows:
            role, pid = row["usename"], row["pid"]
            if self.cpu is not None:
                try:
                    self.cpu.add(role, pid)
                except OSError:  # e.g. the cgroup file system went read-only: fairness off, limits on
                    logger.exception("grading database watchdog: cannot use CPU groups")
                    self.cpu = None
            reason = None
            if row["datname"] not in (role, None):  # (None: still authenticating)
                # Not on our cluster (hba `sameuser`); on an external server whose `postgres` or
                # template1 database admits PUBLIC, a submission has no business there either.
                reason = f"a database connection to {row['datname']!r}, not its own database: the grader ended it"
            elif row["state"] == "active" and (row["statement_s"] or 0) > limits.statement_seconds:
                reason = (
                    f"a database statement ran longer than {limits.statement_seconds:g} s "
                    "(statement_timeout lifted?): the grader ended its connection"
                )
            elif (row["xact_s"] or 0) > limits.transaction_seconds:
                reason = (
                    f"a database transaction stayed open longer than {limits.transaction_seconds:g} s: "
                    "the grader ended its connection"
                )
            elif self.local_backends:
                memory = _private_memory(pid)
                if memory is not None and memory > limits.backend_memory:
                    reason = (
                        f"a database connection used {memory // MiB} MiB of server memory (limit "
                        f"{limits.backend_memory // MiB} MiB): the grader ended it"
                    )
            if reason is not None:
                self._record(role, reason)  # first: the submission may see the end before we return
                await self.conn.execute("SELECT pg_terminate_backend($1)", pid)
        self._polls += 1
        if self._polls % limits.size_every == 0:
            await self._check_sizes()

    async def _check_sizes(self) -> None:
        limits = self.limits
        sizes = {
            r["datname"]: r["size"]
            for r in await self.conn.fetch(
                "SELECT datname, coalesce(pg_database_size(oid), 0) AS size FROM pg_database WHERE datname LIKE $1 "
                "AND datallowconn",
                self.pattern,
            )
        }
        if not sizes:
            return
        try:  # temporary files live outside the database's folder: count them as its own
            temp = await self.conn.fetch(
                "SELECT a.usename, sum(t.size)::bigint AS size FROM pg_ls_tmpdir() t "
                "JOIN pg_stat_activity a ON t.name LIKE 'pgsql_tmp' || a.pid || '.%' "
                "WHERE a.usename LIKE $1 GROUP BY a.usename",
                self.pattern,
            )
        except asyncpg.PostgresError:  # not a superuser / pg_monitor on an external server
            temp = []
        for row in temp:
            if row["usename"] in sizes:
                sizes[row["usename"]] += row["size"]
        for name, size in sizes.items():
            if size > limits.database_size and name not in self.blocked:
                self.blocked.add(name)
                self._record(
                    name,
                    f"the submission's database grew to {size // MiB} MiB (limit "
                    f"{limits.database_size // MiB} MiB): the grader closed it",
                )
                await end_role(self.conn, name)


_GRADER_SIDE = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, asyncio.TimeoutError)


class GradingDatabases:
    """Creates and drops per-submission databases on the grading server."""

    def __init__(
        self, admin_url: URL, *, isolated_server: bool, limits: Limits | None = None, reload_hba: bool = False
    ):
        self.admin_url = admin_url
        self.isolated_server = isolated_server  # False: an external server whose auth we do not control
        self.limits = limits or Limits()
        self.pid = os.getpid()
        self._seq = 0
        self._conn: asyncpg.Connection | None = None
        self._lock = asyncio.Lock()
        # Drops go through a connection of their own so that the next submission's
        # database can be created meanwhile (a drop waits for a checkpoint).
        self._drop_conn: asyncpg.Connection | None = None
        self._drop_lock = asyncio.Lock()
        self._reload_hba = reload_hba  # the running cluster predates GRADING_HBA
        self._templates: set[str] = set()
        self._role_settings = self._settings(pinned=True)
        self.watchdog: Watchdog | None = None
        self.live: set[str] = set()
        self.notes: list[str] = []  # protections that are off on this server, for the run's summary

    @classmethod
    def open_for_run(cls) -> tuple[GradingDatabases, EmbeddedPostgres | None]:
        # Not DATABASE_URL: that is the learners' server (trusting local logins on the
        # bundled one). Grading uses its own password-protected cluster unless an
        # instructor names a server for it explicitly.
        raw = os.environ.get(ENV_GRADING_URL, "").strip()
        if raw:
            return cls(urls.normalize(raw), isolated_server=False), None
        sweep_orphaned_ram_clusters()
        cluster = grading_cluster()
        note = limit_cluster_size(cluster)
        reload_hba = cluster.write_hba()  # a cluster already running gets the rules too
        info = cluster.acquire()
        dbs = cls(make_url(info.url("postgres")), isolated_server=True, reload_hba=reload_hba)
        if note:
            dbs.notes.append(note)
        return dbs, cluster

    # ------------------------------------------------------------------ setup
    async def connect(self) -> None:
        self._conn = await admin.connect(self.admin_url)
        self._drop_conn = await admin.connect(self.admin_url)
        if self.isolated_server:
            if self._reload_hba:
                await self._conn.execute("SELECT pg_reload_conf()")
            # Belt and braces under the hba rules: no role but the admin in these two.
            await self._conn.execute("REVOKE CONNECT ON DATABASE postgres FROM PUBLIC")
            await self._conn.execute("REVOKE CONNECT ON DATABASE template1 FROM PUBLIC")
        await self._refuse_if_unsafe()
        self.watchdog = Watchdog(
            self.admin_url,
            await admin.connect(self.admin_url),
            self.pid,
            self.limits,
            local_backends=self.isolated_server,
        )
        self.watchdog.start()
        if not self.isolated_server:
            self.notes.append("the grading server is not this machine's: backends' memory and CPU are not capped")
        elif self.watchdog.cpu is None:
            self.notes.append(
                "submissions' database backends share the CPU per backend, not per submission "
                "(CPU groups need root and the cgroup v1 cpu controller)"
            )

    async def close(self) -> None:
        if self.watchdog is not None:
            await self.watchdog.stop()
            await self.watchdog.conn.close()
            if self.watchdog.cpu is not None and not self.live:
                CpuGroups.sweep(self.pid)
            self.watchdog = None
        for conn in (self._conn, self._drop_conn):
            if conn is not None:
                await conn.close()
        self._conn = self._drop_conn = None

    @property
    def _admin(self) -> asyncpg.Connection:
        """The admin connection (between connect and close)."""
        if self._conn is None:
            raise RuntimeError("GradingDatabases is not connected")
        return self._conn

    @property
    def _dropper(self) -> asyncpg.Connection:
        """The connection drops go through (between connect and close)."""
        if self._drop_conn is None:
            raise RuntimeError("GradingDatabases is not connected")
        return self._drop_conn

    def _settings(self, *, pinned: bool) -> list[tuple[str, str]]:
        limits = self.limits
        settings = [
            ("statement_timeout", limits.statement_timeout),
            ("lock_timeout", "5s"),
            ("idle_in_transaction_session_timeout", "30s"),
        ]
        if pinned:  # superuser-only (PGC_SUSET): set on the role, no SET can change them
            settings += [
                ("temp_file_limit", limits.temp_file_limit),
                ("track_activities", "on"),
                ("log_temp_files", "0"),
            ]
        return settings

    async def _create_role(self, name: str, password: str) -> None:
        # One round trip for the role and its settings (one implicit transaction: all or none).
        await self._admin.execute(
            f"CREATE ROLE \"{name}\" LOGIN PASSWORD '{password}' NOSUPERUSER NOCREATEDB NOCREATEROLE "
            f"NOREPLICATION NOBYPASSRLS CONNECTION LIMIT {self.limits.connections};"
            + "".join(f"ALTER ROLE \"{name}\" SET {setting} = '{value}';" for setting, value in self._role_settings)
        )

    async def _refuse_if_unsafe(self) -> None:
        """SetupError (grade nothing) when a submission's role could become or act as the admin."""
        user = self.admin_url.username or ""
        if _NAME.match(user):
            raise SetupError(
                f"The grading server's admin role {user!r} is named like a submission's role; "
                "give GRADING_DATABASE_URL an admin role of its own."
            )
        probe = f"{NAME_PREFIX}{self.pid}_9{secrets.randbelow(10**8):08d}"
        try:
            try:
                await self._create_role(probe, secrets.token_urlsafe(18))
            except asyncpg.InsufficientPrivilegeError:
                # Not a superuser (an external server): the pinned settings cannot be set.
                self._role_settings = self._settings(pinned=False)
                await self._create_role(probe, secrets.token_urlsafe(18))
                self.notes.append(
                    "the grading server's admin role is not a superuser: submissions' temp_file_limit is not pinned"
                )
            powers, risky = await admin.role_powers(self._admin, probe)
        finally:
            with contextlib.suppress(*_GRADER_SIDE):
                await self._admin.execute(f'DROP ROLE IF EXISTS "{probe}"')
        if powers or risky:
            what = "a superuser or able to create roles or databases" if powers else "a member of " + ", ".join(risky)
            raise SetupError(
                f"Refusing to grade: a submission's role on the grading server would be {what}; "
                "fix that server's roles (e.g. role memberships granted to every new role) or "
                f"unset {ENV_GRADING_URL} to use the bundled grading cluster."
            )

    # ------------------------------------------------------------------ templates and databases
    async def _end_backends_in(self, database: str) -> int:
        """End every other backend connected to `database` (nobody belongs in a template)."""
        return len(
            await self._admin.fetch(
                "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
                "WHERE datname = $1 AND pid <> pg_backend_pid()",
                database,
            )
        )

    async def template_for(self, lesson: str) -> str:
        """The lesson's template: empty, IS_TEMPLATE and ALLOW_CONNECTIONS false, so no role
        (not even the admin) ever sits inside it or leaves anything in it for a clone."""
        name = admin.check_identifier(f"course_tpl_{re.sub(r'[^a-z0-9_]', '_', lesson.lower())}"[:63])
        if name in self._templates:
            return name
        async with self._lock:
            row = await self._admin.fetchrow("SELECT datallowconn FROM pg_database WHERE datname = $1", name)
            if row is not None and row["datallowconn"]:
                # Made by an older grader, open to connections: it may hold what an intruder left.
                logger.warning("grading template %s was open to connections: made again", name)
                await self._admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false IS_TEMPLATE false')
                await self._admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                row = None
            if row is None:
                try:
                    await self._admin.execute(
                        f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8' "
                        "IS_TEMPLATE true ALLOW_CONNECTIONS false"
                    )
                except asyncpg.DuplicateDatabaseError:
                    pass  # another grader on this cluster made it first
                await self._admin.execute(f'REVOKE ALL ON DATABASE "{name}" FROM PUBLIC')
            self._templates.add(name)
        return name

    async def create(self, lesson: str) -> SubmissionDatabase:
        """A fresh database and role for one submission; GraderFailure when the server fails."""
        try:
            template = await self.template_for(lesson)
        except _GRADER_SIDE as exc:
            raise GraderFailure(f"the grading server could not prepare lesson {lesson}'s template ({exc})") from exc
        async with self._lock:
            self._seq += 1
            name = f"{NAME_PREFIX}{self.pid}_{self._seq}"
            password = secrets.token_urlsafe(18)
            self.live.add(name)  # dropped at the end of the run even if what follows fails
            try:
                await self._create_role(name, password)
                await self._clone(template, name)
            except _GRADER_SIDE as exc:
                raise GraderFailure(f"the grading server could not create database {name} ({exc})") from exc
        url = self.admin_url.set(username=name, password=password, database=name)
        return SubmissionDatabase(name=name, role=name, url=urls.render(url))

    async def _clone(self, template: str, name: str) -> None:
        conn = self._admin
        # FILE_COPY copies the template's few files (4.5 ms) instead of WAL-logging each of
        # their blocks (PostgreSQL 15+'s default: 9-11 ms, measured). It checkpoints first,
        # which costs nothing on our cluster (no fsync) but could stall a real server.
        strategy = " STRATEGY FILE_COPY" if self.isolated_server else ""
        for attempt in range(CREATE_ATTEMPTS):
            # Cloning needs the template to itself: end anyone inside it first.
            if await self._end_backends_in(template):
                logger.warning("ended a connection inside template %s before cloning it", template)
            try:
                # Closed until its privileges are right: a new database grants CONNECT to PUBLIC.
                await conn.execute(
                    f'CREATE DATABASE "{name}" TEMPLATE "{template}" OWNER "{name}"{strategy} ALLOW_CONNECTIONS false'
                )
                break
            except asyncpg.ObjectInUseError:  # "source database is being accessed by other users"
                if attempt == CREATE_ATTEMPTS - 1:
                    raise
                await asyncio.sleep(0.2 * (attempt + 1))
        await admin.open_privately(conn, name, grantee=name)

    def watchdog_events(self, name: str) -> list[str]:
        """What the watchdog ended for this submission, as sentences for its verdict."""
        return list(self.watchdog.events.get(name, [])) if self.watchdog is not None else []

    async def end_submission(self, name: str) -> None:
        """Shut the submission's role out and end every backend it still has (its process is
        gone; a query it left running would go on using the server until the drop). Through the
        creating connection: the dropping one may be queued behind checkpoints."""
        async with self._lock:
            await end_role(self._admin, name)

    async def drop(self, name: str) -> None:
        async with self._drop_lock:
            await self._drop(name)
            self.live.discard(name)

    async def _drop(self, name: str) -> None:
        await end_role(self._dropper, name)  # before DROP ROLE, which would leave them running
        await self._dropper.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await self._dropper.execute(f'DROP ROLE IF EXISTS "{name}"')
        if self.watchdog is not None and self.watchdog.cpu is not None:
            self.watchdog.cpu.remove(name)

    async def drop_all_of_this_run(self) -> None:
        for name in sorted(self.live):
            await self.drop(name)

    async def sweep_stale(self) -> list[str]:
        """Drop databases and roles left by graders that are no longer running."""
        rows = await self._admin.fetch(
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
        if CpuGroups.available():
            CpuGroups.sweep(keep_pid=-1)  # dead graders' CPU groups, empty now that their roles are gone
        return sorted(set(dropped))

    async def names(self) -> list[str]:
        rows = await self._admin.fetch("SELECT datname FROM pg_database WHERE datname LIKE 'grade\\_%'")
        return sorted(r["datname"] for r in rows)
