"""A disk quota on each workshop learner's databases, enforced from outside by the `autograder hub` supervisor.

PostgreSQL has no per-role disk quota, and learners can create databases (CREATEDB, for their lesson
databases), so one learner filling the shared server's disk would stop everyone. `QuotaWatchdog` polls the
server every few seconds (a thread of the supervisor, with one admin connection) and sums, per learner
role (`l_<name>`), the size of every database that role owns (its `l_<name>__…` lesson databases and any
other it made) plus its sessions' temporary files, as the grader's `Watchdog` counts a submission's
(autograder/grading/databases.py). A learner over the quota is **blocked**, recoverably:

* each of their databases gets `default_transaction_read_only = on` (new sessions refuse writes with
  PostgreSQL's own "cannot execute INSERT in a read-only transaction"), and every session of theirs is
  ended (a running bulk write stops, its temporary files go; open sessions had read-write defaults);
* they can still read, connect to `postgres`, and drop: resetting a lesson database (its notebook's first
  cell, `lesson.setup`, drops and recreates it), `DROP DATABASE`, or dropping tables in a transaction that
  asks to write (`BEGIN READ WRITE; DROP TABLE …; COMMIT`: DELETE frees no disk until a VACUUM FULL);
* once their databases are back under the quota the setting is removed (writes work in new sessions).

The setting is a default, not a wall: its owner may lift it. So while a learner is blocked, their
databases growing more than `slack` beyond the smallest size seen since the block means they lifted it
to keep writing: their role is then locked (NOLOGIN, sessions ended) for `lock_seconds`, then unlocked
(still read-only) so they can free space. Other learners are never touched. Each change is one sentence
in the hub's log naming the learner.

The state lives in the server: a hub restarted on the same data finds the databases it made read-only
and lifts the block of a learner now under the quota (a lock is lifted by the learner's next spawn,
which sets LOGIN again, or by the watchdog that locked them).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import asyncpg
from sqlalchemy.engine import URL

from autograder.db import admin
from autograder.errors import SetupError
from autograder.hub.provision import ROLE_PREFIX

logger = logging.getLogger(__name__)

MiB = 1024**2
DEFAULT_POLL_SECONDS = 3.0
SLACK = 64 * MiB  # growth tolerated while blocked (a few lesson databases created from their first cell)
LOCK_SECONDS = 60.0
READ_ONLY = "default_transaction_read_only=on"  # as pg_db_role_setting stores what the watchdog sets

# Per learner role: its databases, their sizes, and which carry the watchdog's read-only default.
USAGE_SQL = f"""
SELECT r.rolname AS role, d.datname AS database, coalesce(pg_database_size(d.oid), 0) AS size,
       coalesce('{READ_ONLY}' = ANY(s.setconfig), false) AS read_only
FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba
LEFT JOIN pg_db_role_setting s ON s.setdatabase = d.oid AND s.setrole = 0
WHERE starts_with(r.rolname, $1) AND NOT r.rolsuper
"""
# Temporary files live outside a database's folder: each session's count for its role (superuser or pg_monitor).
TEMP_SQL = """
SELECT a.usename AS role, sum(t.size)::bigint AS size FROM pg_ls_tmpdir() t
JOIN pg_stat_activity a ON t.name LIKE 'pgsql_tmp' || a.pid || '.%'
WHERE starts_with(a.usename, $1) GROUP BY a.usename
"""


def mib(size: int) -> str:
    return f"{size / MiB:,.0f} MiB"


@dataclass
class Usage:
    databases: dict[str, int] = field(default_factory=dict)  # name -> bytes
    read_only: set[str] = field(default_factory=set)  # databases carrying the watchdog's setting
    temp: int = 0  # bytes of temporary files of the role's sessions

    @property
    def stored(self) -> int:
        return sum(self.databases.values())

    @property
    def total(self) -> int:
        return self.stored + self.temp


@dataclass
class Block:
    lowest: int  # the smallest stored size seen since the block
    locked_until: float | None = None  # monotonic time; None: not locked


class QuotaWatchdog:
    """Blocks a learner whose databases pass `quota` bytes (see the module's docstring).

    `check()` is one poll (tests call it directly); `start()` / `stop()` run it every `poll_seconds`
    on a thread of its own. `say` receives the sentences for the hub's log."""

    def __init__(
        self,
        admin_url: URL,
        quota: int,
        *,
        poll_seconds: float = DEFAULT_POLL_SECONDS,
        say: Callable[[str], None] | None = None,
        slack: int = SLACK,
        lock_seconds: float = LOCK_SECONDS,
    ) -> None:
        self.admin_url = admin_url
        self.quota = quota
        self.poll_seconds = poll_seconds
        self.say = say or (lambda sentence: logger.warning("%s", sentence))
        self.slack = slack
        self.lock_seconds = lock_seconds
        self.blocked: dict[str, Block] = {}
        self._conn: asyncpg.Connection | None = None
        self._temp_readable = True
        self._refused = False  # an enforcing statement was refused (said once)
        self._failing: str | None = None  # the last poll's error, said once
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ one poll
    async def check(self) -> None:
        conn = await self._connection()
        usage = await self._usage(conn)
        for role in sorted(set(usage) | set(self.blocked)):
            await self._judge(conn, role, usage.get(role, Usage()))

    async def _connection(self) -> asyncpg.Connection:
        if self._conn is None or self._conn.is_closed():
            self._conn = await admin.connect(self.admin_url)
        return self._conn

    async def _usage(self, conn: asyncpg.Connection) -> dict[str, Usage]:
        usage: dict[str, Usage] = {}
        for row in await conn.fetch(USAGE_SQL, ROLE_PREFIX):
            entry = usage.setdefault(row["role"], Usage())
            entry.databases[row["database"]] = row["size"]
            if row["read_only"]:
                entry.read_only.add(row["database"])
        if self._temp_readable:
            try:
                for row in await conn.fetch(TEMP_SQL, ROLE_PREFIX):
                    usage.setdefault(row["role"], Usage()).temp = row["size"]
            except asyncpg.InsufficientPrivilegeError:  # an external server's admin role without pg_monitor
                self._temp_readable = False
                self.say("database quota: temporary files are not counted (the admin role cannot list them).")
        return usage

    async def _judge(self, conn: asyncpg.Connection, role: str, usage: Usage) -> None:
        name = role.removeprefix(ROLE_PREFIX)
        block = self.blocked.get(role)
        if usage.total > self.quota:
            await self._set_read_only(conn, set(usage.databases) - usage.read_only)  # new ones, or lifted by them
            if block is None:
                self.blocked[role] = Block(lowest=usage.stored)
                await self._end_sessions(conn, role)
                self.say(
                    f"database quota: {name} is over their quota ({mib(usage.total)} of databases and temporary "
                    f"files, quota {mib(self.quota)}): their databases are read-only and their sessions were ended "
                    "until they free space (reset a lesson database by running its notebook's first cell, drop a "
                    "database, or drop tables in a BEGIN READ WRITE transaction); other learners are not affected."
                )
                return
            now = time.monotonic()
            if block.locked_until is not None:
                if now < block.locked_until:
                    await self._set_login(conn, role, False)  # (a spawn meanwhile set LOGIN again)
                else:
                    await self._set_login(conn, role, True)
                    block.locked_until = None
                    block.lowest = usage.stored
                    self.say(
                        f"database quota: {name} may sign in to the database again (still over their quota: "
                        "read-only until they free space)."
                    )
            elif usage.stored > block.lowest + self.slack:
                block.locked_until = now + self.lock_seconds
                await self._set_login(conn, role, False)
                await self._end_sessions(conn, role)
                self.say(
                    f"database quota: {name} kept writing while over their quota (read-only lifted; "
                    f"{mib(usage.total)}, quota {mib(self.quota)}): their database role is locked for "
                    f"{self.lock_seconds:g} s, then read-only again."
                )
            block.lowest = min(block.lowest, usage.stored)
            return
        if block is None and not usage.read_only:
            return
        await self._set_read_only(conn, usage.read_only, on=False)
        if block is not None and block.locked_until is not None:
            await self._set_login(conn, role, True)
        self.blocked.pop(role, None)
        self.say(
            f"database quota: {name} is back under their quota ({mib(usage.total)} of {mib(self.quota)}): "
            "their databases accept writes again."
        )

    async def _set_read_only(self, conn: asyncpg.Connection, databases: set[str], *, on: bool = True) -> None:
        for database in sorted(databases):
            change = "SET default_transaction_read_only = on" if on else "RESET default_transaction_read_only"
            # (dropped since the poll: nothing to do; a name outside [a-z0-9_]: not one the course makes)
            with contextlib.suppress(asyncpg.InvalidCatalogNameError, ValueError):
                await self._enforce(conn, f'ALTER DATABASE "{admin.check_identifier(database)}" {change}')

    async def _end_sessions(self, conn: asyncpg.Connection, role: str) -> None:
        await self._enforce(
            conn,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1 AND pid <> pg_backend_pid()",
            role,
        )

    async def _set_login(self, conn: asyncpg.Connection, role: str, login: bool) -> None:
        with contextlib.suppress(asyncpg.UndefinedObjectError, ValueError):  # (a participant removed meanwhile)
            await self._enforce(conn, f'ALTER ROLE "{admin.check_identifier(role)}" {"LOGIN" if login else "NOLOGIN"}')

    async def _enforce(self, conn: asyncpg.Connection, sql: str, *args: object) -> None:
        """Run one enforcing statement; an admin role without the right (DATABASE_URL's, not a superuser):
        said once, the watch goes on."""
        try:
            await conn.execute(sql, *args)
        except asyncpg.InsufficientPrivilegeError as exc:
            if not self._refused:
                self._refused = True
                self.say(
                    f"database quota: the database admin role may not enforce the quota ({exc}); learners past it "
                    "are named here but not blocked (use a superuser in DATABASE_URL, or the hub's own PostgreSQL)."
                )

    async def close(self) -> None:
        if self._conn is not None and not self._conn.is_closed():
            await self._conn.close()
        self._conn = None

    # ------------------------------------------------------------------ on a thread of the supervisor
    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="db-quota-watchdog", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        try:
            while not self._stop.is_set():
                try:
                    loop.run_until_complete(self.check())
                    self._failing = None
                except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, SetupError) as exc:
                    # A failed poll never ends the watch (e.g. the server restarting): said once, tried again.
                    what = str(exc) if isinstance(exc, SetupError) else f"{type(exc).__name__}: {exc}"
                    if what != self._failing:
                        self._failing = what
                        self.say(f"database quota: a check failed ({what}); trying again.")
                    with contextlib.suppress(Exception):
                        loop.run_until_complete(self.close())
                self._stop.wait(self.poll_seconds)
        finally:
            with contextlib.suppress(Exception):
                loop.run_until_complete(self.close())
            loop.close()
