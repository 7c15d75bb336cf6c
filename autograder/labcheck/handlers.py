"""HTTP API of "Check my work", under the Jupyter server's authentication.

    POST /autograder/check  {"path": "01_x/01_x.ipynb"}
         -> {"ok": true, "report": {...}} | {"ok": false, "error": "..."}
    GET  /autograder/check?path=01_x/01_x.ipynb
         -> {"state": "idle" | "queued" | "running", "elapsed": s}

Paths are relative to the lab's folder, as the notebook's context names them. The report
holds points and check messages only (see report.py): no hidden test source reaches the browser.
"""

from __future__ import annotations

import json
from typing import Any

from jupyter_server.base.handlers import APIHandler
from tornado import web

from autograder.labcheck.service import Checks


class CheckHandler(APIHandler):
    @property
    def service(self) -> Checks:
        service: Checks = self.settings["autograder_check_service"]
        return service

    @web.authenticated
    async def post(self) -> None:
        body: Any = self.get_json_body() or {}
        path = body.get("path") if isinstance(body, dict) else None
        if not isinstance(path, str) or not path:
            self._reply(400, {"ok": False, "error": 'Send {"path": "<notebook path>"}.'})
            return
        try:
            reply = await self.service.check(path)
        except PermissionError as exc:
            self._reply(403, {"ok": False, "error": str(exc)})
            return
        except ValueError as exc:
            self._reply(404, {"ok": False, "error": str(exc)})
            return
        self._reply(200, reply)

    @web.authenticated
    def get(self) -> None:
        self._reply(200, self.service.status(self.get_argument("path", "")))

    def _reply(self, status: int, payload: dict[str, Any]) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(payload))
