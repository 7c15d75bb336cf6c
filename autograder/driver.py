"""Drive a FastAPI app in-process: lifespan, requests, and the exceptions behind 500s.

`async with AppDriver(app) as drv:` runs the app's lifespan startup (and its
shutdown on exit) with `asgi_lifespan`, then sends requests through
`httpx.ASGITransport`: no socket, no server, no thread — it works under one
event loop, including a notebook's top-level `await`.

The transport is told not to re-raise app exceptions, so a crash arrives as the
500 a client would see; the ASGI app is wrapped so that the exception itself is
kept in `drv.errors` as well. A check can then say both "the request returned
500" and "because of MissingGreenlet". The 500's body says so too (type, first
line, the learner's line, the lesson that explains it: `app_errors.app_error`),
so that a learner's own `assert r.status_code == 201, r.text` shows the cause.
"""

from __future__ import annotations

from typing import Any

import httpx
from asgi_lifespan import LifespanManager

from autograder.app_errors import app_error
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


class _HeldServerError:
    """Holds back a 5xx response until the app is done, so that an app that raised gets a 500 whose
    body says why.

    Starlette's ServerErrorMiddleware sends "Internal Server Error" and *then* re-raises: by the
    time the exception reaches the driver, the client's answer is already written. Holding the
    5xx (the transport buffers whole responses anyway, so nothing streams later than it would)
    lets the driver answer instead with `app_error(exc)`: the type, first line, the learner's
    line and the lesson. A visible assert that prints `ex.response.text` then shows the cause.
    A 2xx/4xx passes straight through: an exception after it was sent changes nothing the client saw.
    """

    def __init__(self, send: Any):
        self._send = send
        self._held: list[dict[str, Any]] = []
        self.started = False  # a response that is not held began to go out

    async def send(self, message: dict[str, Any]) -> None:
        starts = message.get("type") == "http.response.start"
        if self._held or (starts and not self.started and int(message.get("status", 0)) >= 500):
            self._held.append(message)
            return
        self.started = self.started or starts
        await self._send(message)

    async def release(self) -> None:
        """The app finished without raising: its own 5xx goes out as it was."""
        held, self._held = self._held, []
        for message in held:
            await self._send(message)

    async def explain(self, exc: BaseException) -> None:
        """The app raised: unless a response already went out, answer 500 with the explanation."""
        if self.started:
            return
        self._held = []
        body = app_error(exc).encode()  # "got 500: NameError: ..." reads well; the status says the rest
        headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]
        await self._send({"type": "http.response.start", "status": 500, "headers": headers})
        await self._send({"type": "http.response.body", "body": body, "more_body": False})


class AppDriver:
    def __init__(self, app: Any, startup_timeout: float = 10, shutdown_timeout: float = 10):
        self.app = app
        self.startup_timeout = startup_timeout
        self.shutdown_timeout = shutdown_timeout
        self.errors: list[BaseException] = []
        self._lifespan: LifespanManager | None = None
        self.client: httpx.AsyncClient | None = None

    def _recording(self, asgi_app: Any) -> Any:
        async def app_that_records(scope: dict[str, Any], receive: Any, send: Any) -> None:
            held = _HeldServerError(send)
            try:
                await asgi_app(scope, receive, held.send)
            except Exception as exc:  # recorded, explained in the 500's body, then re-raised for the transport
                self.errors.append(exc)
                await held.explain(exc)
                raise
            await held.release()

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
