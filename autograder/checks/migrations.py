"""Checks on Alembic migrations: run them for real in a scratch schema and judge the result.

A migration is given as plain `upgrade()` / `downgrade()` functions (they use
`alembic.op` as in any migration file). The checks write a throwaway Alembic
project whose version files call those functions, run it with the programmatic
API (`alembic.command`) on a connection whose `search_path` is a scratch schema
of the lesson's database (no second database is needed, so it works for a role
that may not create databases), and read the outcome back through a separate
connection:

    revisions = [Revision("0001", None, upgrade_0001, downgrade_0001),
                 Revision("0002", "0001", upgrade, downgrade)]
    (await schema_matches_models(db.url, revisions, Base.metadata, schema="g_models")).require()
    (await migration_roundtrip(db.url, revisions, schema="g_roundtrip", seed=SEED)).require()
    (await data_migrated(db.url, revisions, schema="g_data", seed=SEED,
                         query="SELECT id, total_cents FROM orders ORDER BY id",
                         expected=[(1, 1250), (2, 399)])).require()

Each check starts from an empty schema (dropped and re-created) and drops it again
at the end.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import CheckConstraint, MetaData, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from autograder.checks.messages import Hint, check, first_hint, plural, verdict
from autograder.checks.verdict import Verdict
from autograder.db.admin import asyncpg_params
from autograder.errors import describe
from autograder.observe.sql import SQLRecorder

__all__ = ["Revision", "MigrationRig", "schema_matches_models", "migration_roundtrip", "data_migrated"]


@dataclass(frozen=True)
class Revision:
    """One migration: its id, the id it follows (None for the first) and its two functions."""

    id: str
    down: str | None
    upgrade: Callable[[], None]
    downgrade: Callable[[], None]
    message: str = ""


_REGISTRY: dict[str, Revision] = {}
_TOKENS = itertools.count(1)

_ENV_PY = '''\
"""env.py of a throwaway project: run on the connection the caller passes in."""
from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=None)
with context.begin_transaction():
    context.run_migrations()
'''

_VERSION_PY = '''\
"""{message}"""
from autograder.checks.migrations import _script

revision = {revision!r}
down_revision = {down!r}
branch_labels = None
depends_on = None


def upgrade():
    _script({key!r}).upgrade()


def downgrade():
    _script({key!r}).downgrade()
'''


def _script(key: str) -> Revision:
    return _REGISTRY[key]


_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


@dataclass
class StepResult:
    ok: bool
    error: str
    sql: list[str]


def _interesting(sql: str) -> bool:
    """The migration's own statements, not Alembic's catalog reads and version bookkeeping."""
    low = sql.lower()
    return "pg_catalog" not in low and "alembic_version" not in low and "information_schema" not in low


class MigrationRig:
    """A scratch schema plus a throwaway Alembic project made of `revisions`.

    `async with MigrationRig(url, revisions, schema="s") as rig:` drops and creates
    the schema; `await rig.upgrade("head")`, `await rig.downgrade("0001")` run Alembic
    there (one transaction per command, the SQL recorded); `await rig.snapshot()`
    describes the schema; `await rig.fetch(sql)` reads committed rows through a
    separate connection. Leaving the block drops the schema.
    """

    def __init__(self, db_url: str, revisions: Sequence[Revision], *, schema: str):
        if not _SCHEMA_NAME.match(schema):
            raise ValueError(f"schema name {schema!r}: use lower-case letters, digits and _")
        self.db_url = db_url
        self.revisions = list(revisions)
        self.schema = schema
        self.engine: AsyncEngine | None = None
        self.folder: Path | None = None
        self._keys: list[str] = []
        self._verify: asyncpg.Connection | None = None

    # -- set up / tear down ------------------------------------------------
    async def __aenter__(self) -> MigrationRig:
        self.folder = Path(tempfile.mkdtemp(prefix="migrations_"))
        versions = self.folder / "versions"
        versions.mkdir()
        (self.folder / "env.py").write_text(_ENV_PY)
        token = next(_TOKENS)
        for rev in self.revisions:
            key = f"{os.getpid()}:{token}:{rev.id}"
            _REGISTRY[key] = rev
            self._keys.append(key)
            slug = re.sub(r"[^a-z0-9]+", "_", (rev.message or "migration").lower()).strip("_")[:40]
            (versions / f"{rev.id}_{slug}.py").write_text(
                _VERSION_PY.format(message=rev.message or rev.id, revision=rev.id, down=rev.down, key=key)
            )
        self.engine = engine = create_async_engine(
            self.db_url, connect_args={"server_settings": {"search_path": self.schema}}
        )
        async with engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE'))
            await conn.execute(text(f'CREATE SCHEMA "{self.schema}"'))
        self._verify = await asyncpg.connect(
            **asyncpg_params(make_url(self.db_url)), server_settings={"search_path": self.schema}
        )
        return self

    async def __aexit__(self, *exc: Any) -> None:
        try:
            if self._verify is not None:
                await self._verify.close()
            if self.engine is not None:
                async with self.engine.begin() as conn:
                    await conn.execute(text(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE'))
                await self.engine.dispose()
        finally:
            for key in self._keys:
                _REGISTRY.pop(key, None)
            if self.folder is not None:
                shutil.rmtree(self.folder, ignore_errors=True)

    def _started(self) -> tuple[AsyncEngine, asyncpg.Connection]:
        """The rig's engine and verification connection, once `async with` has set them up."""
        if self.engine is None or self._verify is None:
            raise RuntimeError("the rig is not set up: use `async with MigrationRig(...) as rig:`")
        return self.engine, self._verify

    def config(self) -> Any:
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(self.folder))
        return cfg

    # -- running Alembic ---------------------------------------------------
    async def _run(self, command_name: str, revision: str) -> StepResult:
        from alembic import command

        cfg = self.config()

        def run(sync_conn: Any) -> None:
            cfg.attributes["connection"] = sync_conn
            getattr(command, command_name)(cfg, revision)

        engine, _ = self._started()
        with SQLRecorder(engine) as rec:
            try:
                async with engine.begin() as conn:
                    await conn.run_sync(run)
            except Exception as exc:  # noqa: BLE001 - the learner's migration raised: that is the finding
                return StepResult(
                    False, describe(exc, driver=True), [s.sql for s in rec.statements if _interesting(s.sql)]
                )
        return StepResult(True, "", [s.sql for s in rec.statements if _interesting(s.sql)])

    async def upgrade(self, revision: str = "head") -> StepResult:
        return await self._run("upgrade", revision)

    async def downgrade(self, revision: str) -> StepResult:
        return await self._run("downgrade", revision)

    async def current(self) -> str | None:
        _, verify = self._started()
        exists = await verify.fetchval(
            "SELECT 1 FROM pg_tables WHERE schemaname = $1 AND tablename = 'alembic_version'", self.schema
        )
        if not exists:
            return None
        version = await verify.fetchval("SELECT version_num FROM alembic_version")
        return None if version is None else str(version)

    async def execute(self, statements: Iterable[str]) -> None:
        engine, _ = self._started()
        async with engine.begin() as conn:
            for sql in statements:
                await conn.execute(text(sql))

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        """Committed rows, read through a connection of its own."""
        _, verify = self._started()
        return await verify.fetch(sql, *args)

    # -- reading the schema ------------------------------------------------
    async def tables(self) -> list[str]:
        _, verify = self._started()
        rows = await verify.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = $1 AND tablename <> 'alembic_version' "
            "ORDER BY tablename",
            self.schema,
        )
        return [r["tablename"] for r in rows]

    async def snapshot(self) -> dict[str, Any]:
        """Tables, columns (type, NULL, default), keys, indexes, CHECKs and enum types of the schema."""
        from sqlalchemy import inspect

        def read(sync_conn: Any) -> dict[str, Any]:
            insp = inspect(sync_conn)
            out: dict[str, Any] = {}
            for table in insp.get_table_names():
                if table == "alembic_version":
                    continue
                out[f"table {table}"] = "exists"
                for col in insp.get_columns(table):
                    out[f"column {table}.{col['name']}"] = (
                        f"{col['type'].compile(dialect=sync_conn.dialect)}"
                        f"{'' if col['nullable'] else ' NOT NULL'}"
                        f"{' DEFAULT ' + str(col['default']) if col.get('default') is not None else ''}"
                    )
                pk = insp.get_pk_constraint(table)
                if pk.get("constrained_columns"):
                    out[f"primary key of {table}"] = ", ".join(pk["constrained_columns"])
                for fk in insp.get_foreign_keys(table):
                    out[f"foreign key {table}.{fk.get('name')}"] = (
                        f"({', '.join(fk['constrained_columns'])}) -> {fk['referred_table']}"
                        f"({', '.join(fk['referred_columns'])})"
                    )
                for uc in insp.get_unique_constraints(table):
                    out[f"unique constraint {table}.{uc['name']}"] = ", ".join(uc["column_names"])
                for ix in insp.get_indexes(table):
                    cols = ", ".join(str(c) for c in ix.get("column_names") or [])
                    out[f"index {table}.{ix['name']}"] = f"{'UNIQUE ' if ix.get('unique') else ''}({cols})"
                for ck in insp.get_check_constraints(table):
                    out[f"check constraint {table}.{ck['name']}"] = ck["sqltext"]
            return out

        engine, verify = self._started()
        async with engine.connect() as conn:
            found = await conn.run_sync(read)
        for row in await verify.fetch(
            "SELECT t.typname, array_agg(e.enumlabel ORDER BY e.enumsortorder) AS labels "
            "FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
            "JOIN pg_enum e ON e.enumtypid = t.oid WHERE n.nspname = $1 GROUP BY t.typname",
            self.schema,
        ):
            found[f"enum type {row['typname']}"] = ", ".join(row["labels"])
        return found

    async def rows(self, tables: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
        _, verify = self._started()
        out: dict[str, list[dict[str, Any]]] = {}
        for table in tables:
            records = await verify.fetch(f'SELECT * FROM "{table}" ORDER BY 1')
            out[table] = [dict(r) for r in records]
        return out

    async def compare(self, metadata: MetaData) -> list[str]:
        """What differs between the schema and `metadata`, one sentence per difference.

        Alembic's `compare_metadata` (types and server defaults compared), plus named
        CHECK constraints, which autogenerate does not compare at all.
        """
        from alembic.autogenerate import compare_metadata
        from alembic.migration import MigrationContext

        def diff(sync_conn: Any) -> list[Any]:
            ctx = MigrationContext.configure(sync_conn, opts={"compare_type": True, "compare_server_default": True})
            return list(compare_metadata(ctx, metadata))

        engine, _ = self._started()
        async with engine.connect() as conn:
            diffs = await conn.run_sync(diff)
        lines = [_describe_diff(d) for d in _flatten(diffs)]
        present = await self.snapshot()
        for table in metadata.sorted_tables:
            for ck in table.constraints:
                if (
                    isinstance(ck, CheckConstraint)
                    and isinstance(ck.name, str)
                    and f"check constraint {table.name}.{ck.name}" not in present
                ):
                    lines.append(
                        f"CHECK constraint {ck.name} ({ck.sqltext}) on {table.name} is in the "
                        "models but not in the database"
                    )
        return lines


def _flatten(diffs: list[Any]) -> list[Any]:
    out = []
    for d in diffs:
        if isinstance(d, list):  # column modifications come grouped per column
            out.extend(d)
        else:
            out.append(d)
    return out


def _describe_diff(d: tuple[Any, ...]) -> str:
    kind = d[0]
    if kind in ("add_column", "remove_column"):
        _, _, table, col = d
        where = (
            "in the models but not in the database" if kind == "add_column" else "in the database but not in the models"
        )
        return f"column {table}.{col.name} is {where}"
    if kind in ("add_table", "remove_table"):
        where = (
            "in the models but not in the database" if kind == "add_table" else "in the database but not in the models"
        )
        return f"table {d[1].name} is {where}"
    if kind == "modify_nullable":
        _, _, table, col, _, db_value, model_value = d
        said = "NOT NULL" if model_value is False else "NULL allowed"
        has = "NOT NULL" if db_value is False else "NULL allowed"
        return f"column {table}.{col}: the models say {said}, the database has {has}"
    if kind == "modify_type":
        _, _, table, col, _, db_type, model_type = d
        return f"column {table}.{col}: the models say type {model_type}, the database has {db_type}"
    if kind == "modify_default":
        _, _, table, col, _, db_default, model_default = d

        def show(default: Any) -> str:
            if default is None:
                return "no default"
            arg = getattr(default, "arg", default)
            return f"DEFAULT {getattr(arg, 'text', arg)}"

        return f"column {table}.{col}: the models say {show(model_default)}, the database has {show(db_default)}"
    if kind in ("add_index", "remove_index", "add_constraint", "remove_constraint"):
        obj = d[1]
        where = (
            "in the models but not in the database"
            if kind.startswith("add")
            else "in the database but not in the models"
        )
        cols = ", ".join(c.name for c in getattr(obj, "columns", []))
        return f"{type(obj).__name__} {obj.name} ({cols}) on {obj.table.name} is {where}"
    if kind in ("add_fk", "remove_fk"):
        fk = d[1]
        where = "in the models but not in the database" if kind == "add_fk" else "in the database but not in the models"
        return f"foreign key {fk.name} on {fk.parent.name} is {where}"
    return repr(d)


def _diff_snapshots(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    lines = []
    for key in sorted(set(before) | set(after)):
        if key not in after:
            lines.append(f"{key} ({before[key]}) existed before the upgrade and is missing after the downgrade")
        elif key not in before:
            lines.append(f"{key} ({after[key]}) is left over: it was not there before the upgrade")
        elif before[key] != after[key]:
            lines.append(f"{key} was {before[key]}, after the downgrade it is {after[key]}")
    return lines


def _diff_rows(
    before: dict[str, list[dict[str, Any]]], after: dict[str, list[dict[str, Any]]], limit: int = 5
) -> list[str]:
    lines = []
    for table, rows in before.items():
        now = after.get(table, [])
        if len(now) != len(rows):
            lines.append(f"{table}: {len(rows)} rows before the upgrade, {len(now)} after the downgrade")
            continue
        for old, new in zip(rows, now, strict=True):
            for col, value in old.items():
                if col in new and new[col] != value:
                    lines.append(f"{table} row {_row_id(old)}: {col} was {value!r}, after the downgrade {new[col]!r}")
                    if len(lines) >= limit:
                        return lines
    return lines


def _row_id(row: dict[str, Any]) -> str:
    key, value = next(iter(row.items()))
    return f"{key}={value!r}"


def _plan(revisions: Sequence[Revision]) -> str:
    return " -> ".join(r.id for r in revisions)


def _seed_text(seed: Sequence[str]) -> list[str]:
    return [" ".join(s.split()) for s in seed]


# (a word in a difference, what to do about it): every one that applies is said
_SCHEMA_ADVICE = (
    (
        "NULL",
        (
            "a column the models declare NOT NULL needs op.alter_column(..., nullable=False) "
            "once every row has a value; "
        ),
    ),
    (
        "CHECK",
        (
            "autogenerate never writes CHECK constraints: add op.create_check_constraint(name, "
            "table, condition) yourself; "
        ),
    ),
    (
        "DEFAULT",
        (
            "a server_default used only to fill existing rows must be dropped again "
            "(op.alter_column(..., server_default=None)); "
        ),
    ),
)


@check
async def schema_matches_models(
    db_url: str,
    revisions: Sequence[Revision],
    metadata: MetaData,
    *,
    schema: str,
    head: str = "head",
) -> Verdict:
    """Upgrading an empty schema to `head` gives exactly the tables `metadata` describes.

    Compared with Alembic's own `compare_metadata` (column types, NULL / NOT NULL and
    server defaults included) plus the named CHECK constraints of the models.
    """
    expected = (
        f"upgrading an empty schema through {_plan(revisions)} gives the schema the models "
        "describe (compare_metadata finds no difference; every named CHECK constraint exists)"
    )
    async with MigrationRig(db_url, revisions, schema=schema) as rig:
        step = await rig.upgrade(head)
        if not step.ok:
            return verdict(
                False,
                expected,
                f"the upgrade to {head} failed: {step.error}",
                step.sql,
                hint="run the upgrade on an empty database and read the first error.",
            )
        lines = await rig.compare(metadata)
    advice = "".join(say for word, say in _SCHEMA_ADVICE if any(word in line for line in lines))
    return verdict(
        not lines,
        expected,
        f"{plural(len(lines), 'difference')}: " + "; ".join(lines)
        if lines
        else "no difference between the schema and the models",
        step.sql,
        hint=(
            "review the migration against the models: "
            + advice
            + "every difference listed is one the next autogenerate would try to 'fix'."
        ),
    )


@check
async def migration_roundtrip(
    db_url: str,
    revisions: Sequence[Revision],
    *,
    schema: str,
    seed: Sequence[str] = (),
    compare_rows: bool = True,
) -> Verdict:
    """The last revision upgrades, downgrades back to the schema (and rows) it started from, and upgrades again.

    The schema is first brought to the revision before the last one and `seed`
    (SQL statements) fills it; its snapshot (tables, columns with type, NULL and
    default, keys, indexes, CHECKs, enum types) and, with `compare_rows`, its rows
    must be the same after upgrade + downgrade. Upgrading once more must work too:
    a downgrade that leaves a type, constraint or column behind breaks it.
    """
    last = revisions[-1]
    base = last.down
    expected = (
        f"upgrade {base} -> {last.id}, downgrade back to {base}: the same schema"
        f"{' and the same rows' if compare_rows else ''} as before; then the upgrade works again"
    )
    async with MigrationRig(db_url, revisions, schema=schema) as rig:
        if base is not None:
            step = await rig.upgrade(base)
            if not step.ok:
                return verdict(
                    False,
                    expected,
                    f"preparing the schema at {base} failed: {step.error}",
                    step.sql,
                    hint="the earlier revisions must upgrade cleanly first.",
                )
        await rig.execute(seed)
        before = await rig.snapshot()
        tables = await rig.tables()
        rows_before = await rig.rows(tables) if compare_rows else {}
        up = await rig.upgrade(last.id)
        if not up.ok:
            return verdict(
                False,
                expected,
                f"the upgrade to {last.id} failed on a schema holding rows "
                f"({'; '.join(_seed_text(seed)) or 'no rows'}): {up.error}",
                up.sql,
                hint="an upgrade that works on an empty table can still fail on real data: add a "
                "NOT NULL column as nullable, fill it, then set NOT NULL.",
            )
        down_target = base if base is not None else "base"
        down = await rig.downgrade(down_target)
        if not down.ok:
            return verdict(
                False,
                expected,
                f"the downgrade to {down_target} failed: {down.error}",
                down.sql,
                hint="downgrade() undoes upgrade() in reverse order; if it cannot (data was "
                "destroyed), say so in the migration and do not ship it as reversible.",
            )
        after = await rig.snapshot()
        lines = _diff_snapshots(before, after)
        if not lines and compare_rows:
            lines = _diff_rows(rows_before, await rig.rows(tables))
        if lines:
            return verdict(
                False,
                expected,
                "after upgrade + downgrade: " + "; ".join(lines[:8]),
                up.sql + down.sql,
                hint=first_hint(
                    Hint(
                        any("left over" in line for line in lines)
                        and not any("missing after" in line for line in lines)
                        and not down.sql,
                        "the downgrade ran no SQL at all: a downgrade() that does nothing is not reversible.",
                    ),
                    Hint(
                        any("row" in line for line in lines),
                        "the downgrade must give the old column its values back, computed from the new "
                        "one (add it nullable, UPDATE, then NOT NULL) before dropping the new column.",
                    ),
                    default="downgrade() must undo every operation of upgrade(), in reverse order: drop what "
                    "upgrade() added (columns, constraints, enum types), re-create what it dropped.",
                ),
            )
        again = await rig.upgrade(last.id)
        if not again.ok:
            return verdict(
                False,
                expected,
                f"the upgrade failed the second time, after the downgrade: {again.error}",
                down.sql + again.sql,
                hint="the downgrade left something behind that the upgrade creates (a type, a "
                "constraint, an index): drop it in downgrade().",
            )
    return verdict(
        True,
        expected,
        f"upgrade, downgrade and upgrade again all ran; the schema{' and rows' if compare_rows else ''} "
        "after the downgrade equal those before",
        up.sql + down.sql,
    )


@check
async def data_migrated(
    db_url: str,
    revisions: Sequence[Revision],
    *,
    schema: str,
    seed: Sequence[str],
    query: str,
    expected: Sequence[tuple[Any, ...]],
    describe_expected: str = "",
) -> Verdict:
    """Rows written at the previous revision come out of the upgrade as `expected`.

    `query` runs after the upgrade through a separate connection (committed data only);
    its rows, as tuples, must equal `expected` in order.
    """
    last = revisions[-1]
    want = describe_expected or f"{query} returns {list(expected)!r}"
    expect = f"rows written at {last.down}, upgraded to {last.id}: {want}"
    async with MigrationRig(db_url, revisions, schema=schema) as rig:
        if last.down is not None:
            step = await rig.upgrade(last.down)
            if not step.ok:
                return verdict(
                    False,
                    expect,
                    f"preparing the schema at {last.down} failed: {step.error}",
                    step.sql,
                    hint="the earlier revisions must upgrade cleanly.",
                )
        await rig.execute(seed)
        up = await rig.upgrade(last.id)
        if not up.ok:
            return verdict(
                False,
                expect,
                f"the upgrade to {last.id} failed on these rows ({'; '.join(_seed_text(seed))}): {up.error}",
                up.sql,
                hint="fill every existing row before setting NOT NULL; read the error's row.",
            )
        try:
            got = [tuple(r) for r in await rig.fetch(query)]
        except Exception as exc:  # noqa: BLE001 - the query fails on the learner's schema: that is the finding
            return verdict(
                False,
                expect,
                f"reading the rows failed: {describe(exc, driver=True)}",
                up.sql,
                hint="the upgraded table must have the columns the models describe.",
            )
    wanted = [tuple(r) for r in expected]
    if got == wanted:
        return verdict(True, expect, f"{query} returned {got!r}", up.sql)
    wrong = [f"expected {w!r}, got {g!r}" for w, g in zip(wanted, got, strict=False) if w != g][:5]
    if len(got) != len(wanted):
        wrong.insert(0, f"{len(wanted)} rows expected, {len(got)} found")
    nulls = any(v is None for row in got for v in row)
    hint = (
        "some rows were never filled: the UPDATE must cover every existing row (no WHERE that skips "
        "some), and NOT NULL set afterwards would have caught it."
        if nulls
        else "compute the new value from each row's old one in SQL (mind rounding and casts), and check it "
        "against a few real rows."
    )
    return verdict(False, expect, "; ".join(wrong), up.sql, hint=hint)
