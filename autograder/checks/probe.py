"""Run an app under observation, one request at a time.

`async with Probe(app) as probe:` starts the app (AppDriver), attaches every
observer to its engine (`app.state.engine` unless one is given) and opens a
separate asyncpg connection for verification. `await probe.request(...)`
returns an `Exchange`: that one request's response plus everything observed
while it ran. The verification connection is deliberately *not* the app's
engine: it sees only committed data, exactly like the next user would.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
from sqlalchemy.engine import make_url

from autograder.app_errors import app_error
from autograder.db.admin import asyncpg_params
from autograder.driver import AppDriver
from autograder.observe import Observation
from autograder.observe.pool import PoolWatch
from autograder.observe.sql import Statement
from autograder.observe.transactions import TxEvent


@dataclass(frozen=True)
class Call:
    """A request to make, as a value: `Call.post("/users", json={...})`."""

    method: str
    url: str
    kwargs: dict[str, Any] = field(default_factory=dict)

    def __init__(self, method: str, url: str, **kwargs: Any):
        object.__setattr__(self, "method", method.upper())
        object.__setattr__(self, "url", url)
        object.__setattr__(self, "kwargs", kwargs)

    def __str__(self) -> str:
        return f"{self.method} {self.url}"

    @classmethod
    def get(cls, url: str, **kw: Any) -> Call:
        return cls("GET", url, **kw)

    @classmethod
    def post(cls, url: str, **kw: Any) -> Call:
        return cls("POST", url, **kw)

    @classmethod
    def put(cls, url: str, **kw: Any) -> Call:
        return cls("PUT", url, **kw)

    @classmethod
    def patch(cls, url: str, **kw: Any) -> Call:
        return cls("PATCH", url, **kw)

    @classmethod
    def delete(cls, url: str, **kw: Any) -> Call:
        return cls("DELETE", url, **kw)


@dataclass
class Exchange:
    """One request and what the database saw while it ran."""

    call: Call
    response: httpx.Response
    statements: list[Statement]
    transactions: list[TxEvent]
    errors: list[BaseException]
    lazy_loads: list[str]
    sessions: list[int]  # serials of the Session objects that did work, in order
    checked_out: int  # pool connections still checked out once the request was over

    @property
    def status(self) -> int:
        return self.response.status_code

    @property
    def failed(self) -> bool:
        """The client was told the request failed. Judged on the status alone: an
        exception raised after a 2xx was sent (a yield dependency committing after
        the response) is a *lie* to the client, not a failure it can see."""
        return self.status >= 400

    @property
    def error_after_response(self) -> bool:
        """The app raised although the client already got a success status."""
        return self.status < 400 and bool(self.errors)

    @property
    def crash(self) -> str:
        """What the app raised, as the learner reads it (type, first line, their line, the lesson),
        or "" when it raised nothing. The same text is the body of the 500 it caused."""
        return app_error(self.errors[0]) if self.errors else ""

    @property
    def sql(self) -> list[str]:
        return [s.sql for s in self.statements]

    def tx_kinds(self) -> list[str]:
        return [e.kind for e in self.transactions]


class Probe:
    def __init__(self, app: Any, engine: Any = None, db_url: str | None = None):
        self.app = app
        self.driver = AppDriver(app)
        self._engine = engine
        self._db_url = db_url
        self.observation: Observation | None = None
        self._verify: asyncpg.Connection | None = None

    @property
    def engine(self) -> Any:
        if self._engine is None:
            raise RuntimeError("the probe is not started: use `async with Probe(app) as probe:`")
        return self._engine

    @property
    def pool(self) -> PoolWatch:
        if self.observation is None:
            raise RuntimeError("the probe is not started: use `async with Probe(app) as probe:`")
        return self.observation.pool

    @property
    def _verification(self) -> asyncpg.Connection:
        if self._verify is None:
            raise RuntimeError("the probe is not started: use `async with Probe(app) as probe:`")
        return self._verify

    async def __aenter__(self) -> Probe:
        await self.driver.__aenter__()
        try:
            if self._engine is None:
                self._engine = getattr(self.app.state, "engine", None)
                if self._engine is None:
                    raise AssertionError(
                        "the app has no `app.state.engine` after startup: create the engine in the "
                        "lifespan and store it there (app.state.engine = engine), or pass engine=... to Probe"
                    )
            self.observation = Observation(self._engine).__enter__()
            url = self._db_url or self._engine.url.render_as_string(hide_password=False)
            self._verify = await asyncpg.connect(**asyncpg_params(make_url(url)))
        except BaseException:
            await self._close()
            raise
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self._close(exc_info)

    async def _close(self, exc_info: Any = (None, None, None)) -> None:
        try:
            if self.observation is not None:
                # leaked connections are invalidated before the app disposes its engine
                await self.observation.pool.release_leaked()
                self.observation.__exit__(None, None, None)
                self.observation = None
            if self._verify is not None:
                await self._verify.close()
                self._verify = None
        finally:
            await self.driver.__aexit__(*exc_info)

    async def request(self, method: str | Call, url: str | None = None, **kw: Any) -> Exchange:
        if isinstance(method, Call):
            call = method
        elif url is None:
            raise TypeError("request(method, url, ...) needs a url when the method is a string")
        else:
            call = Call(method, url, **kw)
        obs = self.observation
        if obs is None:
            raise RuntimeError("the probe is not started: use `async with Probe(app) as probe:`")
        marks = (
            len(obs.sql.statements),
            len(obs.tx.events),
            len(self.driver.errors),
            len(obs.loads.loads),
            len(obs.sessions.uses),
        )
        response = await self.driver.request(call.method, call.url, **call.kwargs)
        sql_at, tx_at, err_at, load_at, use_at = marks
        return Exchange(
            call=call,
            response=response,
            statements=obs.sql.statements[sql_at:],
            transactions=obs.tx.events[tx_at:],
            errors=self.driver.errors[err_at:],
            lazy_loads=[load.attribute for load in obs.loads.loads[load_at:]],
            sessions=list(dict.fromkeys(u.serial for u in obs.sessions.uses[use_at:])),
            checked_out=obs.pool.checked_out(),
        )

    async def count_rows(self, table: str, where_sql: str | None = None) -> int:
        """Rows in `table` as the next user would see them (committed data only).

        `table` and `where_sql` come from the check's author, not the student.
        """
        quoted = ".".join(f'"{part}"' for part in table.split("."))
        query = f"SELECT count(*) FROM {quoted}" + (f" WHERE {where_sql}" if where_sql else "")
        return int(await self._verification.fetchval(query))

    async def fetch(self, query: str, *args: Any) -> list[Any]:
        """Rows of `query` on the verification connection (committed data only).
        The SQL comes from the check's author, never from the submission."""
        return await self._verification.fetch(query, *args)

    async def fetchval(self, query: str, *args: Any) -> Any:
        return await self._verification.fetchval(query, *args)

    async def execute(self, statement: str) -> None:
        """Run `statement` on the verification connection (autocommit). The SQL comes from the
        check's author, never from the submission (e.g. a trigger a check installs for a while)."""
        await self._verification.execute(statement)

    async def server_connections(self) -> int:
        """Other client backends connected to this database right now."""
        return int(
            await self._verification.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
            )
        )
