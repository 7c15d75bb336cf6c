""" "Check my work" in a lab that holds the learner release only.

The hidden checks are the course's answers; a lab a learner controls must not hold them (a
workshop hub's learner servers, the compose learner image). There the lab sends the saved
notebook to the course's check server (autograder/labcheck/server.py), which grades it where
the source lives and answers with the same report: points and check messages, never test code.

    COURSE_CHECK_URL    the check server's base URL, e.g. http://127.0.0.1:8890/ (compose: http://checker:8890/)
    COURSE_CHECK_TOKEN  the credential sent with each check; on a JupyterHub learner server the
                        server's own JUPYTERHUB_API_TOKEN is used instead, which the check server
                        asks the hub to identify (so it knows whose check it runs)
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import httpx

from autograder.labcheck.service import CHECK_TIMEOUT_S, Checks, CheckService
from autograder.paths import project_root

ENV_CHECK_URL = "COURSE_CHECK_URL"
ENV_CHECK_TOKEN = "COURSE_CHECK_TOKEN"
ENV_HUB_TOKEN = "JUPYTERHUB_API_TOKEN"
CHECK_PATH = "check"


class RemoteChecks(Checks):
    """Checks graded by the course's check server; this lab only reads the saved notebook."""

    def __init__(self, root_dir: Path, url: str, token: str, *, timeout: float = CHECK_TIMEOUT_S) -> None:
        super().__init__(root_dir, timeout=timeout)
        self.url = url.rstrip("/") + "/" + CHECK_PATH
        self._token = token

    async def _ask(self, notebook: Path, shown: str) -> dict[str, Any]:
        try:
            text = await asyncio.to_thread(notebook.read_text, encoding="utf-8", errors="replace")
        except OSError as exc:
            return {"ok": False, "error": f"Cannot read {shown} ({exc.strerror})."}
        headers = {"Authorization": f"token {self._token}"}
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                response = await client.post(self.url, json={"path": shown, "notebook": text}, headers=headers)
        except httpx.HTTPError as exc:
            return {
                "ok": False,
                "error": f"The course's checker at {self.url} cannot be reached ({type(exc).__name__}); "
                "try again in a minute, or tell your instructor.",
            }
        try:
            reply: Any = response.json()
        except ValueError:
            reply = None
        if isinstance(reply, dict) and isinstance(reply.get("ok"), bool):
            return reply
        return {"ok": False, "error": f"The course's checker answered {response.status_code} without a verdict."}


class Unavailable(Checks):
    """A release-only lab with no check server configured: say so, in one sentence."""

    async def _ask(self, notebook: Path, shown: str) -> dict[str, Any]:
        return {
            "ok": False,
            "error": "This lab holds the learner release only (no hidden checks) and no course checker is "
            f"configured ({ENV_CHECK_URL}); use Validate, or ask your instructor.",
        }


def service_for(root_dir: Path) -> Checks:
    """The checks this lab can offer: the course's check server when one is configured; else grading
    here when this installation holds the course's source; else a sentence saying why not."""
    url = os.environ.get(ENV_CHECK_URL, "").strip()
    if url:
        token = os.environ.get(ENV_CHECK_TOKEN, "").strip() or os.environ.get(ENV_HUB_TOKEN, "").strip()
        return RemoteChecks(root_dir, url, token)
    if (project_root() / "solutions").is_dir():
        return CheckService(root_dir)
    return Unavailable(root_dir)
