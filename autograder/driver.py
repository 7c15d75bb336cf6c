"""Drive a FastAPI app in-process: lifespan, requests, and the exceptions behind 500s.

`async with AppDriver(app) as drv:` runs the app's lifespan startup (and its
shutdown on exit) with `asgi_lifespan`, then sends requests through
`httpx.ASGITransport`: no socket, no server, no thread — it works under one
event loop, including a notebook's top-level `await`.

The transport is told not to re-raise app exceptions, so a crash arrives as the
500 a client would see; the ASGI app is wrapped so that the exception itself is
kept in `drv.errors` as well. A check can then say both "the request returned
500" and "because of MissingGreenlet".
"""

from __future__ import annotations

from typing import Any

import httpx
from asgi_lifespan import LifespanManager

from autograder.errors import describe

BASE_URL = "http://test"


class StartupFailed(AssertionError):
    """The app's lifespan startup raised or hung; the message names the cause."""

    def _render_traceback_(self) -> list[str]:  # IPython hook: the reason, not a traceback
        return [f"{type(self).__name__}: {self}"]


def _root_cause(exc: BaseException) -> BaseException:
    """The first real exception inside (possibly nested) exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


class AppDriver:
    def __init__(self, app: Any, startup_timeout: float = 10, shutdown_timeout: float = 10):
        self.app = app
        self.startup_timeout = startup_timeout
        self.shutdown_timeout = shutdown_timeout
        self.errors: list[BaseException] = []
        self._lifespan: LifespanManager | None = None
        self.client: httpx.AsyncClient | None = None

    def _recording(self, asgi_app: Any) -> Any:
        async def app_that_records(scope, receive, send):
            try:
                await asgi_app(scope, receive, send)
            except Exception as exc:  # recorded, then re-raised for the transport to turn into a 500
                self.errors.append(exc)
                raise

        return app_that_records

    async def __aenter__(self) -> AppDriver:
        manager = LifespanManager(
            self.app, startup_timeout=self.startup_timeout, shutdown_timeout=self.shutdown_timeout
        )
        try:
            await manager.__aenter__()
        except TimeoutError:
            raise StartupFailed(
                f"the app's startup did not finish within {self.startup_timeout:g} s "
                "(is the lifespan waiting on something that never comes?)"
            ) from None
        except BaseException as exc:
            cause = _root_cause(exc)
            # asgi_lifespan reports a crash before the first receive() as LifespanNotSupported;
            # the student's exception is its __cause__.
            if type(cause).__name__ == "LifespanNotSupported" and cause.__cause__ is not None:
                cause = cause.__cause__
            if isinstance(cause, (KeyboardInterrupt, SystemExit)):
                raise
            raise StartupFailed(f"the app failed to start: {describe(cause)}") from cause
        self._lifespan = manager
        # manager.app carries lifespan state (scope["state"]) into every request
        transport = httpx.ASGITransport(app=self._recording(manager.app), raise_app_exceptions=False)
        self.client = httpx.AsyncClient(transport=transport, base_url=BASE_URL)
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        try:
            if self.client is not None:
                await self.client.aclose()
        finally:
            if self._lifespan is not None:
                manager, self._lifespan = self._lifespan, None
                # asgi_lifespan skips the app's shutdown when the block raised; but a
                # failed assertion inside the block is ordinary here, and skipping
                # shutdown would leave the app's engine (and its connections) behind.
                if exc_info and isinstance(exc_info[1], Exception):
                    exc_info = (None, None, None)
                await manager.__aexit__(*exc_info)

    async def request(self, method: str, url: str, **kw: Any) -> httpx.Response:
        if self.client is None:
            raise RuntimeError("use `async with AppDriver(app) as drv:` before sending requests")
        return await self.client.request(method, url, **kw)

    async def get(self, url: str, **kw: Any) -> httpx.Response:
        return await self.request("GET", url, **kw)

    async def post(self, url: str, **kw: Any) -> httpx.Response:
        return await self.request("POST", url, **kw)
