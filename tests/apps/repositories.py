"""A shop API whose routes use two repositories, with switchable mistakes ("mutants").

`make_app(db_url, variant=...)`: `POST /orders {"email", "item", "quantity"}` finds or
creates the user through `UserRepository`, then adds the order through
`OrderRepository`; a quantity the database refuses (CHECK quantity > 0) fails the
request with 422 *after* the user was written. `get_db` and the two providers are
attributes of the app (`app.state.get_db`, ...) so tests can override them.

- "correct": both providers take one `DBSession` alias; repositories flush; get_db commits once
- "own_sessions": each provider opens (and commits) a session of its own; a failing request
  throws into both, so nothing is kept, but a good one runs two transactions
- "no_cache": the order provider declares `Depends(get_db, scope="function", use_cache=False)`
- "mixed_scope": the order provider declares `Depends(get_db)` (default scope) while the
  user provider uses `scope="function"`: FastAPI caches them separately
- "commit_in_repo": `UserRepository.add` commits
- "no_commit": get_db never commits
"""

from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request
from pydantic import BaseModel
from sqlalchemy import CheckConstraint, String, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from tests.apps.common import database_lifespan, schema

VARIANTS = {"correct", "own_sessions", "no_cache", "mixed_scope", "commit_in_repo", "no_commit"}


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(100), unique=True)


class Order(Base):
    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int]  # no foreign key: "own_sessions" writes users and orders in two transactions
    item: Mapped[str] = mapped_column(String(100))
    quantity: Mapped[int]
    __table_args__ = (CheckConstraint("quantity > 0", name="quantity_positive"),)


class OrderIn(BaseModel):
    email: str
    item: str
    quantity: int


def make_app(db_url: str, variant: str = "correct") -> FastAPI:
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}")

    class UserRepository:
        def __init__(self, session: AsyncSession):
            self.session = session

        async def by_email(self, email: str) -> User | None:
            return await self.session.scalar(select(User).where(User.email == email))

        async def add(self, user: User) -> User:
            self.session.add(user)
            await self.session.flush()
            if variant == "commit_in_repo":
                await self.session.commit()  # BUG: the request is not over yet
            return user

    class OrderRepository:
        def __init__(self, session: AsyncSession):
            self.session = session

        async def add(self, order: Order) -> Order:
            self.session.add(order)
            await self.session.flush()
            return order

    app = FastAPI(lifespan=database_lifespan(db_url, schema(Base.metadata)))

    async def get_db(request: Request):
        async with request.app.state.sessionmaker() as session:
            yield session
            if variant != "no_commit":  # BUG (no_commit): the transaction is never committed
                await session.commit()

    DBSession = Annotated[AsyncSession, Depends(get_db, scope="function")]

    if variant == "own_sessions":

        async def get_user_repo(request: Request):  # BUG: a session (and a commit) per repository
            async with request.app.state.sessionmaker() as session:
                yield UserRepository(session)
                await session.commit()

        async def get_order_repo(request: Request):
            async with request.app.state.sessionmaker() as session:
                yield OrderRepository(session)
                await session.commit()
    else:
        if variant == "no_cache":
            OrderSession = Annotated[AsyncSession, Depends(get_db, scope="function", use_cache=False)]
        elif variant == "mixed_scope":
            OrderSession = Annotated[AsyncSession, Depends(get_db)]  # default scope: another cache key
        else:
            OrderSession = DBSession

        def get_user_repo(session: DBSession) -> UserRepository:
            return UserRepository(session)

        def get_order_repo(session: OrderSession) -> OrderRepository:
            return OrderRepository(session)

    UserRepo = Annotated[UserRepository, Depends(get_user_repo)]
    OrderRepo = Annotated[OrderRepository, Depends(get_order_repo)]

    @app.post("/orders", status_code=201)
    async def place_order(body: OrderIn, users: UserRepo, orders: OrderRepo):
        user = await users.by_email(body.email) or await users.add(User(email=body.email))
        try:
            order = await orders.add(Order(user_id=user.id, item=body.item, quantity=body.quantity))
        except IntegrityError:
            raise HTTPException(422, "quantity must be positive") from None
        return {"order": order.id, "user": user.id}

    app.state.get_db = get_db
    app.state.get_user_repo = get_user_repo
    app.state.get_order_repo = get_order_repo
    return app
