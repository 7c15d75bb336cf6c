"""A tiny bank (accounts, POST /transfers) with switchable mistakes ("mutants").

`make_bank_app(db_url, variant=..., balances=...)` builds a FastAPI app whose
lifespan creates the engine (`app.state.engine`), the `accounts` table and the
accounts with the given opening balances (ids 1, 2, ...). Variants:

- "for_update": correct — both rows `SELECT ... ORDER BY id FOR UPDATE`, then check and write
- "atomic": correct — guarded `UPDATE ... SET balance = balance - :amt WHERE ... balance >= :amt
  RETURNING balance`, the two UPDATEs issued in id order
- "read_modify_write": the seed's transfer — plain reads, balance computed in Python
- "float": correct locking, but the column is double precision
- "unordered_lock": locks the source row, then the destination (opposite transfers deadlock)
- "check_then_act": checks the balance with a plain SELECT, then an unguarded relative UPDATE
- "overdraft": correct locking, but never checks the balance (negative balances committed)
"""

import asyncio
from decimal import Decimal

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, Field
from sqlalchemy import Float, Numeric, String, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from tests.apps.common import DB, database_lifespan, schema

VARIANTS = {"for_update", "atomic", "read_modify_write", "float", "unordered_lock", "check_then_act", "overdraft"}


class TransferIn(BaseModel):
    from_id: int
    to_id: int
    amount: Decimal = Field(gt=0, max_digits=12, decimal_places=2)


def make_bank_app(
    db_url: str, variant: str = "for_update", balances: tuple[str, ...] = ("100.00", "100.00", "100.00", "100.00")
) -> FastAPI:
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}")

    class Base(DeclarativeBase):
        pass

    class Account(Base):
        __tablename__ = "accounts"
        id: Mapped[int] = mapped_column(primary_key=True)
        owner: Mapped[str] = mapped_column(String(50))
        balance: Mapped[Decimal] = mapped_column(Float if variant == "float" else Numeric(12, 2))

    async def open_accounts(conn):
        await conn.execute(
            Account.__table__.insert(),
            [{"id": i, "owner": f"owner{i}", "balance": Decimal(b)} for i, b in enumerate(balances, 1)],
        )

    app = FastAPI(lifespan=database_lifespan(db_url, schema(Base.metadata, fresh=True, seed=open_accounts)))

    def refuse(src, dst, amount):
        if src is None or dst is None:
            raise HTTPException(404, "no such account")
        if src.balance < amount:
            raise HTTPException(409, "insufficient funds")

    async def locked(db: AsyncSession, body: TransferIn):
        ids = sorted({body.from_id, body.to_id})
        rows = (
            await db.scalars(select(Account).where(Account.id.in_(ids)).order_by(Account.id).with_for_update())
        ).all()
        by_id = {a.id: a for a in rows}
        return by_id.get(body.from_id), by_id.get(body.to_id)

    @app.post("/transfers")
    async def transfer(body: TransferIn, db: DB):
        amount = body.amount
        if variant in ("for_update", "float", "overdraft"):
            src, dst = await locked(db, body)
            if variant == "overdraft":
                if src is None or dst is None:
                    raise HTTPException(404, "no such account")  # BUG: no balance check
            else:
                refuse(src, dst, amount if variant != "float" else float(amount))
            step = float(amount) if variant == "float" else amount
            src.balance -= step
            dst.balance += step
            await db.flush()
            return {"from_balance": str(src.balance), "to_balance": str(dst.balance)}
        if variant in ("unordered_lock", "read_modify_write"):
            # BUG (unordered_lock): the source row is locked first, whatever its id;
            # BUG (read_modify_write): no lock at all, the balance read may be stale
            lock = True if variant == "unordered_lock" else None  # None: a plain get
            src = await db.get(Account, body.from_id, with_for_update=lock)
            dst = await db.get(Account, body.to_id, with_for_update=lock)
            refuse(src, dst, amount)
            src.balance -= amount
            dst.balance += amount
            await db.flush()
            return {"from_balance": str(src.balance), "to_balance": str(dst.balance)}
        if variant == "check_then_act":
            src = await db.get(Account, body.from_id)
            dst = await db.get(Account, body.to_id)
            refuse(src, dst, amount)  # BUG: checked on a value another request may be spending
            # The race is real; on an idle machine one request may finish before the others
            # have read, so the window is widened to make this mutant lose every time.
            await asyncio.sleep(0.05)
            for account_id, delta in sorted([(body.from_id, -amount), (body.to_id, amount)]):
                await db.execute(
                    update(Account).where(Account.id == account_id).values(balance=Account.balance + delta)
                )
            return {"ok": True}
        # atomic: each UPDATE computes and guards in the database, in id order
        new = {}
        for account_id in sorted({body.from_id, body.to_id}):
            if account_id == body.from_id:
                stmt = (
                    update(Account)
                    .where(Account.id == account_id, Account.balance >= amount)
                    .values(balance=Account.balance - amount)
                )
            else:
                stmt = update(Account).where(Account.id == account_id).values(balance=Account.balance + amount)
            new[account_id] = await db.scalar(stmt.returning(Account.balance))
            if new[account_id] is None:
                exists = await db.scalar(select(Account.id).where(Account.id == account_id))
                raise HTTPException(409 if exists else 404, "insufficient funds" if exists else "no such account")
        return {"from_balance": str(new[body.from_id]), "to_balance": str(new[body.to_id])}

    return app
