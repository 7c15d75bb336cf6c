"""One plausible wrong answer per lesson, for the autograde tests.

Each replaces one exercise cell (by grade_id) with code a learner could really
write; the matching test cell must lose its points, and the feedback must say
why in words the learner can act on.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class WrongAnswer:
    solution_id: str
    source: str
    loses: tuple[str, ...]  # the test cells that must lose their points (and only those)
    feedback_says: tuple[str, ...]


WRONG_ANSWERS: dict[str, WrongAnswer] = {
    # Commits after every add: each product is its own transaction, so a failing
    # item leaves the earlier ones behind. Passes the visible asserts.
    "00_foundations": WrongAnswer(
        solution_id="ex_add_products",
        source=(
            'async def add_products(Session, items: list[dict]) -> "list[Product]":\n'
            "    products = []\n"
            "    async with Session() as session:\n"
            "        for item in items:\n"
            "            product = Product(**item)\n"
            "            session.add(product)\n"
            "            await session.commit()\n"
            "            products.append(product)\n"
            "    return products\n"
        ),
        loses=("test_add_products",),
        feedback_says=("exactly 1 COMMIT", "commit once"),
    ),
    # The seed's "commit in finally": a request that fails still commits its half-write.
    "01_session_dependency": WrongAnswer(
        solution_id="ex_get_db",
        source=(
            "async def get_db():\n"
            "    session = SessionLocal()\n"
            "    try:\n"
            "        yield session\n"
            "    finally:\n"
            "        await session.commit()\n"
            "        await session.close()\n"
        ),
        # test_tags_app runs on the learner's get_db too, so it rightly fails as well.
        loses=("test_get_db", "test_tags_app"),
        feedback_says=("rolled_back", "COMMIT", "never in `finally`"),
    ),
    # The provider asks for get_db in its own words instead of the DBSession alias: default scope is a
    # different cache key, so the two repositories get two sessions (two transactions). Passes the
    # visible asserts (201 and 409 as required).
    "02_repositories": WrongAnswer(
        solution_id="ex_bank_app",
        source=(
            "def get_transfer_repo(session: AsyncSession = Depends(get_db)) -> TransferRepository:\n"
            "    return TransferRepository(session)\n"
            "\n"
            "\n"
            "def get_account_repo(session: DBSession) -> AccountRepository:\n"
            "    return AccountRepository(session)\n"
            "\n"
            "\n"
            "TransferRepo = Annotated[TransferRepository, Depends(get_transfer_repo)]\n"
            "AccountRepo = Annotated[AccountRepository, Depends(get_account_repo)]\n"
            "\n"
            "bank_app = FastAPI()\n"
            "\n"
            "\n"
            '@bank_app.post("/transfers", status_code=201)\n'
            "async def make_transfer(body: TransferIn, transfers: TransferRepo, accounts: AccountRepo):\n"
            "    transfer = await transfers.add(Transfer(from_id=body.from_id, to_id=body.to_id, amount=body.amount))\n"
            "    try:\n"
            "        await accounts.move(body.from_id, body.to_id, body.amount)\n"
            "    except IntegrityError:\n"
            '        raise HTTPException(409, "insufficient funds") from None\n'
            '    return {"id": transfer.id, "from_id": transfer.from_id, "to_id": transfer.to_id,\n'
            '            "amount": transfer.amount}\n'
        ),
        # the in-memory fakes replace both providers, so test_bank_no_plumbing rightly still passes
        loses=("test_bank_one_transaction", "test_bank_rolls_back"),
        feedback_says=(
            "session_from_dependency",
            "get_db ran 2 time(s)",
            "the default in another",
            "single_transaction",
            "2 session(s) did work",
        ),
    ),
    # contains_eager without populate_existing: right in a fresh session (the visible test),
    # but when the session already holds the authors with all their books it returns them stale.
    "06_loading": WrongAnswer(
        solution_id="ex_recent",
        source=(
            "async def authors_with_books_since(db: AsyncSession, since: int) -> list[Author]:\n"
            "    stmt = (\n"
            "        select(Author)\n"
            "        .join(Author.books)\n"
            "        .where(Book.year >= since)\n"
            "        .order_by(Author.id, Book.id)\n"
            "        .options(contains_eager(Author.books))\n"
            "    )\n"
            "    return list((await db.scalars(stmt)).unique().all())\n"
            "\n"
            "\n"
            '@catalog.get("/authors/recent", response_model=list[AuthorRecent])\n'
            "async def recent_authors(db: DBSession, since: int):\n"
            "    return await authors_with_books_since(db, since)\n"
        ),
        loses=("test_recent",),
        feedback_says=("matches_database", "extra books", "populate_existing=True"),
    ),
    # The seed's broad `except Exception`, with a report: a lock timeout (not the item's fault)
    # becomes a "skipped item" and the rest of the batch is committed. Passes the visible asserts.
    "05_savepoints": WrongAnswer(
        solution_id="ex_import_items",
        source=(
            "async def import_items(db: AsyncSession, items: list[ProductIn]) -> dict:\n"
            "    imported, skipped = [], []\n"
            "    for index, item in enumerate(items):\n"
            "        try:\n"
            "            async with db.begin_nested():\n"
            "                db.add(Product(**item.model_dump()))\n"
            "            imported.append(item.sku)\n"
            "        except Exception as exc:\n"
            '            skipped.append({"index": index, "sku": item.sku, "reason": str(exc)})\n'
            '    return {"imported": imported, "skipped": skipped}\n'
        ),
        loses=("test_import_items",),
        feedback_says=("nothing_kept", "lock timeout", "the failure was swallowed", "SQLSTATE class 22"),
    ),
    # "One engine per URL" with lru_cache: every app built for the same URL shares one
    # engine (and one pool). Starts, checks and disposes correctly; passes the visible asserts.
    "03_lifespan": WrongAnswer(
        solution_id="ex_create_app",
        source=(
            "from functools import lru_cache\n"
            "\n"
            "\n"
            "@lru_cache\n"
            "def get_engine(url: str) -> AsyncEngine:\n"
            "    return create_async_engine(url)\n"
            "\n"
            "\n"
            "async def get_db(request: Request):\n"
            "    async with request.app.state.sessionmaker() as session:\n"
            "        yield session\n"
            "        await session.commit()\n"
            "\n"
            "\n"
            "def create_app(database_url: str) -> FastAPI:\n"
            "    @asynccontextmanager\n"
            "    async def lifespan(app: FastAPI):\n"
            "        engine = get_engine(database_url)\n"
            "        try:\n"
            "            await check_database(engine)\n"
            "            app.state.engine = engine\n"
            "            app.state.sessionmaker = async_sessionmaker(engine, expire_on_commit=False)\n"
            "            yield\n"
            "        finally:\n"
            "            await engine.dispose()\n"
            "\n"
            "    return install_item_routes(FastAPI(lifespan=lifespan), get_db)\n"
        ),
        loses=("test_two_apps",),
        feedback_says=(
            "FAILED — CheckFailed: separate_engines",
            "both apps use the same engine object",
            "cached per URL",
        ),
    ),
    # The seed's transfer_funds, adapted: reads both balances without a lock and writes values
    # computed in Python. Correct one request at a time, so it passes the visible asserts.
    "04_transactions": WrongAnswer(
        solution_id="ex_transfer_locked",
        source=(
            "async def transfer_locked(db: AsyncSession, from_id: int, to_id: int, amount: Decimal) -> dict:\n"
            "    src = await db.get(Account, from_id)\n"
            "    dst = await db.get(Account, to_id)\n"
            "    if src is None or dst is None:\n"
            '        raise HTTPException(404, "no such account")\n'
            "    if src.balance < amount:\n"
            '        raise HTTPException(409, "insufficient funds")\n'
            "    src.balance -= amount\n"
            "    dst.balance += amount\n"
            "    await db.flush()\n"
            '    return {"from_balance": src.balance, "to_balance": dst.balance}\n'
        ),
        loses=("test_transfer_locked",),
        feedback_says=("transfer_storm: FAILED", "differ from a serial replay", "lost updates", "with_for_update()"),
    ),
    # The reference skill's health check: catches the error but answers 200 {"status": "unhealthy"};
    # passes the visible asserts (the body says unhealthy), loses on the status code.
    "07_concurrency": WrongAnswer(
        solution_id="ex_health",
        source=(
            "health_router = APIRouter()\n"
            "\n"
            "\n"
            '@health_router.get("/health")\n'
            "async def health(request: Request):\n"
            "    try:\n"
            "        async with request.app.state.engine.connect() as conn:\n"
            '            await conn.execute(text("SELECT 1"))\n'
            '        return {"status": "healthy"}\n'
            "    except Exception as e:\n"
            '        return {"status": "unhealthy", "error": str(e)}\n'
        ),
        loses=("test_health",),
        feedback_says=("unhealthy_when_down: FAILED", "GET /health -> 200", "read the status, not the JSON"),
    ),
    # The version is compared in Python, but the flush is not guarded: requests that race past the
    # check lose on the mapper's version_id_col with StaleDataError, which escapes as a 500.
    # Passes the visible asserts (one edit, then one stale edit answered 409).
    "11_capstone": WrongAnswer(
        solution_id="ex_update",
        source=(
            "async def update_ticket(db: AsyncSession, ticket_id: int, body: TicketPatch) -> Ticket:\n"
            "    ticket = await TicketRepository(db).get(ticket_id)\n"
            "    if ticket is None:\n"
            '        raise NotFound(f"no ticket {ticket_id}")\n'
            "    if ticket.version != body.version:\n"
            '        raise Conflict("stale version")\n'
            "    if body.title is not None:\n"
            "        ticket.title = body.title\n"
            "    if body.status is not None:\n"
            "        ticket.status = body.status\n"
            '    AuditRepository(db).record(ticket, "updated")\n'
            "    await db.flush()\n"
            "    return ticket\n"
        ),
        loses=("test_update",),
        feedback_says=("single_winner: FAILED", "StaleDataError", "answer 409 Conflict"),
    ),
    # Retries every DBAPIError, the way tenacity's default `retry` condition does: a duplicate counter is
    # inserted four times. Conflicts are still survived and the retries are bounded, and the visible
    # asserts pass (the duplicate still ends as 409), so only the attempt count gives it away.
    "08_errors": WrongAnswer(
        solution_id="ex_retry",
        source=(
            "async def run_transaction(Session, work, *, attempts: int = 4, base_delay: float = 0.02):\n"
            "    for attempt in range(1, attempts + 1):\n"
            "        try:\n"
            "            async with Session() as session:\n"
            "                result = await work(session)\n"
            "                await session.commit()\n"
            "                return result\n"
            "        except DBAPIError:\n"
            "            if attempt == attempts:\n"
            "                raise\n"
            "        await asyncio.sleep(random.uniform(0, base_delay * 2 ** (attempt - 1)))\n"
        ),
        loses=("test_not_retried",),
        feedback_says=("not_retried: FAILED", "sent 4 times", "re-raise everything else at once"),
    ),
    # The suite every test of which goes through the savepoint-bound `client`: it catches status, commit,
    # rollback and N+1 bugs, but a session the app never closes never touches the pool there, so the
    # leak mutant survives. Passes the visible asserts.
    "09_testing": WrongAnswer(
        solution_id="ex_tests",
        source=(
            "%%writefile {SUITE}/test_library.py\n"
            "import httpx\n"
            "import pytest\n"
            "from asgi_lifespan import LifespanManager\n"
            "from sqlalchemy import event, func, select\n"
            "\n"
            "from autograder.demos.testing import Author, Book\n"
            "\n"
            "@pytest.fixture\n"
            "def statements(connection):\n"
            "    seen = []\n"
            "\n"
            "    def record(conn, cursor, statement, parameters, context, executemany):\n"
            '        if not statement.lstrip().upper().startswith(("SAVEPOINT", "RELEASE", "ROLLBACK")):\n'
            "            seen.append(statement)\n"
            "\n"
            '    event.listen(connection.sync_connection, "before_cursor_execute", record)\n'
            "    yield seen\n"
            '    event.remove(connection.sync_connection, "before_cursor_execute", record)\n'
            "\n"
            "\n"
            "async def make_author(session, name, books=0):\n"
            '    author = Author(name=name, books=[Book(title=f"{name} #{i}") for i in range(books)])\n'
            "    session.add(author)\n"
            "    await session.flush()\n"
            "    return author\n"
            "\n"
            "\n"
            "async def test_created_author_is_201_and_readable_later(client):\n"
            '    response = await client.post("/authors", json={"name": "Ada"})\n'
            "    assert response.status_code == 201\n"
            "    again = await client.get(f\"/authors/{response.json()['id']}\")  # a new request, a new session\n"
            '    assert again.status_code == 200 and again.json()["name"] == "Ada"\n'
            "\n"
            "\n"
            "async def test_refused_book_keeps_nothing(client, session):\n"
            '    response = await client.post("/books", json={"title": "Orphan", "author": "Nobody"})\n'
            "    assert response.status_code == 404\n"
            '    assert await session.scalar(select(func.count()).where(Book.title == "Orphan")) == 0\n'
            "\n"
            "\n"
            "async def test_listing_does_not_grow_with_authors(client, session, statements):\n"
            "    for i in range(4):\n"
            '        await make_author(session, f"Author {i}", books=2)\n'
            "    statements.clear()\n"
            '    response = await client.get("/authors")\n'
            "    assert response.status_code == 200 and len(response.json()) >= 4\n"
            "    assert len(statements) <= 2, statements\n"
            "\n"
        ),
        loses=("test_kills_leak",),
        feedback_says=("leak survived", "checkedout() == 0"),
    ),
    # The autogenerated downgrade made to run on rows: `total` comes back NOT NULL with server_default "0"
    # instead of the amounts computed from total_cents. It runs and restores the schema (the visible
    # asserts pass), but every order's amount is now 0.00.
    "10_migrations": WrongAnswer(
        solution_id="ex_downgrade",
        source=(
            "def downgrade() -> None:\n"
            '    op.add_column("orders", sa.Column("total", sa.Numeric(10, 2), nullable=False, server_default="0"))\n'
            '    op.alter_column("orders", "total", server_default=None)\n'
            '    op.drop_constraint("ck_orders_total_cents_nonnegative", "orders", type_="check")\n'
            '    op.drop_column("orders", "total_cents")\n'
        ),
        loses=("test_downgrade",),
        feedback_says=(
            "migration_roundtrip: FAILED",
            "total was Decimal('0.01'), after the downgrade Decimal('0.00')",
            "values back",
        ),
    ),
    # The merge done in place on the JSONB dict: the response shows the merged settings (the visible
    # asserts pass), but a plain JSONB column does not see a change inside its dict: no UPDATE is sent.
    "12_modelling": WrongAnswer(
        solution_id="ex_settings",
        source=(
            '@projects_app.patch("/projects/{project_id}/settings")\n'
            "async def update_settings(project_id: uuid.UUID, changes: dict[str, Any], db: DBSession):\n"
            "    project = await db.get(Project, project_id)\n"
            "    if project is None:\n"
            '        raise HTTPException(404, "no such project")\n'
            "    project.settings.update(changes)\n"
            "    return project.settings\n"
        ),
        loses=("test_settings",),
        feedback_says=("the database still holds", "is not tracked on a JSONB column", "flag_modified"),
    ),
}
