"""The Jupyter server's side of "Check my work": one warm worker, one check at a time.

`CheckService.check(path)` sends the saved notebook to the worker (autograder/labcheck/worker.py)
and returns its answer. Checks run one after another (two at once would fight over two cores
and the learner would wait for both); a second request for a notebook that is already being
checked joins that check instead of starting another. A worker that dies or hangs is killed
and the learner gets one sentence; the next check starts a new worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autograder.grading.executor import Deadlines

log = logging.getLogger(__name__)

# The grader's own notebook deadline ends an endless loop; this is for a worker that hangs.
CHECK_TIMEOUT_S = Deadlines().notebook + Deadlines().startup + 60.0
READY_TIMEOUT_S = 120.0


@dataclass
class _Pending:
    path: str
    future: asyncio.Future[dict[str, Any]]
    queued_at: float = field(default_factory=time.monotonic)
    started_at: float | None = None


class Checks:
    """What every way of checking shares: the lab's folder, one check at a time, a second
    request for the same notebook joining the running one, a deadline, one sentence on failure.
    Subclasses answer one check in `_ask`."""

    def __init__(self, root_dir: Path, *, timeout: float = CHECK_TIMEOUT_S) -> None:
        self.root_dir = Path(root_dir).resolve()
        self.timeout = timeout
        self._lock = asyncio.Lock()
        self._pending: dict[str, _Pending] = {}

    # ------------------------------------------------------------------ requests
    def resolve(self, path: str) -> Path:
        """The notebook a request names, inside the lab's folder; ValueError with a sentence otherwise."""
        target = (self.root_dir / path.lstrip("/")).resolve()
        if not target.is_relative_to(self.root_dir):
            raise PermissionError("That path is outside the lab's folder.")
        if target.suffix != ".ipynb" or not target.is_file():
            raise ValueError(f"{path} is not a saved notebook in the lab's folder.")
        return target

    def status(self, path: str) -> dict[str, Any]:
        pending = self._pending.get(path)
        if pending is None:
            return {"state": "idle"}
        state = "running" if pending.started_at is not None else "queued"
        return {"state": state, "elapsed": round(time.monotonic() - pending.queued_at, 1)}

    async def check(self, path: str, shown: str | None = None) -> dict[str, Any]:
        """Check the notebook at `path` (in the lab's folder); `shown` is its name in messages."""
        notebook = self.resolve(path)
        pending = self._pending.get(path)
        if pending is None:  # not running: start it; else join the check that runs
            loop = asyncio.get_running_loop()
            pending = _Pending(path, loop.create_future())
            self._pending[path] = pending
            task = asyncio.ensure_future(self._run(pending, notebook, shown or path))
            task.add_done_callback(lambda _: self._pending.pop(path, None))
        return await asyncio.shield(pending.future)

    async def _run(self, pending: _Pending, notebook: Path, shown: str) -> None:
        async with self._lock:
            pending.started_at = time.monotonic()
            try:
                reply = await asyncio.wait_for(self._ask(notebook, shown), self.timeout)
            except TimeoutError:
                await self._abandon()
                reply = {"ok": False, "error": f"The check did not finish in {self.timeout:g} s and was stopped."}
            except Exception as exc:
                log.exception("check of %s failed", pending.path)
                await self._abandon()
                reply = {"ok": False, "error": self._failure_sentence(exc)}
            if not pending.future.done():
                pending.future.set_result(reply)

    async def _ask(self, notebook: Path, shown: str) -> dict[str, Any]:
        raise NotImplementedError

    async def _abandon(self) -> None:
        """After a timeout or a failure: drop whatever may be stuck."""

    def _failure_sentence(self, exc: BaseException) -> str:
        return f"The checker stopped unexpectedly ({exc}); press the button again."

    async def close(self) -> None:
        """Release what the service holds (a worker, connections)."""


class CheckService(Checks):
    """Checks graded here, by a warm worker process of this lab (the lab holds the course's source)."""

    def __init__(self, root_dir: Path, *, timeout: float = CHECK_TIMEOUT_S) -> None:
        super().__init__(root_dir, timeout=timeout)
        self._worker: asyncio.subprocess.Process | None = None
        self._answers: asyncio.StreamReader | None = None

    # ------------------------------------------------------------------ the worker
    async def _ask(self, notebook: Path, shown: str) -> dict[str, Any]:
        await self._ensure_worker()
        assert self._worker is not None and self._worker.stdin is not None and self._answers is not None
        self._worker.stdin.write((json.dumps({"notebook": str(notebook), "shown": shown}) + "\n").encode())
        await self._worker.stdin.drain()
        line = await self._answers.readline()
        if not line:
            code = await self._worker.wait()
            self._worker = None
            raise RuntimeError(f"the check worker exited with code {code}")
        reply: dict[str, Any] = json.loads(line)
        return reply

    async def _ensure_worker(self) -> None:
        if self._worker is not None and self._worker.returncode is None:
            return
        read_fd, write_fd = os.pipe()
        try:
            self._worker = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "autograder.labcheck.worker",
                str(write_fd),
                stdin=asyncio.subprocess.PIPE,
                pass_fds=(write_fd,),
                start_new_session=True,  # the lab's Ctrl-C is the lab's: the service stops it
            )
        finally:
            os.close(write_fd)
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=16 * 1024 * 1024)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(read_fd, "rb"))
        self._answers = reader
        ready = await asyncio.wait_for(reader.readline(), READY_TIMEOUT_S)
        if not ready:
            raise RuntimeError("the check worker exited while starting (see the lab's log)")
        log.info("check worker %s ready", self._worker.pid)

    async def _abandon(self) -> None:
        await self._stop_worker()

    async def _stop_worker(self) -> None:
        worker, self._worker = self._worker, None
        if worker is None or worker.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, 9)  # its fork server and sandboxed kernels are in its session
        await worker.wait()

    async def close(self) -> None:
        worker, self._worker = self._worker, None
        if worker is None or worker.returncode is not None:
            return
        if worker.stdin is not None:
            worker.stdin.close()  # end of requests: it exits by itself
        try:
            await asyncio.wait_for(worker.wait(), 10)
        except TimeoutError:
            self._worker = worker
            await self._stop_worker()
