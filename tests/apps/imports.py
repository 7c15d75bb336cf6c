"""A product import API with switchable mistakes, for the savepoint checks.

`POST /imports` takes `{"label": ..., "items": [{"sku", "name", "price_cents"}, ...]}`, imports
each item, writes one `import_runs` row for the batch (its label is unique) and answers 201 with
`{"imported": [...], "skipped": [{"index", "sku", "reason"}]}`. The engine sets
`lock_timeout`, so an item whose sku another transaction is inserting fails with SQLSTATE 55P03.

- "correct": one `begin_nested()` per item; IntegrityError and data errors (SQLSTATE 22) are
  skipped and reported, anything else propagates; the audit row is flushed in the outer
  transaction (duplicate label -> 409, nothing kept)
- "no_savepoint": flush per item, catch IntegrityError, roll the session back: all good rows lost
- "one_savepoint": one `begin_nested()` around the whole loop
- "except_pass": the seed's `except Exception: pass` — swallows a lock timeout too
- "commit_per_item": commits after each item (no savepoints)
- "audit_swallowed": the audit row in a savepoint whose failure is ignored: a duplicate label
  still commits the products
- "validate_first": correct without savepoints: the items are checked in Python (length, sign,
  duplicates in the batch) and against the table (one SELECT of the SKUs that exist), then the
  clean ones are inserted in one flush; a database error there (a lock timeout) fails the request
- "truncating": checks first too, but "repairs" a name that is too long by cutting it, so an item
  that must be skipped is committed
"""

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel
from sqlalchemy import CheckConstraint, String, select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from tests.apps.common import DB, database_lifespan, schema

VARIANTS = {
    "correct",
    "no_savepoint",
    "one_savepoint",
    "except_pass",
    "commit_per_item",
    "audit_swallowed",
    "validate_first",
    "truncating",
}
LOCK_TIMEOUT = "150ms"


class Base(DeclarativeBase):
    pass


class Product(Base):
    __tablename__ = "products"
    id: Mapped[int] = mapped_column(primary_key=True)
    sku: Mapped[str] = mapped_column(String(20), unique=True)
    name: Mapped[str] = mapped_column(String(30))
    price_cents: Mapped[int] = mapped_column(CheckConstraint("price_cents >= 0", name="price_not_negative"))


class ImportRun(Base):
    __tablename__ = "import_runs"
    id: Mapped[int] = mapped_column(primary_key=True)
    label: Mapped[str] = mapped_column(String(40), unique=True)
    imported: Mapped[int]
    skipped: Mapped[int]


class ItemIn(BaseModel):
    sku: str
    name: str
    price_cents: int


class BatchIn(BaseModel):
    label: str
    items: list[ItemIn]


def item_error(exc: DBAPIError) -> bool:
    """A constraint violation (23xxx) or bad data (22xxx): the item's fault, not the database's."""
    return isinstance(exc, IntegrityError) or (getattr(exc.orig, "sqlstate", "") or "").startswith("22")


def reason(exc: DBAPIError) -> str:
    return str(exc.orig).splitlines()[0]


NAME_LENGTH = Product.__table__.c.name.type.length


def problem_before_insert(item: ItemIn, seen: set[str], existing: set[str]) -> str | None:
    """Why the database would refuse `item`, found without asking it (the "validate first" variant)."""
    if item.sku in existing or item.sku in seen:
        return f"sku {item.sku!r} exists"
    if item.price_cents < 0:
        return "negative price"
    if len(item.name) > NAME_LENGTH:
        return f"name longer than {NAME_LENGTH} characters"
    return None


async def import_checked_first(db: AsyncSession, items: list[ItemIn], truncate: bool = False) -> dict:
    """Check every item first, then insert the clean ones in one flush: no savepoint at all."""
    existing = set(await db.scalars(select(Product.sku).where(Product.sku.in_([i.sku for i in items]))))
    imported: list[str] = []
    skipped: list[dict] = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        if truncate:  # BUG on purpose: an item that must be skipped is "repaired" and imported
            item = item.model_copy(update={"name": item.name[:NAME_LENGTH]})
        problem = problem_before_insert(item, seen, existing)
        if problem:
            skipped.append({"index": i, "sku": item.sku, "reason": problem})
            continue
        seen.add(item.sku)
        db.add(Product(**item.model_dump()))
        imported.append(item.sku)
    await db.flush()  # a database error here (a lock timeout) is not about one item: it propagates
    return {"imported": imported, "skipped": skipped}


def make_app(db_url: str, variant: str = "correct") -> FastAPI:
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}")

    app = FastAPI(
        lifespan=database_lifespan(
            db_url, schema(Base.metadata), connect_args={"server_settings": {"lock_timeout": LOCK_TIMEOUT}}
        )
    )

    async def import_items(db: AsyncSession, items: list[ItemIn]) -> dict:
        if variant in ("validate_first", "truncating"):
            return await import_checked_first(db, items, truncate=variant == "truncating")
        imported: list[str] = []
        skipped: list[dict] = []
        if variant == "no_savepoint":
            for i, item in enumerate(items):
                try:
                    db.add(Product(**item.model_dump()))
                    await db.flush()  # BUG: no savepoint; the failure aborts the transaction
                    imported.append(item.sku)
                except DBAPIError as exc:
                    await db.rollback()  # ... and this throws away every good row before it
                    skipped.append({"index": i, "sku": item.sku, "reason": reason(exc)})
            return {"imported": imported, "skipped": skipped}
        if variant == "one_savepoint":
            try:
                async with db.begin_nested():  # BUG: one savepoint for all the items
                    for item in items:
                        db.add(Product(**item.model_dump()))
                        await db.flush()
                        imported.append(item.sku)
            except DBAPIError as exc:
                skipped.append({"index": len(imported), "sku": "?", "reason": reason(exc)})
                imported = []
            return {"imported": imported, "skipped": skipped}
        if variant == "commit_per_item":
            for i, item in enumerate(items):
                try:
                    db.add(Product(**item.model_dump()))
                    await db.commit()  # BUG: every item is its own transaction
                    imported.append(item.sku)
                except DBAPIError as exc:
                    await db.rollback()
                    skipped.append({"index": i, "sku": item.sku, "reason": reason(exc)})
            return {"imported": imported, "skipped": skipped}
        if variant == "except_pass":
            for i, item in enumerate(items):
                try:
                    async with db.begin_nested():
                        db.add(Product(**item.model_dump()))
                    imported.append(item.sku)
                except Exception:  # noqa: BLE001 - BUG on purpose: swallows errors not about the item (a lock timeout)
                    skipped.append({"index": i, "sku": item.sku, "reason": "invalid"})
            return {"imported": imported, "skipped": skipped}
        for i, item in enumerate(items):
            try:
                async with db.begin_nested():
                    db.add(Product(**item.model_dump()))
            except DBAPIError as exc:
                if not item_error(exc):
                    raise  # not about this item: the whole request fails
                skipped.append({"index": i, "sku": item.sku, "reason": reason(exc)})
                continue
            imported.append(item.sku)
        return {"imported": imported, "skipped": skipped}

    @app.post("/imports", status_code=201)
    async def run_import(batch: BatchIn, db: DB):
        report = await import_items(db, batch.items)
        run = ImportRun(label=batch.label, imported=len(report["imported"]), skipped=len(report["skipped"]))
        if variant == "audit_swallowed":
            try:
                async with db.begin_nested():  # BUG: the batch's own failure is treated like an item's
                    db.add(run)
            except IntegrityError:
                pass
        else:
            db.add(run)
            try:
                await db.flush()
            except IntegrityError:
                raise HTTPException(409, f"an import labelled {batch.label!r} already ran") from None
        return {"label": batch.label, **report}

    return app
