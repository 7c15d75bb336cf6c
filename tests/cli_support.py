"""Helpers for tests that run the `autograder` CLI as a subprocess.

Every such test gets its own COURSE_DATA_DIR (so the session's PostgreSQL is never
touched) and no DATABASE_URL (the pytest plugin exports one for the session). A
cluster is initialised once per session (`pg_template`) and copied with `cp -a`
(ownership kept: as root the server runs as the `pgserver` user), which is much
faster than one initdb per test.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from autograder.db.embedded import EmbeddedPostgres

REPO = Path(__file__).resolve().parents[1]
AUTOGRADER = [sys.executable, "-m", "autograder"]


def cli_env(state_dir: Path | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "COURSE_DATA_DIR", "JUPYTER_CONFIG_PATH")}
    if state_dir is not None:
        env["COURSE_DATA_DIR"] = str(state_dir)
    env.update(extra)
    return env


def run_cli(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([*AUTOGRADER, *args], env=env, capture_output=True, text=True, timeout=timeout, cwd=REPO)


def assert_one_sentence_error(result: subprocess.CompletedProcess, *fragments: str) -> str:
    """Exit 2, exactly one line `error: ...` on stderr, no traceback; return the line."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    lines = [ln for ln in result.stderr.splitlines() if ln.strip() and not ln.startswith("[course-db]")]
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith("error: ") and line.rstrip().endswith("."), line
    for fragment in fragments:
        assert fragment in line, (fragment, line)
    return line


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def postgres_pids_for(data_dir: Path) -> list[int]:
    """Live postgres processes whose command line mentions `data_dir`."""
    pids = []
    needle = str(data_dir).encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            cmdline = (proc / "cmdline").read_bytes()
            stat = (proc / "stat").read_text()
            if needle in cmdline and b"postgres" in cmdline and ") Z " not in stat:
                pids.append(int(proc.name))
    return pids


def pid_alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return ") Z " not in stat  # a zombie is dead, just not reaped yet


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def environ_of(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode(errors="replace").split("=", 1) for item in raw if b"=" in item)


def wait_for(predicate, timeout: float, interval: float = 0.2, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def stop_cluster(state_dir: Path) -> None:
    """Last-resort cleanup: stop a test's server and kill anything left on its data dir."""
    data_dir = state_dir / "pgdata"
    with contextlib.suppress(Exception):
        EmbeddedPostgres(data_dir).stop()
    for pid in postgres_pids_for(data_dir):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


_template: list[Path] = []


def _private_tmp(prefix: str) -> Path:
    """A temp dir outside pytest's basetemp.

    pytest resets /tmp/pytest-of-<user> to mode 0700 whenever a session starts, and
    the server's OS user (`pgserver`, as root) must traverse every parent of its
    data dir: a concurrent pytest run would otherwise pull the folder from under it.
    """
    return Path(tempfile.mkdtemp(prefix=prefix))


@pytest.fixture(scope="session")
def pg_template() -> Path:
    """An initialised (not running) cluster to copy; initdb runs once per session.

    Modules import this fixture, which makes one fixture per module; the module
    level cache keeps it to one initdb for the whole session.
    """
    if not _template:
        state = _private_tmp("course-test-template-")
        server = EmbeddedPostgres(state / "pgdata")
        with server._locked():
            server._init_if_needed()
        _template.append(state / "pgdata")
        atexit.register(shutil.rmtree, state, True)
    return _template[0]


@pytest.fixture
def course_state(pg_template) -> Iterator[Path]:
    """A COURSE_DATA_DIR of this test's own holding a ready cluster; its server is stopped after."""
    root = _private_tmp("course-test-")
    state = root / "state"
    state.mkdir()
    subprocess.run(["cp", "-a", str(pg_template), str(state / "pgdata")], check=True)
    try:
        yield state
    finally:
        stop_cluster(state)
        shutil.rmtree(root, ignore_errors=True)


TOKEN = "course-test-token"


def http(port: int, path: str, method: str = "GET") -> tuple[int, str]:
    """(status, body) of a request to a local JupyterLab with the test token; redirects not followed."""
    import urllib.error
    import urllib.request

    sep = "&" if "?" in path else "?"
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}{sep}token={TOKEN}", method=method)

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")
    except OSError:
        return 0, ""


class JupyterServer:
    """`autograder <command> --no-browser --port PORT [args...]` with its own state, logged to a file.

    `close()` stops it as a person would (SIGTERM to the supervisor, which stops
    JupyterLab, kernels and the database) and then kills whatever is left."""

    def __init__(self, command: str, state: Path, port: int, work: Path, *args: str, **env: str):
        self.port = port
        self.log_path = work / f"{command}.log"
        self.runtime_dir = work / "jupyter-runtime"
        self._log = open(self.log_path, "w")  # noqa: SIM115 - the server writes to it until stop() closes it
        self.proc = subprocess.Popen(
            [*AUTOGRADER, command, "--no-browser", "--port", str(port), *args],
            env=cli_env(state, JUPYTER_TOKEN=TOKEN, JUPYTER_RUNTIME_DIR=str(self.runtime_dir), **env),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
        self.jupyter: int | None = None

    def url(self, path: str) -> str:
        sep = "&" if "?" in path else "?"
        return f"http://127.0.0.1:{self.port}{path}{sep}token={TOKEN}"

    def wait_ready(self, timeout: float = 60) -> int:
        """Wait for /api/status; return (and remember) the JupyterLab pid."""

        def ready():
            assert self.proc.poll() is None, self.output()
            return http(self.port, "/api/status")[0] == 200

        wait_for(ready, timeout, interval=0.3, what=f"JupyterLab /api/status on port {self.port}")
        self.jupyter = children(self.proc.pid)[0]
        return self.jupyter

    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text()

    def close(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.jupyter is not None:  # JupyterLab runs in its own session: its group is its pid
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.jupyter, signal.SIGKILL)
        self._log.close()
