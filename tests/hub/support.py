"""Shared by the hub tests: unique participant names, running a command as a learner, cleanup, and a real
hub (`autograder hub`, as `make hub` runs it) with its participants' sign-in and spawn."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import URL

from autograder.course.layout import ENV_EXCHANGE
from autograder.hub import provision, users
from autograder.hub.run import free_port
from autograder.paths import project_root

ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(
    not ROOT, reason="workshop hub tests make accounts (useradd) and run servers as them: they need root"
)


def unique_name(stem: str) -> str:
    """A participant name no earlier run left behind (`ht` = hub test)."""
    return f"ht{stem}{secrets.token_hex(3)}"


def as_user(name: str, *command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`command` run as the account `name` (runuser: its uid, gid and groups, a clean environment)."""
    return subprocess.run(
        ["runuser", "-u", name, "--", "env", "-i", f"HOME=/home/{name}", "PATH=/usr/bin:/bin", *command],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd="/",
        check=False,
    )


def remove_accounts(*names: str) -> None:
    for name in names:
        users.remove_user(name)


# --------------------------------------------------------------------------- a real hub
AUTOGRADER = str(Path(sys.executable).with_name("autograder"))
PASSWORD = "first-use-password"
READY_TIMEOUT_S = 90
SPAWN_TIMEOUT_S = 120


class Hub:
    def __init__(self, *, cull_idle: int, args: Sequence[str] = ()) -> None:
        self.cull_idle = cull_idle
        self.args = list(args)  # more `autograder hub` options
        self.base = Path(tempfile.mkdtemp(prefix="hub-e2e-"))
        os.chmod(self.base, 0o755)  # the exchange below it must be reachable by learners
        self.state = self.base / "state"
        self.exchange = self.base / "exchange"
        self.participants = self.base / "participants.txt"
        self.port = free_port()
        self.log = self.base / "hub.log"
        self.instructor, self.a, self.b = unique_name("i"), unique_name("a"), unique_name("b")
        self.participants.write_text(f"{self.instructor} instructor\n{self.a}\n{self.b}\n")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def check_port(self) -> int:
        """The port of this hub's check service (the supervisor picks a free one): from the settings it handed
        its JupyterHub process (a child of this hub's supervisor, so another test's hub is never read)."""
        from autograder.hub.settings import ENV_SETTINGS, HubSettings

        assert self.proc is not None
        for proc in Path("/proc").iterdir():
            try:
                parent = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
                environ = (proc / "environ").read_bytes().split(b"\0")
            except (OSError, ValueError, IndexError):
                continue
            if parent != self.proc.pid:
                continue
            for entry in environ:
                if entry.startswith(ENV_SETTINGS.encode() + b"="):
                    return HubSettings.from_json(entry.split(b"=", 1)[1].decode()).check_port
        raise AssertionError("this hub's JupyterHub process is not running")

    @property
    def hub_dir(self) -> Path:
        return self.state / "hub"

    def start(self) -> None:
        env = {**os.environ, "COURSE_DATA_DIR": str(self.state)}
        env.pop("DATABASE_URL", None)  # the hub's own PostgreSQL
        env.pop(ENV_EXCHANGE, None)
        with open(self.log, "ab") as log:  # (appended: a restarted hub keeps the log of the first)
            self.proc = subprocess.Popen(
                [AUTOGRADER, "hub", "--port", str(self.port), "--participants", str(self.participants)]
                + ["--exchange", str(self.exchange), "--cull-idle", str(self.cull_idle), *self.args],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"the hub exited ({self.proc.returncode}):\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/hub/api", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        pytest.fail(f"the hub did not answer within {READY_TIMEOUT_S} s:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # as Ctrl-C
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def cleanup(self) -> None:
        self.stop()
        cluster = provision.hub_cluster(self.hub_dir)
        if cluster.status() is not None:  # only if the hub could not stop it
            cluster.stop()
        remove_accounts(self.instructor, self.a, self.b)
        shutil.rmtree(self.base, ignore_errors=True)


def sign_in(client: httpx.Client, name: str) -> httpx.Response:
    client.get("/hub/login")
    return client.post("/hub/login", data={"username": name, "password": PASSWORD, "_xsrf": client.cookies["_xsrf"]})


def server_xsrf(client: httpx.Client, name: str) -> dict[str, str]:
    """The header a cookie-authenticated API request to the learner's server needs."""
    for cookie in client.cookies.jar:
        if cookie.name == "_xsrf" and cookie.path.startswith(f"/user/{name}"):
            return {"X-XSRFToken": cookie.value or ""}
    return {}


def spawn_and_wait(hub: Hub, name: str, results: dict[str, object]) -> None:
    with httpx.Client(base_url=hub.url, follow_redirects=True, timeout=60) as client:
        signed = sign_in(client, name)
        started = time.monotonic()
        client.get(f"/hub/spawn/{name}")
        status = lab = None
        asked = started
        while time.monotonic() - started < SPAWN_TIMEOUT_S:
            lab = client.get(f"/user/{name}/lab")  # (the OAuth round trip that gives the server's cookie)
            status = client.get(f"/user/{name}/api/status", headers=server_xsrf(client, name))
            if status.status_code == 200 and status.headers.get("content-type", "").startswith("application/json"):
                break
            if status.status_code == 424 and time.monotonic() - asked > 2:
                # Not running and not starting (asked while a stop, e.g. a cull, was still pending): ask again,
                # as a person clicks "Start My Server" again.
                client.get(f"/hub/spawn/{name}")
                asked = time.monotonic()
            time.sleep(0.3)
        elapsed = time.monotonic() - started
        assignments = client.get(
            f"/user/{name}/assignments",
            params={"course_id": "async-sqlalchemy-course"},
            headers=server_xsrf(client, name),
        )
        results[name] = (signed, status, elapsed, assignments, lab)


def server_pid(name: str) -> int | None:
    """The learner's single-user server (the process whose environment names them)."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            environ = (proc / "environ").read_bytes().split(b"\0")
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if f"JUPYTERHUB_USER={name}".encode() in environ and b"jupyterhub.singleuser" in cmdline:
            return int(proc.name)
    return None


KEEP = (
    "import asyncio, sys, asyncpg\n"
    "from autograder import lesson\n"
    "from autograder.db import admin, url\n"
    "async def main(action):\n"
    "    if action == 'write':\n"
    "        name = lesson.setup('01_session_dependency').name\n"
    "    else:\n"
    "        name = lesson.database_name('01_session_dependency')\n"
    "    conn = await asyncpg.connect(**admin.asyncpg_params(url.configured_url().set(database=name)))\n"
    "    if action == 'write':\n"
    "        await conn.execute('CREATE TABLE kept (note text); INSERT INTO kept VALUES (\\'mine\\')')\n"
    "    print(await conn.fetchval('SELECT note FROM kept'))\n"
    "    await conn.close()\n"
    "asyncio.run(main(sys.argv[1]))\n"
)


def instructor(hub: Hub, *command: str) -> str:
    """An nbgrader or autograder command as the instructor runs it on the hub's machine (root, course root)."""
    # As the README says: the hub's exchange in COURSE_EXCHANGE (the course's nbgrader_config.py reads it).
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}"}
    env.pop("DATABASE_URL", None)
    env[ENV_EXCHANGE] = str(hub.exchange)
    course = hub.base / "course"  # (a course folder of the test's own, not this checkout's submitted/)
    options: list[str] = []
    if command[1] != "release_assignment":  # (released from this repository's notebooks/)
        options += [
            f"--CourseDirectory.root={course}",
            f"--CourseDirectory.db_url=sqlite:///{course}/.course/gradebook.db",
        ]
    (course / ".course").mkdir(parents=True, exist_ok=True)
    if command[0].endswith("nbgrader"):
        command = (*command, *options)
    done = subprocess.run(
        command, cwd=project_root(), env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, (command, done.stdout[-2000:], done.stderr[-3000:])
    return done.stdout + done.stderr


def running_hub(**options: object) -> Iterator[Hub]:
    """A module's hub (use as a generator fixture): started, yielded, always cleaned up."""
    hub = Hub(**options)  # type: ignore[arg-type]
    try:
        hub.start()
        yield hub
    finally:
        hub.cleanup()


def spawn_all(hub: Hub, names: Sequence[str]) -> dict[str, object]:
    """Every named participant signs in and starts their server at the same time (a thread each)."""
    results: dict[str, object] = {}
    threads = [threading.Thread(target=spawn_and_wait, args=(hub, name, results)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@contextlib.asynccontextmanager
async def provisioned(admin_url: URL, stems: Sequence[str], limits: provision.Limits | None = None):
    """Learner roles made by the workshop's provisioner on `admin_url`, removed afterwards."""
    provisioner = provision.Provisioner(admin_url, b"test-secret" * 3, limits)
    await provisioner.prepare_server()
    names = [unique_name(stem) for stem in stems]
    databases = [await provisioner.provision(name) for name in names]
    try:
        yield provisioner, databases
    finally:
        for name in names:
            await provisioner.remove(name)
