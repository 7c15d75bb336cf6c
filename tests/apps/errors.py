"""Sign-ups and counters whose database errors become HTTP answers, with switchable mistakes ("mutants").

`make_errors_app(db_url, variant=...)` builds a FastAPI app whose lifespan creates the engine
(`app.state.engine`) and the tables: teams (id 1 exists), users (email and username unique, team_id a
foreign key), audit_log (written before the user, so a failing sign-up has half-written), counters
(unique name, an integer value; counter "c" exists). Routes:

- POST /users {email, username, team_id}: audit row, flush, user row, flush; get_db commits
  (a blank username breaks the CHECK constraint ck_users_username_not_blank)
- POST /counters {name}: a new counter, through the retry helper
- POST /counters/{name}/bump: read, add 1, write, at REPEATABLE READ, through the retry helper

Variants:

- "correct": IntegrityError mapped by SQLSTATE and constraint name (409 unique, 422 foreign key);
  the whole transaction re-run in a fresh session on 40001/40P01, at most 4 attempts; 503 after that
- "text_match": maps by the message text, finds the field by searching str(exc) for a column name
- "english_words": maps by PostgreSQL's English wording ("duplicate key value", "violates foreign
  key", ...) and reads the constraint name out of the message: right on an English server only
- "asyncpg_classes": correct, another way: the status from asyncpg's exception class
  (UniqueViolationError, ...), the field from the constraint name
- "constraint_names": correct, another way: status and field both from the constraint's name
- "no_rollback": catches the IntegrityError in the route and answers 409 without rolling back
- "single_statement": the retry wraps the flush only, inside the failed transaction
- "retry_everything": retries every DBAPIError, constraint violations included
- "unbounded": retries serialization failures for as long as they happen
- "no_retry": no retry at all
"""

import asyncio
import random
import re

import asyncpg
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import CheckConstraint, ForeignKey, MetaData, String, select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from tests.apps.common import DB, database_lifespan, schema

VARIANTS = {
    "correct",
    "text_match",
    "english_words",
    "asyncpg_classes",
    "constraint_names",
    "no_rollback",
    "single_statement",
    "retry_everything",
    "unbounded",
    "no_retry",
}
# asyncpg picks the exception class from the SQLSTATE: the class is as reliable as the code
CONFLICT_CLASSES = (asyncpg.UniqueViolationError,)
INVALID_CLASSES = (asyncpg.ForeignKeyViolationError, asyncpg.CheckViolationError, asyncpg.NotNullViolationError)
RETRYABLE = {"40001", "40P01"}

NAMING = {
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s",
    "pk": "pk_%(table_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
}


class UserIn(BaseModel):
    email: str
    username: str
    team_id: int


class CounterIn(BaseModel):
    name: str


def make_errors_app(db_url: str, variant: str = "correct") -> FastAPI:
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}")

    class Base(DeclarativeBase):
        metadata = MetaData(naming_convention=NAMING)

    class Team(Base):
        __tablename__ = "teams"
        id: Mapped[int] = mapped_column(primary_key=True)

    class User(Base):
        __tablename__ = "users"
        __table_args__ = (CheckConstraint("length(trim(username)) > 0", name="username_not_blank"),)
        id: Mapped[int] = mapped_column(primary_key=True)
        email: Mapped[str] = mapped_column(String(100), unique=True)
        username: Mapped[str] = mapped_column(String(50), unique=True)
        team_id: Mapped[int] = mapped_column(ForeignKey("teams.id"))

    class AuditLog(Base):
        __tablename__ = "audit_log"
        id: Mapped[int] = mapped_column(primary_key=True)
        event: Mapped[str] = mapped_column(String(100))

    class Counter(Base):
        __tablename__ = "counters"
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str] = mapped_column(String(50), unique=True)
        value: Mapped[int] = mapped_column(default=0)

    # constraint name -> the field a client knows it by
    fields = {
        c.name: c.columns.keys()[0]
        for t in Base.metadata.tables.values()
        for c in t.constraints
        if c.name and len(c.columns) == 1
    }
    fields["ck_users_username_not_blank"] = "username"  # a CHECK written as SQL names no column

    async def first_rows(conn):
        await conn.execute(Team.__table__.insert(), [{"id": 1}])
        await conn.execute(Counter.__table__.insert(), [{"name": "c", "value": 0}])

    async def repeatable_read_sessions(app: FastAPI):
        app.state.rr_sessionmaker = async_sessionmaker(
            app.state.engine.execution_options(isolation_level="REPEATABLE READ"), expire_on_commit=False
        )

    app = FastAPI(
        lifespan=database_lifespan(
            db_url, schema(Base.metadata, fresh=True, seed=first_rows), started=repeatable_read_sessions
        )
    )

    def english_words_response(exc: IntegrityError) -> JSONResponse:
        # BUG: PostgreSQL's English wording decides; another lc_messages, another answer
        message = str(exc.orig)
        named = re.search(r'constraint "([^"]+)"', message)
        field = fields.get(named.group(1)) if named else None
        if "duplicate key value" in message:
            return JSONResponse({"detail": f"{field} already taken", "field": field}, 409)
        if any(words in message for words in ("violates foreign key", "violates check", "null value in column")):
            return JSONResponse({"detail": f"invalid {field}", "field": field}, 422)
        return JSONResponse({"detail": "database error"}, 500)

    def asyncpg_class_response(exc: IntegrityError) -> JSONResponse:
        driver = exc.orig.__cause__  # the exception asyncpg raised
        field = fields.get(getattr(driver, "constraint_name", None)) or getattr(driver, "column_name", None)
        if isinstance(driver, CONFLICT_CLASSES):
            return JSONResponse({"detail": f"{field} already taken", "field": field}, 409)
        if isinstance(driver, INVALID_CLASSES):
            return JSONResponse({"detail": f"invalid {field}", "field": field}, 422)
        return JSONResponse({"detail": "database error"}, 500)

    def constraint_name_response(exc: IntegrityError) -> JSONResponse:
        name = getattr(exc.orig.__cause__, "constraint_name", None) or ""
        field = fields.get(name)
        status = 409 if name.startswith(("uq_", "pk_")) else 422 if name.startswith(("fk_", "ck_")) else 500
        return JSONResponse({"detail": f"problem with {field}", "field": field}, status)

    def integrity_response(exc: IntegrityError) -> JSONResponse:
        if variant == "english_words":
            return english_words_response(exc)
        if variant == "asyncpg_classes":
            return asyncpg_class_response(exc)
        if variant == "constraint_names":
            return constraint_name_response(exc)
        if variant == "text_match":  # BUG: the message text decides, and str(exc) quotes the SQL
            text = str(exc)
            field = next((f for f in ("email", "username", "team_id") if f in text), None)
            if "constraint" in text.lower():
                return JSONResponse({"detail": f"{field} already exists", "field": field}, 409)
            return JSONResponse({"detail": "invalid"}, 400)
        sqlstate = getattr(exc.orig, "sqlstate", None)
        driver = getattr(exc.orig, "driver_exception", None)
        name = getattr(driver, "constraint_name", None)
        field = fields.get(name) or getattr(driver, "column_name", None)
        if sqlstate == "23505":
            return JSONResponse({"detail": f"{field} already taken", "field": field}, 409)
        if sqlstate in ("23503", "23514", "23502"):
            return JSONResponse({"detail": f"invalid {field}", "field": field}, 422)
        return JSONResponse({"detail": "database error"}, 500)

    @app.exception_handler(IntegrityError)
    async def on_integrity_error(request: Request, exc: IntegrityError):
        return integrity_response(exc)

    @app.exception_handler(DBAPIError)
    async def on_database_error(request: Request, exc: DBAPIError):
        if getattr(exc.orig, "sqlstate", None) in RETRYABLE:
            return JSONResponse({"detail": "busy, try again"}, 503, headers={"Retry-After": "1"})
        return JSONResponse({"detail": "database error"}, 500)

    def retryable(exc: DBAPIError) -> bool:
        if variant == "retry_everything":  # BUG: a duplicate stays a duplicate
            return True
        if variant == "no_retry":
            return False
        return getattr(exc.orig, "sqlstate", None) in RETRYABLE

    async def run_transaction(session_factory, work, attempts: int = 4):
        attempt = 0
        while True:
            attempt += 1
            try:
                async with session_factory() as session:
                    result = await work(session)
                    await session.commit()
                    return result
            except DBAPIError as exc:
                if not retryable(exc):
                    raise
                if variant != "unbounded" and attempt >= attempts:  # "unbounded": BUG, no limit
                    raise
            await asyncio.sleep(0.01 * 2 ** min(attempt, 4) * random.random())

    async def flush_with_retry(session, attempts: int = 4):
        # the seed's shape: a retry around one statement, inside one transaction
        for attempt in range(1, attempts + 1):
            try:
                return await session.flush()
            except DBAPIError as exc:
                if not retryable(exc) or attempt == attempts:
                    raise
                await asyncio.sleep(0.01)
        return None  # attempts < 1: nothing was tried

    @app.post("/users", status_code=201)
    async def create_user(body: UserIn, db: DB):
        db.add(AuditLog(event=f"signup {body.email}"))
        await db.flush()
        user = User(**body.model_dump())
        db.add(user)
        if variant == "no_rollback":  # BUG: answers, and get_db then commits a dead session
            try:
                await db.flush()
            except IntegrityError as exc:
                return integrity_response(exc)
        else:
            await db.flush()
        return {"id": user.id, "email": user.email}

    @app.post("/counters", status_code=201)
    async def create_counter(body: CounterIn, request: Request):
        async def work(session):
            counter = Counter(name=body.name, value=0)
            session.add(counter)
            await session.flush()
            return {"id": counter.id, "name": counter.name}

        return await run_transaction(request.app.state.sessionmaker, work)

    @app.post("/counters/{name}/bump")
    async def bump(name: str, request: Request):
        if variant == "single_statement":
            async with request.app.state.rr_sessionmaker() as session:
                counter = await session.scalar(select(Counter).where(Counter.name == name))
                counter.value += 1
                await flush_with_retry(session)
                await session.commit()
                return {"value": counter.value}

        async def work(session):
            counter = await session.scalar(select(Counter).where(Counter.name == name))
            counter.value += 1
            await session.flush()
            return {"value": counter.value}

        return await run_transaction(request.app.state.rr_sessionmaker, work)

    return app
