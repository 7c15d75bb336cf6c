"""Another client holding a lock: a real database error that is not about any item.

    async with uncommitted_insert(db.url, "products", {"sku": "P-9", "name": "x", "price_cents": 1}):
        ...   # an INSERT of sku P-9 now waits for this transaction (unique index), until lock_timeout

The row is inserted in a transaction on a connection of its own, which is rolled
back when the block ends, so nothing stays behind. An app whose engine sets
`lock_timeout` gets `canceling statement due to lock timeout` (SQLSTATE 55P03)
for that sku: the item is fine, the database was busy.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from autograder.db.admin import asyncpg_params


@asynccontextmanager
async def uncommitted_insert(db_url: str, table: str, row: dict[str, Any]) -> AsyncIterator[None]:
    """Insert `row` into `table` in another, still open transaction for the duration of the block."""
    conn = await asyncpg.connect(**asyncpg_params(make_url(db_url)))
    try:
        tx = conn.transaction()
        await tx.start()
        try:
            columns = ", ".join(f'"{c}"' for c in row)
            marks = ", ".join(f"${i}" for i in range(1, len(row) + 1))
            await conn.execute(f'INSERT INTO "{table}" ({columns}) VALUES ({marks})', *row.values())
            yield
        finally:
            await tx.rollback()
    finally:
        await conn.close()
