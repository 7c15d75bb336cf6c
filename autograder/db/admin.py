"""Administrative SQL (create/drop databases) with errors a person can act on.

These helpers are called from notebook cells, where an event loop is already
running, and from plain scripts, where none is. They therefore run asyncpg on a
private loop in a worker thread: the same code works in both places.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import re
import socket
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import asyncpg
from sqlalchemy.engine import URL, make_url

from autograder.db import url as urls
from autograder.errors import SetupError

T = TypeVar("T")
CONNECT_TIMEOUT_S = 10
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def run_sync(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from sync code, even inside a running loop."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()


def asyncpg_params(url: URL | str) -> dict[str, Any]:
    """asyncpg.connect() keyword arguments for a SQLAlchemy URL (unix socket aware)."""
    url = make_url(url) if isinstance(url, str) else url
    query: dict[str, Any] = dict(url.query)
    host = query.pop("host", None) or url.host
    params: dict[str, Any] = {
        "host": host,
        "port": url.port or (int(query.pop("port")) if "port" in query else None),
        "user": url.username or query.pop("user", None),
        "password": url.password,
        "database": url.database or "postgres",
        "timeout": CONNECT_TIMEOUT_S,
    }
    return {k: v for k, v in params.items() if v is not None}


def explain_connect_error(url: URL, exc: BaseException) -> str:
    where = urls.redacted(url)
    origin = "DATABASE_URL" if urls.configured_url() is not None else "the bundled PostgreSQL"
    if isinstance(exc, asyncpg.InvalidPasswordError):
        reason = "the password was rejected"
    elif isinstance(exc, asyncpg.InvalidAuthorizationSpecificationError):
        reason = f"the role is not allowed to log in ({exc})"
    elif isinstance(exc, asyncpg.InvalidCatalogNameError):
        reason = f"the database does not exist ({exc})"
    elif isinstance(exc, socket.gaierror):
        reason = "its host name does not resolve"
    elif isinstance(exc, (ConnectionRefusedError, FileNotFoundError)):
        reason = "nothing is listening there"
    elif isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        reason = f"it did not answer within {CONNECT_TIMEOUT_S} s"
    else:
        reason = f"{type(exc).__name__}: {exc}".strip()
    fix = (
        "start that server, fix the URL, or unset DATABASE_URL to use the bundled PostgreSQL"
        if origin == "DATABASE_URL"
        else "run `make lab` (or `autograder db start`) to start it"
    )
    return f"Cannot connect to {origin} at {where}: {reason}; {fix}."


async def connect(url: URL) -> asyncpg.Connection:
    try:
        return await asyncpg.connect(**asyncpg_params(url))
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        raise SetupError(explain_connect_error(url, exc)) from None


def check_identifier(name: str) -> str:
    if not _IDENTIFIER.match(name):
        raise ValueError(f"not a safe database name: {name!r} (lowercase letters, digits, _)")
    return name


# --------------------------------------------------------------------------- roles and private databases
# Shared by the grader (a role per submission, autograder/grading/databases.py) and the workshop hub
# (a role per learner, autograder/hub/provision.py).

# Built-in roles that would let a role read or write server files, run programs on the host, end
# other backends or read every table / query text: a submission's or a learner's role is a member
# of none.
RISKY_ROLES = (
    "pg_read_server_files",
    "pg_write_server_files",
    "pg_execute_server_program",
    "pg_signal_backend",
    "pg_read_all_data",
    "pg_write_all_data",
    "pg_read_all_stats",
    "pg_monitor",
)
# Role attributes, as pg_roles names them, that a confined role must not have (the hub allows CREATEDB).
POWERFUL_ATTRIBUTES = ("rolsuper", "rolcreaterole", "rolcreatedb", "rolreplication", "rolbypassrls")


async def role_powers(conn: asyncpg.Connection, role: str) -> tuple[set[str], list[str]]:
    """The powerful attributes `role` has (of POWERFUL_ATTRIBUTES) and the RISKY_ROLES it is a member of."""
    row = await conn.fetchrow(
        "SELECT r.rolsuper, r.rolcreaterole, r.rolcreatedb, r.rolreplication, r.rolbypassrls, "
        "array(SELECT b.rolname FROM pg_roles b WHERE b.rolname = ANY($2::text[]) "
        "AND pg_has_role(r.oid, b.oid, 'MEMBER') ORDER BY 1) AS risky FROM pg_roles r WHERE r.rolname = $1",
        role,
        list(RISKY_ROLES),
    )
    if row is None:
        raise ValueError(f"no role {role!r}")
    return {name for name in POWERFUL_ATTRIBUTES if row[name]}, list(row["risky"])


async def end_role(conn: asyncpg.Connection, role: str) -> None:
    """No new connection for `role`, and every one it has ended (waiting up to 5 s each)."""
    with contextlib.suppress(asyncpg.UndefinedObjectError):
        await conn.execute(f'ALTER ROLE "{check_identifier(role)}" NOLOGIN')
    await conn.execute(
        "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE usename = $1 AND pid <> pg_backend_pid()",
        role,
    )


async def open_privately(conn: asyncpg.Connection, name: str, grantee: str) -> None:
    """Open a database created `ALLOW_CONNECTIONS false` to `grantee` (and its owner) only.

    A new database grants CONNECT and TEMPORARY to PUBLIC: created closed, it admits nobody
    until PUBLIC's grants are revoked, so no other role ever gets in, not even in between."""
    check_identifier(name)
    check_identifier(grantee)
    await conn.execute(
        f'REVOKE ALL ON DATABASE "{name}" FROM PUBLIC;'
        f'GRANT CONNECT, TEMPORARY ON DATABASE "{name}" TO "{grantee}";'
        f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'
    )


async def _recreate(admin_url: URL, name: str, *, private: bool = False) -> None:
    conn = await connect(admin_url)
    try:
        # FORCE ends sessions left over from an earlier run of the same notebook
        # (a kernel that was restarted without disposing its engine).
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if private:
            await conn.execute(f'CREATE DATABASE "{name}" ALLOW_CONNECTIONS false')
            await open_privately(conn, name, await conn.fetchval("SELECT current_user"))
        else:
            await conn.execute(f'CREATE DATABASE "{name}"')
    except asyncpg.InsufficientPrivilegeError as exc:
        if private and "owner" in str(exc):
            raise SetupError(
                f"The database {name} belongs to another role, so it cannot be reset; ask the workshop's "
                "instructor (restarting your server from the hub's control panel removes it)."
            ) from None
        raise SetupError(
            f"The role in DATABASE_URL ({urls.redacted(admin_url)}) may not create databases; grant it "
            "CREATEDB or use a superuser for the course server."
        ) from None
    finally:
        await conn.close()


async def drop(admin_url: URL, name: str) -> None:
    """Drop `name` if it exists, ending its sessions (the coroutine behind drop_database)."""
    check_identifier(name)
    conn = await connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def recreate_database(admin_url: URL, name: str, *, private: bool = False) -> URL:
    """Drop (ending its sessions) and create `name`; return its URL. `private`: open to its
    owner (the role in `admin_url`) only, never to PUBLIC (a workshop learner's database)."""
    check_identifier(name)
    run_sync(lambda: _recreate(admin_url, name, private=private))
    return urls.with_database(admin_url, name)


def drop_database(admin_url: URL, name: str) -> None:
    check_identifier(name)
    run_sync(lambda: drop(admin_url, name))


def ping(url: URL) -> None:
    """Raise SetupError with one sentence if `url` cannot be reached."""

    async def go() -> None:
        conn = await connect(url)
        await conn.close()

    run_sync(go)
