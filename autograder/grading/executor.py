"""Execute one submission's notebook in a sandboxed child forked from a warm server.

Parent side (`Executor.execute`) and child side (`_child_main`) of one protocol:

    parent                                   child (forked, sandboxed)
      start process  ───────────────────────▶  setsid, sandbox.apply
                     ◀───────────────────────  {"ready": ..., "protections": ...}
      {"cell": i, "source": ...} ───────────▶  run it
                     ◀───────────────────────  {"cell": i, "outputs": [...], ...}
      ... one cell at a time ...
      {"done": true} ───────────────────────▶  exit

Only bytes cross the pipe (JSON, size-capped): the parent never unpickles
anything a submission could have written. The parent enforces the deadlines
(per cell and per notebook) by killing the child's whole process group, so a
submission that blocks signals, sleeps, forks or never ends its lifespan cannot
hold a worker. A child that dies (os._exit, segfault, memory) is reported on the
cell that was running; every cell after it is marked "not run" with an error
output, so nbgrader can never score an unexecuted test cell as passed.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import secrets
import signal
import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import Any

from autograder.grading import outputs, sandbox

# One reply from a submission's process, at most: the runner's output budget (kernel.py,
# OUTPUT_CEILING) plus its notes and stand-ins fits well inside. A longer reply is read
# through without being kept (see `_receive`).
MAX_MESSAGE_BYTES = 2 * 1024 * 1024
# All the replies of one notebook: past this, a cell keeps a note and its last error only.
# The runner's budget keeps an honest notebook far below; this holds for one that defeats it.
NOTEBOOK_OUTPUT_BYTES = 4 * 1024 * 1024
_RECEIVED: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()  # bytes per pipe

_CONTEXT = None
_CONTEXT_LOCK = threading.Lock()
_WARMING: threading.Thread | None = None


PROCESS_NAME = "autograder-submission"


def _context():
    """A forkserver whose server process imported the heavy modules once."""
    global _CONTEXT
    with _CONTEXT_LOCK:
        if _CONTEXT is None:
            from autograder.grading import speedups

            speedups.apply("submissions_skip_main")  # our children never need the caller's __main__
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(["autograder.grading.preload"])
            _start_fork_server()
            _CONTEXT = ctx
        return _CONTEXT


def _start_fork_server() -> None:
    """Start the fork server with the environment a submission may see, not the grader's.

    Every submission is forked from it, and a process can read the environment it was
    started with (/proc/self/environ, its own memory) whatever is later removed from
    `os.environ`: a token or GRADING_DATABASE_URL's admin password in the grader's
    environment would be in every submission. multiprocessing starts the server with the
    caller's environment, so it is swapped for the duration of the start (a few ms, in the
    thread that makes the context: the CLI's main thread, before its other threads exist)."""
    from multiprocessing import forkserver

    from autograder.grading import speedups

    saved = dict(os.environ)
    try:
        os.environ.clear()
        os.environ.update(sandbox.submission_environment(speedups.fork_server_environment()))
        forkserver.ensure_running()
    finally:
        os.environ.clear()
        os.environ.update(saved)


@dataclass(frozen=True)
class Deadlines:
    cell: float = 60.0
    notebook: float = 300.0
    grace: float = 3.0  # after a cell's deadline, how long SIGALRM gets before we kill
    startup: float = 30.0


@dataclass
class JobSpec:
    env: dict[str, str]
    sandbox: sandbox.SandboxSpec
    output_limit: int = 1_000_000
    deadlines: Deadlines = field(default_factory=Deadlines)
    graded_cells: frozenset[int] = frozenset()  # test cells: checked for tampering before and after


@dataclass
class Execution:
    """What happened to one notebook: outputs per code cell, and how it ended."""

    cells: dict[int, dict[str, Any]] = field(default_factory=dict)
    ended: str = "completed"  # completed | cell-timeout | notebook-timeout | crashed | protocol-error
    detail: str = ""
    protections: sandbox.Applied = field(default_factory=sandbox.Applied)
    seconds: float = 0.0
    startup_seconds: float = 0.0


def _send(conn, message: dict[str, Any]) -> None:
    conn.send_bytes(json.dumps(message).encode())


def _child_main(conn, job: JobSpec) -> None:
    """Runs in the forked child. Never returns: the process exits here.

    Once the first cell has run, submission code can have changed anything a Python
    name leads to: module globals (this module's `json`, `_send`), classes
    (`multiprocessing.connection.Connection.send_bytes`), builtins. So everything the
    loop below uses is taken into this frame's local variables before that, and is
    either a builtin or C function (os.read/os.write on the pipe, the C JSON scanner
    and encoder), or a Python function whose code object is compared before each call
    (`CellRunner.run`, which checks the integrity check's code the same way). A reply
    is framed as multiprocessing's Connection frames it: 4-byte big-endian length.
    """
    exit_now = os._exit
    code = 0
    try:
        os.setsid()  # its own process group: the parent kills all of it at once
        # Nothing of the grader's but the pipe: multiprocessing hands every child the fork
        # server's "alive" pipe and the resource tracker's. The fork server exits (and the
        # kernel then ends what it started, see sandbox) only once no process holds the
        # former, so a submission holding it would outlive a grader that was killed.
        mine = conn.fileno()
        os.closerange(3, mine)
        os.closerange(mine + 1, os.sysconf("SC_OPEN_MAX"))
        applied = sandbox.apply(job.sandbox, job.env)
        from autograder.grading import integrity
        from autograder.grading.kernel import CellRunner

        runner = CellRunner(job.output_limit, job.deadlines.cell)
        baseline = integrity.BASELINE or integrity.Baseline()
        guard = runner.guarded(baseline)
        integrity.install_refusals(baseline)  # before any submission code: a hook cannot be removed
        run = CellRunner.run
        run_code = run.__code__
        fd = conn.fileno()
        read, write, length, join, from_bytes, view = os.read, os.write, len, b"".join, int.from_bytes, memoryview
        unencodable, say = (TypeError, ValueError, RecursionError), BaseException.__str__
        scan = json.decoder.JSONDecoder().scan_once  # type: ignore[attr-defined]  # set in __init__, not declared; the C scanner: no Python code of json's runs
        encoder = json.encoder.c_make_encoder  # type: ignore[attr-defined]  # None without the C accelerator
        if encoder is None or not callable(scan) or type(scan).__module__ != "_json":
            raise RuntimeError("the C JSON codec is needed to answer without trusting Python code")
        # object.__repr__ for anything that is not JSON: it runs no code of the object's class.
        encode = encoder(
            None, object.__repr__, json.encoder.encode_basestring_ascii, None, ": ", ", ", False, False, True
        )
        _send(conn, {"ready": True, "on": applied.on, "off": applied.off})
        while True:
            header = b""
            while length(header) < 4:
                chunk = read(fd, 4 - length(header))
                if not chunk:
                    exit_now(0)  # the parent is gone
                header += chunk
            remaining = from_bytes(header, "big", signed=True)
            chunks = []
            while remaining > 0:
                chunk = read(fd, remaining)
                if not chunk:
                    exit_now(0)
                chunks.append(chunk)
                remaining -= length(chunk)
            message = scan(join(chunks).decode(), 0)[0]
            del chunks, chunk  # the raw message holds the test's source, hidden tests included
            if message.get("done") is True:
                reply = {"bye": message.get("nonce")}
            elif run.__code__ is not run_code:
                reply = {
                    "status": "tampered",
                    "execution_count": None,
                    "outputs": [
                        {
                            "output_type": "error",
                            "ename": "Tampering",
                            "evalue": "the submission changed the grader's "
                            "runner. This test and every later one score zero.",
                            "traceback": ["Tampering: the runner"],
                        }
                    ],
                }
            else:
                # Popped, so no frame above the test (this one) holds its source while it runs.
                reply = run(runner, message.pop("source", ""), message.get("graded") is True, guard)
            reply["cell"] = message.get("cell")
            reply["nonce"] = message.get("nonce")
            try:
                payload = "".join(encode(reply, 0)).encode()
            except unencodable as exc:
                payload = "".join(
                    encode(
                        {
                            "cell": message.get("cell"),
                            "nonce": message.get("nonce"),
                            "status": "error",
                            "execution_count": None,
                            "outputs": [
                                {
                                    "output_type": "error",
                                    "ename": "OutputError",
                                    "evalue": "the cell's output could not be recorded: " + say(exc),
                                    "traceback": [],
                                }
                            ],
                        },
                        0,
                    )
                ).encode()
            data = view(length(payload).to_bytes(4, "big") + payload)
            while length(data):
                data = data[write(fd, data) :]
            if "bye" in reply:
                break
    except:  # noqa: E722 - the parent reports it from the exit status; no name looked up here
        code = 70
    finally:
        exit_now(code)


def _error(ename: str, evalue: str) -> dict[str, Any]:
    return {"output_type": "error", "ename": ename, "evalue": evalue, "traceback": [f"{ename}: {evalue}"]}


def _describe_exit(process) -> str:
    code = process.exitcode
    if code is None:
        return "the process did not exit"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = {
            "SIGSEGV": " (a segmentation fault)",
            "SIGKILL": " (killed: out of memory or a limit)",
            "SIGXCPU": " (CPU time limit)",
            "SIGXFSZ": " (file size limit)",
        }.get(name, "")
        return f"the process was ended by {name}{hint}"
    return f"the process exited with status {code}"


class Executor:
    """Runs notebooks, one child process each. Thread-safe: one call per worker thread."""

    def __init__(self, deadlines: Deadlines | None = None):
        self.deadlines = deadlines or Deadlines()
        self._live: set[Any] = set()
        self._live_lock = threading.Lock()

    def kill_all(self) -> None:
        """Stop every running submission now (an interrupted run)."""
        with self._live_lock:
            live = list(self._live)
        for process in live:
            _kill_group(process.pid)

    @staticmethod
    def warm_up() -> None:
        """Start the fork server now (imports happen once, before the clock starts)."""
        ctx = _context()
        probe = ctx.Process(target=_noop, name=PROCESS_NAME)
        probe.start()
        probe.join()

    @staticmethod
    def warm_up_in_background() -> threading.Thread:
        """Start the fork server's ~0.7 s of imports on another core while the caller imports
        nbgrader (also ~0.7 s): the CLI calls this before anything heavy. Once per process:
        a later call returns the same thread."""
        global _WARMING
        _context()  # the server itself is started here, in the caller's thread (see _start_fork_server)
        with _CONTEXT_LOCK:
            if _WARMING is None:
                _WARMING = threading.Thread(target=Executor.warm_up, name="grading-warm-up", daemon=True)
                _WARMING.start()
            return _WARMING

    def execute(self, code_cells: list[tuple[int, str]], job: JobSpec) -> Execution:
        ctx = _context()
        parent_conn, child_conn = ctx.Pipe(duplex=True)
        process = ctx.Process(target=_child_main, args=(child_conn, job), daemon=False, name=PROCESS_NAME)
        started = time.monotonic()
        result = Execution()
        process.start()
        with self._live_lock:
            self._live.add(process)
        child_conn.close()
        deadline = started + job.deadlines.notebook
        try:
            ready = self._receive(parent_conn, process, min(deadline, started + job.deadlines.startup))
            if ready is None or not ready.get("ready"):
                result.ended = "crashed"
                result.detail = f"the grading process did not start: {_describe_exit(process)}"
                self._not_run(result, code_cells, "the notebook could not be started")
                return result
            result.protections = sandbox.Applied(on=list(ready.get("on", [])), off=dict(ready.get("off", {})))
            result.startup_seconds = time.monotonic() - started
            # A test cell's reply is trusted only once the process has shown it is still
            # the grader's: it must echo a fresh nonce, nothing may arrive unasked, and
            # the next exchange must succeed too. Code running inside a test cell could
            # otherwise write a forged "passed" reply to the pipe and then end the process
            # before the real one is sent.
            unconfirmed: int | None = None
            for position, (index, source) in enumerate(code_cells):
                if parent_conn.poll(0):
                    self._stop_for(
                        result,
                        code_cells[position:],
                        "protocol-error",
                        "the grading process sent a message nobody asked for",
                        unconfirmed,
                    )
                    return result
                nonce = secrets.token_hex(8)
                _send(
                    parent_conn, {"cell": index, "source": source, "graded": index in job.graded_cells, "nonce": nonce}
                )
                sent = time.monotonic()
                cell_deadline = min(deadline, sent + job.deadlines.cell + job.deadlines.grace)
                reply = self._receive(parent_conn, process, cell_deadline)
                if reply is None:
                    now = time.monotonic()
                    if now < cell_deadline:
                        # The pipe closed early: give a dying process a moment to be reaped.
                        process.join(timeout=1.0)
                    if process.is_alive() and now >= cell_deadline:
                        notebook_over = now >= deadline
                        ended = "notebook-timeout" if notebook_over else "cell-timeout"
                        limit = job.deadlines.notebook if notebook_over else job.deadlines.cell
                        what = "the notebook" if notebook_over else "this cell"
                        detail = f"{what} ran longer than {limit:g} s and was stopped"
                        self._stop_for(result, code_cells[position:], ended, detail, unconfirmed, "Timeout")
                    else:
                        detail = _describe_exit(process) + " while running this cell"
                        self._stop_for(result, code_cells[position:], "crashed", detail, unconfirmed, "KernelDied")
                    return result
                if (
                    reply.get("cell") != index
                    or reply.get("nonce") != nonce
                    or not isinstance(reply.get("outputs"), list)
                ):
                    self._stop_for(
                        result,
                        code_cells[position:],
                        "protocol-error",
                        "the grading process sent an unexpected message",
                        unconfirmed,
                        "GraderError",
                    )
                    return result
                unconfirmed = None  # the previous test cell's process answered again: it stands
                result.cells[index] = {
                    "execution_count": reply.get("execution_count"),
                    "outputs": reply["outputs"],
                    "seconds": time.monotonic() - sent,
                }
                if reply.get("status") == "tampered":
                    result.ended = "tampering"
                    result.detail = "the submission changed the grader or the check library"
                    self._not_run(result, code_cells[position + 1 :], "the submission tampered with the grader")
                    return result
                if reply.get("status") == "timeout":
                    result.ended = "cell-timeout"
                    result.detail = f"a cell ran longer than {job.deadlines.cell:g} s"
                if index in job.graded_cells:
                    unconfirmed = index
            nonce = secrets.token_hex(8)
            _send(parent_conn, {"done": True, "nonce": nonce})
            bye = self._receive(parent_conn, process, time.monotonic() + 5)
            if unconfirmed is not None and (bye is None or bye.get("bye") != nonce or parent_conn.poll(0)):
                self._void(result, unconfirmed, "the process did not finish cleanly after this test")
                result.ended = "protocol-error"
                result.detail = "the grading process did not finish cleanly"
            process.join(timeout=2)
            return result
        finally:
            result.seconds = time.monotonic() - started
            self._kill(process)
            with self._live_lock:
                self._live.discard(process)
            parent_conn.close()

    def _stop_for(
        self,
        result: Execution,
        rest: list[tuple[int, str]],
        ended: str,
        detail: str,
        unconfirmed: int | None,
        ename: str | None = None,
    ) -> None:
        """End the run at the first of `rest`: it gets the error, the others "not run"."""
        result.ended = ended
        result.detail = detail
        if unconfirmed is not None:
            self._void(result, unconfirmed, f"the next cell did not complete ({ended})")
        first, *others = rest
        result.cells[first[0]] = {"execution_count": None, "outputs": [_error(ename or "GraderError", detail)]}
        self._not_run(result, others, f"an earlier cell ended the run ({ended})")

    @staticmethod
    def _void(result: Execution, index: int, why: str) -> None:
        result.cells[index] = {
            "execution_count": None,
            "outputs": [_error("Unconfirmed", f"this test's result cannot be trusted: {why}")],
        }

    @staticmethod
    def _not_run(result: Execution, cells: list[tuple[int, str]], why: str) -> None:
        for index, _ in cells:
            result.cells[index] = {"execution_count": None, "outputs": [_error("NotRun", f"not run: {why}")]}

    @staticmethod
    def _receive(conn, process, deadline: float, limit: int = MAX_MESSAGE_BYTES) -> dict[str, Any] | None:
        """The next message, or None if the deadline passed or the child died.

        Read here rather than with `Connection.recv_bytes`, which would wait forever for a
        frame the child announced and never finished, and lose the framing on one that is
        too long. What the grader keeps stays bounded whatever the child sends: a reply
        longer than `limit` is read through and stands as an error on its cell, and once a
        notebook's replies pass NOTEBOOK_OUTPUT_BYTES each cell keeps a note and its last
        error only (see outputs.reduced)."""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            if conn.poll(min(remaining, 0.25)):
                try:
                    size, payload = _read_frame(conn.fileno(), limit, deadline)
                except (EOFError, OSError):  # closed mid-frame, or the deadline passed (TimeoutError)
                    return None
                if size > limit:
                    message = outputs.oversized(size, limit, payload)
                else:
                    message = outputs.parse(payload)
                del payload
                if message is not None and isinstance(message.get("outputs"), list):
                    spent = _RECEIVED.get(conn, 0) + min(size, limit)
                    _RECEIVED[conn] = spent
                    if spent > NOTEBOOK_OUTPUT_BYTES:
                        message["outputs"] = outputs.reduced(message["outputs"])
                return message
            if not process.is_alive():
                # drain a message written just before exiting
                if conn.poll(0):
                    continue
                return None

    @staticmethod
    def _kill(process) -> None:
        _kill_group(process.pid)
        process.join(timeout=5)
        try:
            process.close()
        except ValueError:
            pass


def _kill_group(pid: int | None) -> None:
    """SIGKILL the child's process group, and the child itself (in case it has not made its group
    yet); a child that has not started (no pid) or is already gone is nothing to kill."""
    if pid is None:
        return
    for kill in (os.killpg, os.kill):
        try:
            kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _noop() -> None:
    pass


def apply_execution(nb, execution: Execution) -> None:
    """Write an Execution's outputs into the notebook's code cells (in place).

    Every output is first made one nbformat can write (outputs.clean_cell: a lone surrogate,
    a mimebundle of the wrong types or any other invalid output is replaced, never fatal),
    then has the notebook's hidden test lines removed (redact.from_notebook: the test cells
    nbgrader restored carry them, between their markers)."""
    from nbformat import from_dict  # parent side only: nbformat costs ~1 s to import

    from autograder.grading import redact

    redactor = redact.from_notebook(nb)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        ran = execution.cells.get(index)
        if ran is None:
            ran = {"execution_count": None, "outputs": [_error("NotRun", "not run")]}
        count = ran.get("execution_count")
        cell.execution_count = count if type(count) is int and count >= 0 else None
        cleaned = outputs.clean_cell(ran.get("outputs", []))
        for output in cleaned:
            redactor.output(output)
        cell.outputs = [from_dict(o) for o in cleaned]


def _read_frame(fd: int, limit: int, deadline: float) -> tuple[int, bytes]:
    """One frame as multiprocessing's Connection writes it (4-byte big-endian length; -1 and
    8 more bytes for a longer one): (length, payload). Past `limit` the payload is read
    through and only its last bytes are returned. TimeoutError at the deadline."""
    size = int.from_bytes(_read_exact(fd, 4, deadline), "big", signed=True)
    if size == -1:
        size = int.from_bytes(_read_exact(fd, 8, deadline), "big")
    if size < 0:
        raise EOFError("bad frame length")
    return size, _read_exact(fd, size, deadline, keep=4096 if size > limit else None)


def _read_exact(fd: int, count: int, deadline: float, keep: int | None = None) -> bytes:
    """`count` bytes from `fd` (only the last `keep` of them, if given)."""
    import select

    poller = select.poll()
    poller.register(fd, select.POLLIN)
    parts: list[bytes] = []
    got = 0
    while got < count:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not poller.poll(remaining * 1000):
            raise TimeoutError("the frame did not arrive before the deadline")
        chunk = os.read(fd, min(count - got, 1 << 20))
        if not chunk:
            raise EOFError("the pipe closed mid-frame")
        got += len(chunk)
        parts.append(chunk)
        if keep is not None and len(parts) > 1:
            parts = [b"".join(parts)[-keep:]]
    return b"".join(parts)
