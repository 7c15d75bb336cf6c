"""A ticket tracker (projects, tickets, audit entries) with switchable mistakes ("mutants").

`make_tracker_app(db_url, variant=..., tickets=...)` builds a FastAPI app whose lifespan
creates the engine (`app.state.engine`), the tables, one project and `tickets` tickets
(ids 1..n, titles "t1".."tn"); ticket 3 is soft-deleted.

Routes:
- GET /tickets?limit=N&after=ID   newest first, keyset: {"items": [...], "next_after": id | None}
- POST /tickets                    {"title": ...} -> 201 {"id": ..., "version": 1}
- PATCH /tickets/{id}              {"title": ..., "version": n} -> 200 {"id", "title", "version"}
                                   409 when `version` is not the current one

Variants, each a mistake a check must catch:
- "correct": keyset `id < after ORDER BY id DESC LIMIT n`, project name joined in the same
  statement, soft-deleted rows excluded; PATCH compares the client's version and the mapper's
  `version_id_col` guards the UPDATE (`... WHERE id = ? AND version = ?`), StaleDataError -> 409
- "offset_cursor": the cursor is an offset (`OFFSET after`): rows shift under inserts
- "count_per_page": offset pagination plus a COUNT(*) for a total, on every page
- "inclusive_cursor": keyset with `id <= after`: each page repeats the previous page's last row
- "shows_deleted": forgets the soft-delete filter
- "lazy_project": reads each ticket's project through `awaitable_attrs` (1 + N statements)
- "no_version_check": no optimistic locking at all (no version check, no version_id_col):
  every request wins, the last writer silently overwrites the others
- "python_check_only": compares versions in Python, but the UPDATE is unguarded (no
  version_id_col): concurrent requests that all read version n all win
- "stale_500": version_id_col without handling StaleDataError: losers crash with 500
"""

import asyncio
from datetime import UTC, datetime

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, Field
from sqlalchemy import DateTime, ForeignKey, String, func, select
from sqlalchemy.ext.asyncio import AsyncAttrs
from sqlalchemy.orm import DeclarativeBase, Mapped, joinedload, mapped_column, relationship
from sqlalchemy.orm.exc import StaleDataError

from tests.apps.common import DB, database_lifespan, schema

VARIANTS = {
    "correct",
    "offset_cursor",
    "count_per_page",
    "inclusive_cursor",
    "shows_deleted",
    "lazy_project",
    "no_version_check",
    "python_check_only",
    "stale_500",
}
DELETED_ID = 3


class TicketPatch(BaseModel):
    title: str = Field(min_length=1, max_length=200)
    version: int


class TicketIn(BaseModel):
    title: str = Field(min_length=1, max_length=200)


def make_tracker_app(db_url: str, variant: str = "correct", tickets: int = 23) -> FastAPI:
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}")

    class Base(AsyncAttrs, DeclarativeBase):
        type_annotation_map = {datetime: DateTime(timezone=True)}  # noqa: RUF012 - as the lessons write it

    class Project(Base):
        __tablename__ = "projects"
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str] = mapped_column(String(50), unique=True)

    class Ticket(Base):
        __tablename__ = "tickets"
        id: Mapped[int] = mapped_column(primary_key=True)
        project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
        title: Mapped[str] = mapped_column(String(200))
        version: Mapped[int] = mapped_column(default=1)
        deleted_at: Mapped[datetime | None]
        project: Mapped[Project] = relationship()
        if variant not in ("python_check_only", "no_version_check"):
            __mapper_args__ = {"version_id_col": version}

    async def open_tickets(conn):
        await conn.execute(Project.__table__.insert().values(id=1, name="core"))
        await conn.execute(
            Ticket.__table__.insert(),
            [
                {
                    "project_id": 1,
                    "title": f"t{i}",
                    "version": 1,
                    "deleted_at": datetime.now(UTC) if i == DELETED_ID else None,
                }
                for i in range(1, tickets + 1)
            ],
        )

    app = FastAPI(lifespan=database_lifespan(db_url, schema(Base.metadata, fresh=True, seed=open_tickets)))

    def live(stmt):
        return stmt if variant == "shows_deleted" else stmt.where(Ticket.deleted_at.is_(None))

    @app.get("/tickets")
    async def list_tickets(db: DB, limit: int = 10, after: int | None = None):
        stmt = live(select(Ticket)).order_by(Ticket.id.desc()).limit(limit)
        if variant != "lazy_project":
            stmt = stmt.options(joinedload(Ticket.project))
        if variant in ("offset_cursor", "count_per_page"):
            stmt = stmt.offset(after or 0)
            if variant == "count_per_page":
                await db.scalar(live(select(func.count()).select_from(Ticket)))
        elif after is not None:
            stmt = stmt.where(Ticket.id <= after if variant == "inclusive_cursor" else Ticket.id < after)
        rows = (await db.scalars(stmt)).all()
        items = []
        for t in rows:
            project = await t.awaitable_attrs.project if variant == "lazy_project" else t.project
            items.append({"id": t.id, "title": t.title, "project": project.name})
        if len(rows) < limit:
            cursor = None
        elif variant in ("offset_cursor", "count_per_page"):
            cursor = (after or 0) + limit
        else:
            cursor = rows[-1].id
        return {"items": items, "next_after": cursor}

    @app.post("/tickets", status_code=201)
    async def create_ticket(body: TicketIn, db: DB):
        ticket = Ticket(project_id=1, title=body.title)
        db.add(ticket)
        await db.flush()
        return {"id": ticket.id, "version": ticket.version}

    @app.patch("/tickets/{ticket_id}")
    async def patch_ticket(ticket_id: int, body: TicketPatch, db: DB):
        ticket = await db.scalar(live(select(Ticket).where(Ticket.id == ticket_id)))
        if ticket is None:
            raise HTTPException(404, "no such ticket")
        if variant != "no_version_check" and ticket.version != body.version:
            raise HTTPException(409, f"ticket {ticket_id} is at version {ticket.version}, not {body.version}")
        ticket.title = body.title
        if variant in ("python_check_only", "stale_500"):
            # The race is real, but on a fast or idle machine one request may finish before
            # the others have read (they then see the new version and answer 409 themselves);
            # widening the window makes the mutant lose every time. (Seen passing once in CI.)
            await asyncio.sleep(0.05)
        if variant == "python_check_only":
            ticket.version = ticket.version + 1
        try:
            await db.flush()
        except StaleDataError:
            if variant == "stale_500":
                raise
            raise HTTPException(409, f"ticket {ticket_id} was changed meanwhile") from None
        return {"id": ticket.id, "title": ticket.title, "version": ticket.version}

    return app
