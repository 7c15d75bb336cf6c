"""The correct session dependency the test apps share (their mutants live elsewhere).

Each app keeps its sessionmaker on `app.state` (made in its lifespan); this
dependency opens one session per request, commits once the route succeeded and
before the response is sent (scope="function"), and closing rolls back otherwise.
"""

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession


async def get_db(request: Request):
    async with request.app.state.sessionmaker() as session:
        yield session
        await session.commit()


DB = Annotated[AsyncSession, Depends(get_db, scope="function")]
