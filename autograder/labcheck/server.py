"""The course's check server: "Check my work" for labs that hold the learner release only.

    autograder check-server --port 8890             # token from COURSE_CHECK_TOKEN (compose's checker)
    (as a JupyterHub service: the hub's JUPYTERHUB_API_* environment; learners' own tokens)

    POST /check  {"path": "01_x/01_x.ipynb", "notebook": "<the notebook's JSON text>"}
         Authorization: token <credential>
      -> {"ok": true, "report": {...}} | {"ok": false, "error": "..."}

It runs where the course's source is (the instructor's side), grades each notebook with the
same warm workers the lab uses (CheckService -> grade_notebook: sandbox, a database of its own)
and answers with points and check messages only. Hostile input is expected: a caller must be
identified (a shared token, or a hub user whose token the hub vouches for); a notebook larger
than MAX_NOTEBOOK_BYTES is refused before it is parsed; each caller has at most one check at a
time (a second one is refused with 429, so one learner cannot queue the whole class out); the
notebook is written into a private folder of its own and deleted after the check, so no caller
can name, read or overwrite anyone else's file.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import os
import re
import secrets
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from tornado import web

from autograder.labcheck.service import CheckService

log = logging.getLogger(__name__)

MAX_NOTEBOOK_BYTES = 16 * 1024 * 1024
ENV_HUB_API_URL = "JUPYTERHUB_API_URL"
ENV_HUB_TOKEN = "JUPYTERHUB_API_TOKEN"
ENV_SERVICE_PREFIX = "JUPYTERHUB_SERVICE_PREFIX"


class Identify:
    """Who sent a check: a name, or None when the credential is not accepted."""

    async def __call__(self, credential: str) -> str | None:
        raise NotImplementedError


@dataclass(frozen=True)
class SharedToken(Identify):
    """One secret for the whole lab (compose: the lab and the checker share it)."""

    token: str

    async def __call__(self, credential: str) -> str | None:
        return "lab" if credential and hmac.compare_digest(credential, self.token) else None


class HubUsers(Identify):
    """A JupyterHub service: the learner's server sends its own API token; the hub says whose it is."""

    def __init__(self) -> None:
        from jupyterhub.services.auth import HubAuth

        self._auth = HubAuth(cache_max_age=60)

    async def __call__(self, credential: str) -> str | None:
        if not credential:
            return None
        model = await self._auth.user_for_token(credential, sync=False)
        name = model.get("name") if isinstance(model, dict) else None
        return name if isinstance(name, str) and name else None


class CheckPool:
    """`workers` warm CheckServices, each grading one notebook at a time, shared by every caller."""

    def __init__(self, workers: int, spool: Path) -> None:
        self.spool = spool
        self._idle: asyncio.Queue[CheckService] = asyncio.Queue()
        for _ in range(workers):
            self._idle.put_nowait(CheckService(spool))
        self._busy_callers: set[str] = set()

    def busy(self, caller: str) -> bool:
        return caller in self._busy_callers

    async def check(self, caller: str, shown: str, text: str) -> dict[str, Any]:
        self._busy_callers.add(caller)
        folder = Path(tempfile.mkdtemp(prefix="check-", dir=self.spool))
        try:
            # Only the file's name and its lesson folder are kept: the lesson is read from them,
            # and no caller-chosen path is ever joined to a folder of ours.
            relative = safe_relative(shown)
            notebook = folder / relative
            notebook.parent.mkdir(parents=True, exist_ok=True)
            await asyncio.to_thread(notebook.write_text, text, encoding="utf-8")
            service = await self._idle.get()
            try:
                return await service.check(str(notebook.relative_to(self.spool)), shown=str(relative))
            except (PermissionError, ValueError) as exc:
                return {"ok": False, "error": str(exc)}
            finally:
                self._idle.put_nowait(service)
        finally:
            self._busy_callers.discard(caller)
            shutil.rmtree(folder, ignore_errors=True)

    async def close(self) -> None:
        while not self._idle.empty():
            await self._idle.get_nowait().close()


def safe_relative(shown: str) -> PurePosixPath:
    """`<lesson folder>/<file>.ipynb` from the caller's path: its last two names, each reduced to
    letters, digits, `_`, `-` and `.` and never `.` or `..` (the lesson is read from these names)."""
    parts = [re.sub(r"[^A-Za-z0-9_.-]", "_", part)[:100] for part in PurePosixPath(shown).parts[-2:]]
    parts = [part if part.strip(".") else "_" for part in parts if part]
    if not parts or not parts[-1].endswith(".ipynb"):
        parts = [*parts[:1], "notebook.ipynb"]
    return PurePosixPath(*parts)


class CheckRequestHandler(web.RequestHandler):
    def initialize(self, identify: Identify, pool: CheckPool) -> None:
        self.identify = identify
        self.pool = pool

    def check_xsrf_cookie(self) -> None:  # token-authenticated API, no cookies
        return None

    async def post(self) -> None:
        status, payload = await self._answer()
        self._reply(status, payload)

    async def _answer(self) -> tuple[int, dict[str, Any]]:
        header = self.request.headers.get("Authorization", "")
        scheme, _, credential = header.partition(" ")
        caller = await self.identify(credential.strip()) if scheme.lower() in ("token", "bearer") else None
        if caller is None:
            return 403, {"ok": False, "error": "The checker did not accept this lab's credential."}
        if len(self.request.body) > MAX_NOTEBOOK_BYTES:
            limit = MAX_NOTEBOOK_BYTES // 2**20
            return 413, {"ok": False, "error": f"The notebook is over {limit} MB; clear its outputs and save."}
        try:
            body: Any = json.loads(self.request.body)
        except ValueError:
            body = None
        if not (isinstance(body, dict) and isinstance(body.get("notebook"), str) and isinstance(body.get("path"), str)):
            return 400, {"ok": False, "error": 'Send {"path": ..., "notebook": ...}.'}
        if self.pool.busy(caller):
            return 429, {"ok": False, "error": "A check of yours is already running; wait for its verdict."}
        log.info("check of %s for %s", body["path"], caller)
        return 200, await self.pool.check(caller, body["path"], body["notebook"])

    def _reply(self, status: int, payload: dict[str, Any]) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(payload))


def make_app(identify: Identify, pool: CheckPool, prefix: str = "/") -> web.Application:
    route = prefix.rstrip("/") + "/check"
    return web.Application([(route, CheckRequestHandler, {"identify": identify, "pool": pool})])


def identify_from_environment() -> Identify:
    """A hub service when the hub started us (JUPYTERHUB_API_*), else the shared COURSE_CHECK_TOKEN."""
    from autograder.labcheck.remote import ENV_CHECK_TOKEN

    if os.environ.get(ENV_HUB_API_URL) and os.environ.get(ENV_HUB_TOKEN):
        return HubUsers()
    token = os.environ.get(ENV_CHECK_TOKEN, "").strip()
    if len(token) < 16:
        from autograder.errors import SetupError

        raise SetupError(
            f"The check server needs a shared secret of at least 16 characters in {ENV_CHECK_TOKEN} "
            f"(e.g. {secrets.token_hex(16)}), the same one the labs are given."
        )
    return SharedToken(token)


async def serve(port: int, ip: str = "127.0.0.1", workers: int = 1) -> None:
    """Serve until cancelled (SIGTERM/SIGINT end the process: see the command)."""
    identify = identify_from_environment()
    prefix = os.environ.get(ENV_SERVICE_PREFIX, "/")
    with tempfile.TemporaryDirectory(prefix="course-checks-") as spool:
        os.chmod(spool, 0o700)
        pool = CheckPool(workers, Path(spool))
        server = make_app(identify, pool, prefix).listen(port, address=ip, max_body_size=MAX_NOTEBOOK_BYTES + 4096)
        log.info("check server on http://%s:%d%s", ip, port, prefix.rstrip("/") + "/check")
        try:
            await asyncio.Event().wait()
        finally:
            server.stop()
            with contextlib.suppress(Exception):
                await pool.close()
