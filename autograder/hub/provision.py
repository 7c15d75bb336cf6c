"""A PostgreSQL role and private lesson databases for every workshop learner.

The learners share one server: the hub's own cluster (the bundled PostgreSQL binaries, data in
`<hub dir>/pgdata`, like the grading cluster: password-only, with a pg_hba.conf written here, its
superuser reachable only from root's processes through `peer`) or, with `DATABASE_URL` set when
the hub starts, that server's admin role (it needs CREATEROLE and CREATEDB).

When a learner's server spawns, `Provisioner.provision` makes (or refreshes) their role:

    CREATE ROLE l_<name> LOGIN PASSWORD … NOSUPERUSER CREATEDB NOCREATEROLE … CONNECTION LIMIT 30
    ALTER ROLE l_<name> SET temp_file_limit = '1GB'          -- superuser-only: they cannot lift it

The password is derived from the hub's secret (HMAC of the role's name), so it is the same on
every spawn without being stored anywhere a learner can read. Their server gets DATABASE_URL for
that role and COURSE_DB_PREFIX=l_<name>: `autograder.lesson.setup` then names their lesson
databases `l_<name>__lesson_…` (learner names contain no `__`, so two learners' names never
collide) and creates each one closed (`ALLOW_CONNECTIONS false`), revokes PUBLIC's CONNECT and
TEMPORARY, and only then opens it (`autograder.db.admin.open_privately`, as the grader does):
no other learner's role is ever let in. Databases named with a learner's prefix but owned by
someone else (another learner's squatting, with their CREATEDB) are dropped at the learner's
next spawn.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from sqlalchemy.engine import URL

from autograder.db import admin
from autograder.db import url as urls
from autograder.db.embedded import SUPERUSER, EmbeddedPostgres
from autograder.errors import SetupError
from autograder.hub.participants import check_name
from autograder.lesson import ENV_DB_PREFIX, PREFIX_SEPARATOR

logger = logging.getLogger(__name__)

ROLE_PREFIX = "l_"
CONNECTION_LIMIT = 30
TEMP_FILE_LIMIT = "1GB"
SECRET_BYTES = 32

# The hub cluster's whole pg_hba.conf: the superuser only for root (and the server's own OS user)
# through the socket's peer credentials, every other role with its password; no TCP at all.
HUB_HBA = f"""\
# Written by autograder/hub/provision.py; rewritten on every start.
# TYPE  DATABASE  USER          METHOD
local   all       {SUPERUSER}      peer map=hub_admin
local   all       all           scram-sha-256
"""
HUB_IDENT = f"""\
# Written by autograder/hub/provision.py: who may be the superuser (see pg_hba.conf).
# MAP        OS USER   DATABASE USER
hub_admin    root      {SUPERUSER}
hub_admin    pgserver  {SUPERUSER}
"""


def role_name(username: str) -> str:
    return ROLE_PREFIX + check_name(username)


def max_connections_for(participants: int, connection_limit: int = CONNECTION_LIMIT) -> int:
    """The hub cluster's max_connections: every participant at their own limit at once, plus room for the
    hub's admin, the quota watchdog and the superuser's reserved slots (never below PostgreSQL's 100), so
    no learner can take the connections another one needs. Lesson 07 alone opens up to 15 (a pool of 5 + 10)."""
    return max(100, participants * connection_limit + 20)


def hub_cluster(hub_dir: Path, max_connections: int | None = None) -> EmbeddedPostgres:
    """The hub's PostgreSQL: data in `<hub_dir>/pgdata`, socket in /run (outside the course).
    `max_connections` applies when this call starts the server (not to one already running)."""
    tag = hashlib.sha256(str(hub_dir.absolute()).encode()).hexdigest()[:12]
    return EmbeddedPostgres(
        hub_dir / "pgdata",
        password_file=hub_dir / "secrets" / "pg.password",
        socket_dir=Path("/run") / f"autograder-hub-{tag}",
        settings={"max_connections": str(max_connections)} if max_connections else None,
        hba=HUB_HBA,
        ident=HUB_IDENT,
    )


async def reload_config(url: URL) -> None:
    """Make a running server read its pg_hba.conf / pg_ident.conf again."""
    conn = await admin.connect(url)
    try:
        await conn.execute("SELECT pg_reload_conf()")
    finally:
        await conn.close()


def load_secret(path: Path) -> bytes:
    """The hub's secret for learners' database passwords (made on first use, mode 0600)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "xb", opener=lambda p, flags: os.open(p, flags, 0o600)) as out:
            out.write(secrets.token_bytes(SECRET_BYTES))
    return path.read_bytes()


@dataclass(frozen=True)
class Limits:
    connections: int = CONNECTION_LIMIT
    temp_file_limit: str = TEMP_FILE_LIMIT  # per backend, pinned (superuser-only setting)


@dataclass(frozen=True)
class LearnerDatabase:
    username: str
    role: str
    url: str  # asyncpg URL of the learner's role, password included

    def env(self) -> dict[str, str]:
        """What the learner's server gets in its environment."""
        return {urls.ENV_URL: self.url, ENV_DB_PREFIX: self.role}

    def __repr__(self) -> str:
        return f"LearnerDatabase({self.username!r}, role={self.role!r})"


class Provisioner:
    """Makes learners' roles on the workshop's server (`admin_url`: its superuser or an admin role)."""

    def __init__(self, admin_url: URL, secret: bytes, limits: Limits | None = None):
        self.admin_url = admin_url
        self.secret = secret
        self.limits = limits or Limits()

    def password(self, role: str) -> str:
        return hmac.new(self.secret, role.encode(), hashlib.sha256).hexdigest()[:40]

    async def prepare_server(self) -> list[str]:
        """Once per hub start: close what every role could otherwise reach. Returns notes (what is off)."""
        notes: list[str] = []
        conn = await admin.connect(self.admin_url)
        try:
            row = await conn.fetchrow(
                "SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = current_user"
            )
            if row is None or not (row["rolsuper"] or (row["rolcreaterole"] and row["rolcreatedb"])):
                raise SetupError(
                    f"The workshop's database role ({urls.redacted(self.admin_url)}) cannot create roles and "
                    "databases; give it CREATEROLE and CREATEDB, or unset DATABASE_URL to use the hub's own "
                    "PostgreSQL."
                )
            if row["rolsuper"]:
                # Learners connect to `postgres` to create their databases; nobody needs template1.
                await conn.execute("REVOKE CONNECT, TEMPORARY ON DATABASE template1 FROM PUBLIC")
                await conn.execute("REVOKE TEMPORARY ON DATABASE postgres FROM PUBLIC")
            else:
                notes.append("the database admin role is not a superuser: learners' temp_file_limit is not pinned")
        finally:
            await conn.close()
        return notes

    async def provision(self, username: str) -> LearnerDatabase:
        """Create or refresh `username`'s role (password, limits) and drop squatters of their names."""
        role = role_name(username)
        password = self.password(role)
        limits = self.limits
        conn = await admin.connect(self.admin_url)
        try:
            superuser = await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            exists = await conn.fetchval("SELECT true FROM pg_roles WHERE rolname = $1", role)
            attributes = (
                f"LOGIN PASSWORD '{password}' NOSUPERUSER CREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS "
                f"CONNECTION LIMIT {int(limits.connections)}"
            )
            await conn.execute(f'{"ALTER" if exists else "CREATE"} ROLE "{role}" {attributes}')
            if superuser:
                await conn.execute(f"ALTER ROLE \"{role}\" SET temp_file_limit = '{limits.temp_file_limit}'")
            powers, risky = await admin.role_powers(conn, role)
            if powers - {"rolcreatedb"} or risky:
                await admin.end_role(conn, role)
                raise SetupError(
                    f"Refusing to start {username}'s server: their database role would have "
                    f"{', '.join(sorted(powers - {'rolcreatedb'}) + risky)}; fix the server's roles "
                    "(e.g. memberships granted to every new role)."
                )
            await self._drop_squatters(conn, role)
        finally:
            await conn.close()
        url = self.admin_url.set(username=role, password=password)
        return LearnerDatabase(username=username, role=role, url=urls.render(url))

    async def _drop_squatters(self, conn: asyncpg.Connection, role: str) -> None:
        rows = await conn.fetch(
            "SELECT d.datname, r.rolname FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba "
            "WHERE starts_with(d.datname, $1) AND r.rolname <> $2",
            role + PREFIX_SEPARATOR,
            role,
        )
        for row in rows:
            logger.warning("dropping database %s: named for %s but made by %s", row["datname"], role, row["rolname"])
            await conn.execute(f'DROP DATABASE IF EXISTS "{admin.check_identifier(row["datname"])}" WITH (FORCE)')

    async def databases(self, username: str) -> list[str]:
        """The names of `username`'s databases."""
        role = role_name(username)
        conn = await admin.connect(self.admin_url)
        try:
            rows = await conn.fetch(
                "SELECT datname FROM pg_database WHERE starts_with(datname, $1) ORDER BY 1", role + PREFIX_SEPARATOR
            )
        finally:
            await conn.close()
        return [r["datname"] for r in rows]

    async def remove(self, username: str) -> None:
        """End `username`'s connections, drop their databases and their role (a participant removed)."""
        role = role_name(username)
        names = await self.databases(username)
        conn = await admin.connect(self.admin_url)
        try:
            await admin.end_role(conn, role)
            for name in names:
                await conn.execute(f'DROP DATABASE IF EXISTS "{admin.check_identifier(name)}" WITH (FORCE)')
            await conn.execute(f'DROP ROLE IF EXISTS "{role}"')
        finally:
            await conn.close()
