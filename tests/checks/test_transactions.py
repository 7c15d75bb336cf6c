import pytest

from autograder.checks import Call, committed_once, rolled_back, savepoint_trace
from autograder.checks.transactions import writes_without_reading
from tests.checks.expect import rejected

BAD_USER = Call.post("/users", json={"email": "bad@x", "fail": True})
GOOD_USER = Call.post("/users", json={"email": "ok@x"})
BULK = Call.post("/authors/bulk", json=["ok1", "", "ok2"])
EXPECTED_SAVEPOINTS = ["BEGIN", "SAVEPOINT", "RELEASE", "SAVEPOINT", "ROLLBACK TO", "SAVEPOINT", "RELEASE", "COMMIT"]


async def test_rolled_back_passes_a_get_db_that_just_closes_the_session(probe_for):
    async with probe_for("correct") as probe:
        v = await rolled_back(probe, BAD_USER, table="users")
    assert v, str(v)
    assert "ROLLBACK" in v.actual and "COMMIT" not in v.actual


async def test_rolled_back_passes_an_explicit_rollback_too(probe_for):
    async with probe_for("explicit_rollback") as probe:
        v = await rolled_back(probe, BAD_USER, table="users")
        assert v, str(v)
        assert await committed_once(probe, GOOD_USER, table="users")


async def test_rolled_back_rejects_commit_in_finally(probe_for):
    async with probe_for("commit_in_finally") as probe:
        v = await rolled_back(probe, BAD_USER, table="users")
    assert not v
    text = str(v)
    assert "rolled_back: FAILED" in text
    assert "users now has 1 row (was 0)" in text
    assert "transactions: BEGIN, COMMIT" in text
    assert "INSERT INTO users" in text  # the SQL that ran is shown
    assert "never in `finally`" in text


async def test_rolled_back_rejects_a_route_that_commits_before_failing(probe_for):
    async with probe_for("commit_then_fail") as probe:
        v = await rolled_back(probe, BAD_USER, table="users", where="email = 'bad@x'")
    assert not v
    assert "-> 409" in v.actual and "now has 1 row (was 0)" in v.actual and "COMMIT" in v.actual


async def test_rolled_back_rejects_a_request_that_does_not_fail(probe_for):
    async with probe_for("correct") as probe:
        v = await rolled_back(probe, GOOD_USER, table="users")
    assert not v and "was expected to fail" in v.hint


async def test_committed_once_passes_the_correct_get_db(probe_for):
    async with probe_for("correct") as probe:
        v = await committed_once(probe, GOOD_USER, table="users")
    assert v, str(v)


async def test_committed_once_passes_commit_in_finally_on_success(probe_for):
    # committing in finally is wrong for failures only; a success commits once
    async with probe_for("commit_in_finally") as probe:
        assert await committed_once(probe, GOOD_USER, table="users")


async def test_committed_once_rejects_a_get_db_that_never_commits(probe_for):
    async with probe_for("no_commit") as probe:
        v = await committed_once(probe, GOOD_USER, table="users")
    assert not v
    assert "0 COMMIT(s)" in v.actual and "gained 0 rows" in v.actual
    assert "transactions: BEGIN, ROLLBACK" in v.actual
    assert "await session.commit()" in v.hint


async def test_savepoint_trace_passes_begin_nested_per_item(probe_for):
    async with probe_for("correct") as probe:
        ex = await probe.request(BULK)
        assert ex.response.json() == {"saved": ["ok1", "ok2"]}
        assert await probe.count_rows("authors") == 2
    v = savepoint_trace(ex, EXPECTED_SAVEPOINTS)
    assert v, str(v)


async def test_savepoint_trace_rejects_one_transaction_for_all_items(probe_for):
    async with probe_for("no_savepoint") as probe:
        ex = await probe.request(BULK)
        assert await probe.count_rows("authors") == 0  # one bad name lost the good ones
    v = savepoint_trace(ex, EXPECTED_SAVEPOINTS)
    assert not v
    text = str(v)
    assert "expected" in text and "got" in text
    assert "  ! 2 SAVEPOINT     ROLLBACK" in text  # aligned, differences marked
    assert "    1 BEGIN         BEGIN" in text
    assert "begin_nested" in v.hint


DUPLICATE_DEFERRED = Call.post("/users/deferred", json={"email": "dup@x"})


async def test_rolled_back_passes_a_failed_commit_reported_to_the_client(probe_for):
    # scope="function": the duplicate fails at commit, before the response -> 500, nothing kept
    async with probe_for("correct") as probe:
        assert await committed_once(probe, DUPLICATE_DEFERRED, table="users")
        v = await rolled_back(probe, DUPLICATE_DEFERRED, table="users")
    assert v, str(v)


async def test_rolled_back_rejects_a_commit_that_fails_after_a_success_was_sent(probe_for):
    # Default dependency scope: the client is told 201, then the commit fails.
    # The exception is recorded, but the client saw success: that is not a rollback it can see.
    async with probe_for("commit_after_response") as probe:
        assert await committed_once(probe, DUPLICATE_DEFERRED, table="users")
        v = await rolled_back(probe, DUPLICATE_DEFERRED, table="users")
    assert not v
    assert "-> 201" in v.actual and "IntegrityError" in v.actual
    assert 'scope="function"' in v.hint


async def test_committed_once_rejects_a_commit_that_fails_after_a_success_was_sent(probe_for):
    async with probe_for("commit_after_response") as probe:
        await committed_once(probe, DUPLICATE_DEFERRED, table="users")
        v = await committed_once(probe, DUPLICATE_DEFERRED, table="users", expect_new_rows=0)
    assert not v
    assert "after the response was sent" in v.hint


# ------------------------------------------------------------------ writes_without_reading (lesson 04, exercise 2)
# "Let the database decide": a successful transfer reads no balance before writing it, in at most two
# statements. The forms of a correct answer vary (one UPDATE per account, one UPDATE for both, a
# SELECT after the writes); reading first does not.
TRANSFER = Call.post("/transfers", json={"from_id": 3, "to_id": 1, "amount": "0.50"})
WHY = "one guarded UPDATE ... RETURNING per account"


def make_transfer_app(db_url: str, variant: str):
    """POST /transfers on accounts 1..4 (100.00 each), the atomic transfer written several ways."""
    from decimal import Decimal

    from fastapi import FastAPI, HTTPException
    from pydantic import BaseModel
    from sqlalchemy import Numeric, case, or_, select, update
    from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

    from tests.apps.common import DB, database_lifespan, schema

    class Base(DeclarativeBase):
        pass

    class Account(Base):
        __tablename__ = "accounts"
        id: Mapped[int] = mapped_column(primary_key=True)
        balance: Mapped[Decimal] = mapped_column(Numeric(12, 2))

    class TransferIn(BaseModel):
        from_id: int
        to_id: int
        amount: Decimal

    async def open_accounts(conn):
        await conn.execute(Account.__table__.insert(), [{"id": i, "balance": Decimal("100.00")} for i in range(1, 5)])

    app = FastAPI(lifespan=database_lifespan(db_url, schema(Base.metadata, fresh=True, seed=open_accounts)))

    def one_update_for_both(body: TransferIn):
        debit = Account.id == body.from_id
        return (
            update(Account)
            .where(Account.id.in_([body.from_id, body.to_id]), or_(~debit, Account.balance >= body.amount))
            .values(balance=case((debit, Account.balance - body.amount), else_=Account.balance + body.amount))
            .execution_options(synchronize_session=False)
        )

    @app.post("/transfers")
    async def transfer(body: TransferIn, db: DB):
        balances = select(Account.id, Account.balance).where(Account.id.in_([body.from_id, body.to_id]))
        if variant == "one_update_returning":  # 1 statement: both rows, the new balances returned
            rows = dict((await db.execute(one_update_for_both(body).returning(Account.id, Account.balance))).all())
        elif variant == "update_then_select":  # 2 statements: one UPDATE, the balances read after it
            await db.execute(one_update_for_both(body))
            rows = dict((await db.execute(balances)).all())
        elif variant == "updates_then_select":  # 3 statements: the SELECT repeats what RETURNING would give
            for account_id, delta in sorted([(body.from_id, -body.amount), (body.to_id, body.amount)]):
                await db.execute(
                    update(Account).where(Account.id == account_id).values(balance=Account.balance + delta)
                )
            rows = dict((await db.execute(balances)).all())
        else:  # "select_then_update": a plain read of the balance to decide, then a relative UPDATE
            balance = await db.scalar(select(Account.balance).where(Account.id == body.from_id))
            if balance is None or balance < body.amount:
                raise HTTPException(409, "insufficient funds")
            rows = dict((await db.execute(one_update_for_both(body).returning(Account.id, Account.balance))).all())
        if len(rows) < 2:
            raise HTTPException(409, "insufficient funds or no such account")
        return {"from_balance": str(rows[body.from_id]), "to_balance": str(rows[body.to_id])}

    return app


@pytest.fixture
def transfers(probes):
    return probes(make_transfer_app, "wwr")


@pytest.fixture
def bank(probes):
    from tests.apps.bank import make_bank_app

    return probes(make_bank_app, "wwrbank")


async def test_writes_without_reading_passes_two_guarded_updates(bank):
    async with bank("atomic") as probe:
        ex = await probe.request(TRANSFER)
    v = writes_without_reading(ex, 2, why=WHY)
    assert v, str(v)
    assert v.actual == "POST /transfers -> 200; 2 statements: UPDATE, UPDATE"


OTHER_FORMS = [("one_update_returning", "UPDATE"), ("update_then_select", "UPDATE, SELECT")]  # (variant, kinds)


@pytest.mark.parametrize(("variant", "kinds"), OTHER_FORMS)
async def test_writes_without_reading_passes_other_correct_forms(transfers, variant, kinds):
    async with transfers(variant) as probe:
        ex = await probe.request(TRANSFER)
        assert ex.response.json() == {"from_balance": "99.50", "to_balance": "100.50"}
        assert await probe.fetchval("SELECT sum(balance) FROM accounts") == 400
    v = writes_without_reading(ex, 2, why=WHY)
    assert v, str(v)
    assert v.actual.endswith(kinds)


async def test_writes_without_reading_rejects_a_read_before_the_write(transfers):
    async with transfers("select_then_update") as probe:
        ex = await probe.request(TRANSFER)
    rejected(
        writes_without_reading(ex, 2, why=WHY),
        actual=["2 statements: SELECT, UPDATE", "1 SELECT before the last write"],
        hint=["a SELECT ran before the write it informs", "Account.balance >= amount", ".returning("],
        sql=["SELECT accounts.balance"],
    )


@pytest.mark.parametrize("variant", ["for_update", "read_modify_write"])
async def test_writes_without_reading_rejects_lesson_04s_reading_transfers(bank, variant):
    async with bank(variant) as probe:
        ex = await probe.request(TRANSFER)
    rejected(writes_without_reading(ex, 2, why=WHY), hint=["a SELECT ran before the write it informs"])


async def test_writes_without_reading_rejects_more_statements_than_needed(transfers):
    async with transfers("updates_then_select") as probe:
        ex = await probe.request(TRANSFER)
    rejected(
        writes_without_reading(ex, 2, why=WHY),
        actual=["3 statements: UPDATE, UPDATE, SELECT"],
        hint=[f"a correct solution needs at most 2 statements ({WHY})", "from `.returning(...)`"],
    )


async def test_writes_without_reading_rejects_a_failed_request(bank):
    async with bank("atomic") as probe:
        ex = await probe.request(Call.post("/transfers", json={"from_id": 4, "to_id": 1, "amount": "999.00"}))
    rejected(writes_without_reading(ex, 2), actual=["-> 409"], hint=["was expected to succeed"])
