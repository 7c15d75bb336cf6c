"""Checks for database errors turned into HTTP answers, and for retrying what PostgreSQL says to retry.

    (await maps_integrity_error(probe, Call.post("/users", json=dup), status=409, field="email",
                                tables=["users", "audit_log"])).require()
    (await not_retried(probe, Call.post("/counters", json=dup), table="counters")).require()
    (await retried_until_success(probe, Call.post("/counters/c/bump"), conflict_sql=BUMP_100,
                                 state_sql=VALUE_OF_C, expected=lambda n: 100 * n + 1)).require()
    (await retries_bounded(probe, Call.post("/counters/c/bump"), conflict_sql=BUMP_100,
                           max_attempts=5)).require()

`maps_integrity_error(..., messages="french")` sends the request while PostgreSQL words its
integrity errors in French, as a server whose `lc_messages` is fr_FR would (`french_messages`):
the bundled server is built without translations, so a trigger reproduces them. The real
constraints still decide; only the message and detail change, the SQLSTATE, constraint, column,
table and schema are the real ones. A handler that decides by the message's English words fails.

A serialization failure is produced for real, not simulated: `collide` holds an
uncommitted UPDATE of the row the request is about to change (on a connection
of its own), waits until the request's transaction is blocked behind it
(`pg_blocking_pids`), then commits. A REPEATABLE READ or SERIALIZABLE
transaction that read the row before that commit fails with SQLSTATE 40001.
Asked for more conflicts, `collide` commits and takes the lock again in one
round trip, so the request's next attempt meets the same fate.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import asyncpg
from sqlalchemy import event
from sqlalchemy.engine import make_url

from autograder.checks.messages import Hint, check, first_hint, outcome, rows, trace, verdict
from autograder.checks.probe import Call, Exchange, Probe
from autograder.checks.verdict import Verdict
from autograder.db.admin import asyncpg_params

RETRYABLE = ("40001", "40P01")  # serialization_failure, deadlock_detected

__all__ = [
    "Collision",
    "collide",
    "french_messages",
    "maps_integrity_error",
    "not_retried",
    "retried_until_success",
    "retries_bounded",
]


# --------------------------------------------------------------------------- collisions


@dataclass
class Collision:
    """What happened while `collide` fought `action` for a row."""

    result: Any = None
    error: BaseException | None = None
    blocked: int = 0  # times the action's transaction waited behind the held row lock
    committed: int = 0  # conflicting transactions committed (each one changed the row)
    seconds: float = 0.0
    log: list[str] = field(default_factory=list)


def _url_of(target: Any) -> str:
    if isinstance(target, str):
        return target
    url = getattr(target, "url", target)
    return url.render_as_string(hide_password=False) if hasattr(url, "render_as_string") else str(url)


async def collide(
    db: Any,
    conflict_sql: str,
    action: Awaitable[Any],
    *,
    conflicts: int = 1,
    wait: float = 5.0,
) -> Collision:
    """Run `action` while a transaction of our own keeps changing the row it wants.

    `db` is a database URL or an engine; `conflict_sql` changes the row (and is committed
    `conflicts` times at most: once per time the action is found blocked behind it).
    Returns the action's result or exception, how often it was blocked, how many
    conflicting changes were committed.
    """
    params = asyncpg_params(make_url(_url_of(db)))
    holder = await asyncpg.connect(**params)
    monitor = await asyncpg.connect(**params)
    out = Collision()
    t0 = time.perf_counter()
    task: asyncio.Task[Any] | None = None
    holding = False
    try:
        holder_pid = holder.get_server_pid()
        await holder.execute("BEGIN")
        await holder.execute(conflict_sql)
        holding = True
        task = asyncio.ensure_future(action)
        while not task.done():
            deadline = time.perf_counter() + wait
            blocked = False
            while not task.done() and time.perf_counter() < deadline:
                blocked = await monitor.fetchval(
                    "SELECT count(*) > 0 FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))", holder_pid
                )
                if blocked:
                    break
                await asyncio.sleep(0.005)
            if not blocked:
                out.log.append(
                    "the action was not blocked behind the held row" if not task.done() else "the action finished"
                )
                break
            out.blocked += 1
            if out.committed + 1 < conflicts:
                # commit and lock the row again in one round trip: the retry meets a new conflict
                await holder.execute(f"COMMIT; BEGIN; {conflict_sql}")
                out.committed += 1
                out.log.append(f"conflict {out.committed} committed, row locked again")
            else:
                await holder.execute("COMMIT")
                holding = False
                out.committed += 1
                out.log.append(f"conflict {out.committed} committed, row released")
                break
        if holding:
            # never blocked: give the row back unchanged and let the action finish
            await holder.execute("ROLLBACK")
            holding = False
        try:
            out.result = await asyncio.wait_for(task, wait * 3)
        except Exception as exc:  # noqa: BLE001 - the action's own failure is a result, not ours
            out.error = exc
    finally:
        if task is None and asyncio.iscoroutine(action):
            action.close()  # never started: no "coroutine was never awaited" warning
        elif task is not None and not task.done():
            task.cancel()
        if holding:
            try:
                await holder.execute("ROLLBACK")
            except Exception:  # noqa: BLE001 - best-effort cleanup: closing the connection ends the transaction anyway
                pass
        await holder.close()
        await monitor.close()
    out.seconds = time.perf_counter() - t0
    return out


# --------------------------------------------------------------------------- messages in French

FRENCH = "autograder_messages_fr"

# A BEFORE INSERT trigger inserts the row once more, on trial, inside a subtransaction it always
# rolls back: the table's real constraints judge the row. When they refuse it, the trigger raises
# the same SQLSTATE with the same constraint, column, table and schema, worded as PostgreSQL's
# French translation words it. A row they accept goes on to the real insert untouched, and any
# other failure of the trial is left for the real insert to report in its own words.
FRENCH_FUNCTION = rf"""
CREATE OR REPLACE FUNCTION {FRENCH}() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
  st text; cn text; col text; tbl text; sch text; det text; msg text;
BEGIN
  IF current_setting('autograder.trial_insert', true) = 'on' THEN
    RETURN NEW;  -- the trial insert below, firing this trigger again
  END IF;
  BEGIN
    PERFORM set_config('autograder.trial_insert', 'on', true);
    EXECUTE format('INSERT INTO %I.%I OVERRIDING SYSTEM VALUE SELECT ($1).*', TG_TABLE_SCHEMA, TG_TABLE_NAME)
      USING NEW;
    RAISE EXCEPTION USING ERRCODE = 'P0A01';  -- accepted: undo the trial row and the setting
  EXCEPTION
    WHEN integrity_constraint_violation THEN
      GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, cn = CONSTRAINT_NAME, col = COLUMN_NAME,
        tbl = TABLE_NAME, sch = SCHEMA_NAME, det = PG_EXCEPTION_DETAIL;
      msg := CASE st
        WHEN '23505' THEN format('la valeur d''une clé dupliquée rompt la contrainte unique « %s »', cn)
        WHEN '23503' THEN format('une instruction insert ou update sur la table « %s » viole la contrainte '
                                 'de clé étrangère « %s »', tbl, cn)
        WHEN '23514' THEN format('la nouvelle ligne de la relation « %s » viole la contrainte de '
                                 'vérification « %s »', tbl, cn)
        WHEN '23502' THEN format('une valeur NULL viole la contrainte NOT NULL de la colonne « %s » dans '
                                 'la relation « %s »', col, tbl)
        ELSE format('violation de la contrainte d''intégrité « %s »', cn)
      END;
      det := regexp_replace(det, '^Key (.*) already exists\.$', 'La clé « \1 » existe déjà.');
      det := regexp_replace(det, '^Key (.*) is not present in table "(.*)"\.$',
                            'La clé « \1 » n''est pas présente dans la table « \2 ».');
      det := regexp_replace(det, '^Failing row contains (.*)\.$', 'La ligne en échec contient \1.');
      -- PostgreSQL names a column (NOT NULL) or a constraint (the others), never an empty one
      IF col <> '' THEN
        RAISE EXCEPTION USING ERRCODE = st, MESSAGE = msg, DETAIL = det, COLUMN = col, TABLE = tbl, SCHEMA = sch;
      END IF;
      RAISE EXCEPTION USING ERRCODE = st, MESSAGE = msg, DETAIL = det, CONSTRAINT = cn, TABLE = tbl, SCHEMA = sch;
    WHEN OTHERS THEN
      NULL;  -- accepted (P0A01), or the trial could not run: the real insert decides
  END;
  RETURN NEW;
END
$fn$
"""


@asynccontextmanager
async def french_messages(db: Any, tables: list[str]) -> AsyncIterator[None]:
    """While inside, inserts into `tables` that break a constraint fail with PostgreSQL's French
    wording (message and detail); SQLSTATE, constraint, column, table and schema stay the real ones.

    `db` is a database URL or an engine. Stands in for `lc_messages = 'fr_FR.UTF-8'`, which needs
    a server built with translations and the locale installed (the bundled one has neither).
    """
    conn = await asyncpg.connect(**asyncpg_params(make_url(_url_of(db))))
    try:
        await conn.execute(FRENCH_FUNCTION)
        for table in tables:
            await conn.execute(
                f'CREATE TRIGGER {FRENCH} BEFORE INSERT ON "{table}" FOR EACH ROW EXECUTE FUNCTION {FRENCH}()'
            )
        yield
    finally:
        await conn.execute(f"DROP FUNCTION IF EXISTS {FRENCH}() CASCADE")  # its triggers go with it
        await conn.close()


@contextmanager
def database_errors(engine: Any) -> Iterator[list[BaseException]]:
    """The driver errors `engine` meets while inside, handled by the app or not."""
    seen: list[BaseException] = []
    target = getattr(engine, "sync_engine", engine)

    def record(context: Any) -> None:
        seen.append(context.original_exception)

    event.listen(target, "handle_error", record)
    try:
        yield seen
    finally:
        event.remove(target, "handle_error", record)


def _said(errors: list[BaseException]) -> str:
    """ "PostgreSQL said: 23505 « la valeur … »", for the message; empty when nothing was refused."""
    for error in errors:
        sqlstate = getattr(error, "sqlstate", None)
        if sqlstate:
            return f"; PostgreSQL said: {sqlstate} {_short(str(error).splitlines()[0], 140)!r}"
    return ""


# --------------------------------------------------------------------------- helpers


def _body(ex: Exchange) -> Any:
    try:
        return ex.response.json()
    except ValueError:
        return None


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _kinds_after_first_rollback(kinds: list[str]) -> list[str]:
    return kinds[kinds.index("ROLLBACK") + 1 :] if "ROLLBACK" in kinds else []


def _first_error_is(ex: Exchange, name: str) -> bool:
    """The first exception the app raised during `ex` is of the class called `name`."""
    return bool(ex.errors) and type(ex.errors[0]).__name__ == name


def _unfinished(expected: str, col: Collision) -> Verdict:
    return verdict(
        False,
        expected,
        f"the request did not finish: {col.error!r}",
        hint="the request hung or crashed the test client; see the error above.",
    )


# --------------------------------------------------------------------------- checks


@check
async def maps_integrity_error(
    probe: Probe,
    call: Call,
    *,
    status: int,
    field: str,
    tables: list[str],
    messages: Literal["english", "french"] = "english",
) -> Verdict:
    """`call` violates a constraint: the client gets `status` with a JSON body whose `field` names
    the offending field, and none of `tables` changes (nothing half-written, nothing committed).

    With `messages="french"` PostgreSQL words its errors in French during the request (see
    `french_messages`): the SQLSTATE and constraint name are the same, the text is not."""
    french = messages == "french"
    before = {t: await probe.count_rows(t) for t in tables}
    with database_errors(probe.engine) as errors:
        if french:
            async with french_messages(probe.engine, tables):
                ex = await probe.request(call)
        else:
            ex = await probe.request(call)
    after = {t: await probe.count_rows(t) for t in tables}
    body = _body(ex)
    named = body.get("field") if isinstance(body, dict) else None
    changed = {t: (before[t], after[t]) for t in tables if before[t] != after[t]}
    kinds = ex.tx_kinds()
    passed = ex.status == status and named == field and not changed and not ex.error_after_response
    counts = "; ".join(f"{t} {rows(after[t])} (was {before[t]})" for t in tables)
    return verdict(
        passed,
        (
            f'{call} answers {status} with a JSON body whose "field" is {field!r}, '
            f"and {', '.join(tables)} stay unchanged"
            + (" — with PostgreSQL's messages in French (same SQLSTATE and constraint, other words)" if french else "")
        ),
        f"{outcome(ex)}, body {_short(ex.response.text)}{_said(errors)}; {counts}; transactions: {trace(kinds)}",
        ex.sql,
        hint=first_hint(
            Hint(
                _first_error_is(ex, "PendingRollbackError"),
                "the session was used again after a failed flush: its transaction is dead until it is "
                "rolled back (PendingRollbackError). Let the IntegrityError propagate out of the route "
                "(get_db then skips its commit and the session rolls back when it closes) and turn it "
                "into a response in an exception handler — or `await session.rollback()` before "
                "anything else touches the session.",
            ),
            Hint(
                changed,
                "the request failed but rows were committed: something committed before the failing "
                "statement (a commit in the route, or a handler that commits). Commit once, in get_db, "
                "only when the route succeeded.",
            ),
            Hint(
                french and (ex.status != status or named != field),
                "PostgreSQL answered in French here, as a server whose lc_messages is fr_FR does: the "
                "SQLSTATE, the constraint name and the column were exactly those of the English error, "
                "only the words changed. A handler that looks for English words ('duplicate key', "
                "'violates foreign key', 'null value in column') in the message answers wrongly; decide "
                "by `exc.orig.sqlstate` (or asyncpg's exception class) and find the field from "
                "`exc.orig.driver_exception.constraint_name` (`column_name` for NOT NULL).",
            ),
            Hint(
                ex.status == 500,
                "the constraint violation escaped as a 500. Catch sqlalchemy.exc.IntegrityError and "
                "decide by `exc.orig.sqlstate` (23505 unique, 23503 foreign key, 23514 check, "
                "23502 not null) and by the constraint's name (`exc.orig.driver_exception."
                "constraint_name`), not by the message text.",
            ),
            Hint(
                ex.status != status,
                f"the status should be {status}: 409 Conflict when the row clashes with one that "
                "exists (unique, SQLSTATE 23505); 422 when the data refers to something that does not "
                "exist or breaks a rule (foreign key 23503, check 23514, not null 23502). Read the "
                "SQLSTATE, not the message: the message's words (and the SQL and parameters that "
                "SQLAlchemy appends to it) are not a stable interface.",
            ),
            Hint(
                named != field,
                f'the JSON body\'s "field" should be {field!r}, got {named!r}. Find it from the '
                "constraint that was violated (`exc.orig.driver_exception.constraint_name`, or "
                "`column_name` for NOT NULL) — searching str(exc) for a column name finds the SQL "
                "statement, which names every column.",
            ),
            default="the client got its answer but the app raised afterwards: commit before the response "
            '(`Depends(get_db, scope="function")`).',
        ),
    )


@check
async def not_retried(probe: Probe, call: Call, *, table: str, verb: str = "INSERT") -> Verdict:
    """`call` fails with an error that retrying cannot fix (a unique violation): the app must
    answer a 4xx after sending its `verb` on `table` exactly once."""
    t0 = time.perf_counter()
    ex = await probe.request(call)
    seconds = time.perf_counter() - t0
    needle = f"{verb.upper()} INTO {table.upper()}" if verb.upper() == "INSERT" else f"{verb.upper()} {table.upper()}"
    sent = [s.sql for s in ex.statements if s.kind == verb.upper() and needle in " ".join(s.sql.upper().split())]
    attempts = ex.tx_kinds().count("BEGIN")
    return verdict(
        len(sent) == 1 and 400 <= ex.status < 500,
        f"{call} is refused with a 4xx after exactly one {verb} on {table} (no retry)",
        (
            f"{outcome(ex)} after {seconds:.2f} s; {verb} on {table} sent {len(sent)} time(s) in "
            f"{attempts} transaction(s); transactions: {trace(ex.tx_kinds())}"
        ),
        ex.sql,
        hint=first_hint(
            Hint(
                len(sent) > 1,
                f"the same {verb} was sent {len(sent)} times: the retry also caught an error that cannot "
                "succeed on a second try. Retry only SQLSTATE 40001 (serialization failure) and 40P01 "
                "(deadlock) — check `exc.orig.sqlstate` — and re-raise everything else at once.",
            ),
            Hint(not sent, f"no {verb} on {table} reached the database; the request should try once."),
            default=(
                f"the {verb} ran once, but the client got {ex.status}: a duplicate is the client's "
                "problem (409), not a 5xx."
            ),
        ),
    )


async def _collide_request(
    probe: Probe,
    call: Call,
    conflict_sql: str,
    conflicts: int,
    wait: float,
) -> tuple[Collision, Exchange | None]:
    col = await collide(probe.engine, conflict_sql, probe.request(call), conflicts=conflicts, wait=wait)
    return col, col.result


@check
async def retried_until_success(
    probe: Probe,
    call: Call,
    *,
    conflict_sql: str,
    state_sql: str,
    expected: Callable[[int], Any],
    conflicts: int = 1,
    wait: float = 5.0,
) -> Verdict:
    """A real serialization failure hits `call`'s transaction (`conflicts` times); the app must run
    the whole transaction again and succeed: a 2xx, a ROLLBACK followed by a new BEGIN … COMMIT,
    exactly one COMMIT, and `state_sql` (one value) equal to `expected(conflicts committed)`."""
    col, ex = await _collide_request(probe, call, conflict_sql, conflicts, wait)
    state = await probe.fetchval(state_sql)
    want = expected(col.committed)
    if ex is None:
        return _unfinished(f"{call} answers a 2xx after retrying", col)
    kinds = ex.tx_kinds()
    after = _kinds_after_first_rollback(kinds)
    retried = "BEGIN" in after and after[-1:] == ["COMMIT"]
    commits = kinds.count("COMMIT")
    passed = 200 <= ex.status < 300 and col.blocked >= 1 and retried and commits == 1 and state == want
    cause = ex.errors[0] if ex.errors else None
    return verdict(
        passed,
        (
            f"{call} meets {conflicts} serialization failure(s) (SQLSTATE 40001), runs its whole "
            f"transaction again and succeeds: ..., ROLLBACK, BEGIN, ..., COMMIT; final value {want!r}"
        ),
        (
            f"{outcome(ex)}; blocked {col.blocked} time(s), {col.committed} conflicting change(s) "
            f"committed; final value {state!r}; transactions: {trace(kinds)}"
        ),
        ex.sql,
        hint=first_hint(
            Hint(
                col.blocked == 0,
                "the request never waited on the row the test was changing, so no conflict could be "
                "produced; use the lesson's app unchanged (its transaction must read, then update the "
                "row, at REPEATABLE READ).",
            ),
            Hint(
                _first_error_is(ex, "PendingRollbackError")
                or "InFailedSQLTransaction" in repr(cause)
                or (cause is not None and "current transaction is aborted" in str(cause)),
                "the retry re-ran a statement inside the transaction that had already failed. A "
                "serialization failure kills the whole transaction: roll it back, open a NEW session "
                "(a new transaction, a new snapshot) and run the whole unit of work again.",
            ),
            Hint(
                "ROLLBACK" not in kinds or "BEGIN" not in after,
                "the transaction failed with SQLSTATE 40001 and was not run again. Catch DBAPIError, "
                "and when `exc.orig.sqlstate` is 40001 or 40P01 run the whole transaction again in a "
                "fresh session (with a short, growing delay and a bounded number of attempts).",
            ),
            Hint(
                commits != 1,
                f"{commits} COMMITs: the retried transaction must be the only one that commits; an "
                "earlier attempt's work must be rolled back, not committed.",
            ),
            Hint(
                state != want,
                f"the final value is {state!r}, expected {want!r}: the retry must read the row again "
                "in its new transaction, not reuse what the failed attempt read.",
            ),
            default=f"{call} should succeed once the retry got through; it answered {ex.status}.",
        ),
    )


@check
async def retries_bounded(
    probe: Probe,
    call: Call,
    *,
    conflict_sql: str,
    max_attempts: int,
    status: int = 503,
    wait: float = 5.0,
) -> Verdict:
    """Every attempt of `call` meets a serialization failure: the app must give up after at most
    `max_attempts` attempts (and at least 2) and answer `status` (503: try again later)."""
    limit = max_attempts + 3
    col, ex = await _collide_request(probe, call, conflict_sql, limit, wait)
    if ex is None:
        return _unfinished(f"{call} gives up with {status}", col)
    kinds = ex.tx_kinds()
    attempts = max(col.blocked, kinds.count("BEGIN"))
    return verdict(
        2 <= attempts <= max_attempts and ex.status == status,
        (
            f"{call} meets a serialization failure on every attempt and gives up after 2 to "
            f"{max_attempts} attempts with {status}"
        ),
        f"{outcome(ex)} after {attempts} attempt(s) and {col.seconds:.2f} s; transactions: {trace(kinds)}",
        ex.sql[:40],
        hint=first_hint(
            Hint(
                attempts > max_attempts,
                f"the request made {attempts} attempts and stopped only because the test stopped "
                f"conflicting after {limit}. Retry a bounded number of times (3 or 4 attempts), with a "
                "short growing delay, then re-raise: under real contention an unbounded loop holds a "
                "connection and the client forever.",
            ),
            Hint(
                attempts < 2,
                "the request gave up at the first serialization failure: retry 40001/40P01 at least "
                "once, in a new transaction.",
            ),
            Hint(200 <= ex.status < 300, "every attempt failed, yet the client was told it worked."),
            default=(
                f"after the last attempt the client should get {status} (the error is temporary: "
                f'"try again later"), got {ex.status}. Re-raise the last error from the retry helper and '
                "let the app's handler for DBAPIError answer 503."
            ),
        ),
    )
