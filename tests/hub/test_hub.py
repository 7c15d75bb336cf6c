"""A real workshop hub (`autograder hub`, as `make hub` runs it) with two learners and an instructor.

Learners sign in through the login form (passwords set at first sign-in), their servers spawn as
their own accounts and answer through the proxy; then, from a learner's account (`runuser`), the
test tries what a learner in a terminal could: another learner's home and database, the course's
solutions and history, the hub's secrets. The hub is then stopped as Ctrl-C stops it.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import pytest

from autograder.course.layout import COURSE_ID, ENV_EXCHANGE
from autograder.hub import interpreter, provision
from autograder.paths import project_root
from tests.hub.support import as_user, needs_root, remove_accounts, unique_name

pytestmark = needs_root

ROOT = project_root()
AUTOGRADER = str(Path(sys.executable).with_name("autograder"))
PASSWORD = "first-use-password"
READY_TIMEOUT_S = 90
SPAWN_TIMEOUT_S = 120
# Short, so that the test sees a cull: a server is culled 15-23 s after its last reported activity
# (its start: neither JupyterHub nor the server report the test's requests that fast). The tests before
# the cull's need no server after their first seconds; those after it start the server again if needed.
CULL_IDLE_S = 15

HAND_IN = "00_foundations"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Hub:
    def __init__(self) -> None:
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

    @property
    def hub_dir(self) -> Path:
        return self.state / "hub"

    def start(self) -> None:
        env = {**os.environ, "COURSE_DATA_DIR": str(self.state)}
        env.pop("DATABASE_URL", None)  # the hub's own PostgreSQL
        env.pop(ENV_EXCHANGE, None)
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [AUTOGRADER, "hub", "--port", str(self.port), "--participants", str(self.participants)]
                + ["--exchange", str(self.exchange), "--cull-idle", str(CULL_IDLE_S)],
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


@pytest.fixture(scope="module")
def hub():
    running = Hub()
    try:
        running.start()
        yield running
    finally:
        running.cleanup()


@pytest.fixture(scope="module")
def spawned(hub):
    results: dict[str, object] = {}
    threads = [threading.Thread(target=spawn_and_wait, args=(hub, name, results)) for name in (hub.a, hub.b)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_learners_sign_in_and_get_their_own_server(hub, spawned):
    for name in (hub.a, hub.b):
        signed, status, elapsed, assignments, lab = spawned[name]
        assert signed.status_code == 200, signed.text[:500]
        assert status is not None and status.status_code == 200, (status, hub.log.read_text()[-3000:])
        print(f"{name}: server answered through the proxy {elapsed:.1f} s after the spawn request")
        # nbgrader's assignment list is on in hub servers, with the course's exchange.
        assert assignments.status_code == 200 and assignments.json()["success"], assignments.text[:500]
        config = re.search(r'<script id="jupyter-config-data" type="application/json">(.*?)</script>', lab.text, re.S)
        disabled = set(json.loads(config.group(1))["disabledExtensions"]) if config else None
        assert disabled is not None and "@jupyter/nbgrader:formgrader" in disabled
        assert not disabled & {"@jupyter/nbgrader:assignment-list", "@jupyter/nbgrader:menu"}
        pid = server_pid(name)
        assert pid is not None
        account = pwd.getpwnam(name)
        assert Path(f"/proc/{pid}").stat().st_uid == account.pw_uid
        home = Path(account.pw_dir)
        assert home.stat().st_mode & 0o777 == 0o700
        assert (home / "workspace" / "START_HERE.ipynb").stat().st_uid == account.pw_uid
        assert (home / ".course-database.env").stat().st_mode & 0o777 == 0o600


def test_a_kernel_runs_as_the_learner_with_the_course_packages(hub, spawned):
    """The lab starts a Python kernel (the learners' interpreter): code runs in it as the learner, with the
    learner's own database URL and the course's packages."""
    from jupyter_client import BlockingKernelClient

    with httpx.Client(base_url=hub.url, follow_redirects=True, timeout=60) as client:
        sign_in(client, hub.b)
        client.get(f"/user/{hub.b}/lab")
        headers = server_xsrf(client, hub.b)
        started = client.post(f"/user/{hub.b}/api/kernels", json={"name": "python3"}, headers=headers)
        assert started.status_code == 201, started.text[:500]
        kernel = started.json()["id"]
        try:
            home = Path(pwd.getpwnam(hub.b).pw_dir)
            connection = home / ".local" / "share" / "jupyter" / "runtime" / f"kernel-{kernel}.json"
            deadline = time.monotonic() + 30
            while not connection.exists() and time.monotonic() < deadline:
                time.sleep(0.2)
            kc = BlockingKernelClient(connection_file=str(connection))
            kc.load_connection_file()
            kc.start_channels()
            try:
                kc.wait_for_ready(timeout=60)
                code = "import os, autograder.lesson as l; print(os.getuid(), l.owner_prefix(), sep=',')"
                outputs: list[str] = []
                reply = kc.execute_interactive(
                    code, timeout=60, output_hook=lambda m: outputs.append(m["content"].get("text", ""))
                )
            finally:
                kc.stop_channels()
        finally:
            client.delete(f"/user/{hub.b}/api/kernels/{kernel}", headers=headers)
    assert reply["content"]["status"] == "ok", reply["content"]
    assert "".join(outputs).strip() == f"{pwd.getpwnam(hub.b).pw_uid},l_{hub.b}"


def test_a_wrong_password_and_an_unlisted_name_are_refused(hub, spawned):
    with httpx.Client(base_url=hub.url, timeout=30) as client:
        client.get("/hub/login")
        for name, password in ((hub.a, "not-the-password"), ("htstranger", PASSWORD)):
            reply = client.post(
                "/hub/login", data={"username": name, "password": password, "_xsrf": client.cookies["_xsrf"]}
            )
            assert reply.status_code == 403, (name, reply.status_code)


def test_a_learner_cannot_reach_another_learner_or_the_course_secrets(hub, spawned):
    a, b = hub.a, hub.b
    python = str(interpreter.learner_python(Path(sys.executable).parent))
    secrets_dir = hub.hub_dir / "secrets"
    for path in (
        f"/home/{b}",
        f"/home/{b}/.course-database.env",
        f"/home/{b}/workspace/START_HERE.ipynb",
        str(ROOT / "tests"),
        str(ROOT / "solutions"),
        str(ROOT / "solutions" / "00_foundations" / "00_foundations.ipynb"),
        str(ROOT / ".git" / "HEAD"),
        str(hub.state),
        str(secrets_dir / "jupyterhub.sqlite"),
        str(secrets_dir / "jupyterhub_cookie_secret"),
        str(secrets_dir / "pg.password"),
        str(secrets_dir / "database.secret"),
        str(secrets_dir / "passwords.dbm"),
    ):
        listing, reading = as_user(a, "ls", path), as_user(a, "cat", path)
        assert listing.returncode != 0 and "Permission denied" in listing.stderr, (path, listing)
        assert reading.returncode != 0 and "Permission denied" in reading.stderr, (path, reading)
    # Their own credentials are theirs to read; the release is readable.
    own = as_user(a, "cat", f"/home/{a}/.course-database.env")
    assert own.returncode == 0 and f"COURSE_DB_PREFIX=l_{a}" in own.stdout
    assert as_user(a, "ls", str(ROOT / "notebooks")).returncode == 0

    # B runs a lesson's first cell from a terminal (no DATABASE_URL: the credentials file is found).
    made = as_user(b, python, "-c", "from autograder import lesson; print(lesson.setup('00_foundations').name)")
    assert made.returncode == 0, made.stderr[-2000:]
    b_database = made.stdout.strip().splitlines()[-1]
    assert b_database == f"l_{b}__lesson_00_foundations"

    probe = (
        "import asyncio, sys, asyncpg\n"
        "from autograder.db import admin, url\n"
        "async def main(user, database):\n"
        "    params = admin.asyncpg_params(url.configured_url().set(database=database))\n"
        "    if user:\n"
        "        params.update(user=user, password='a guess')\n"
        "    try:\n"
        "        conn = await asyncpg.connect(**params)\n"
        "    except Exception as exc:\n"
        "        print(type(exc).__name__, exc); return\n"
        "    print('CONNECTED'); await conn.close()\n"
        "asyncio.run(main(sys.argv[1], sys.argv[2]))\n"
    )
    into_b = as_user(a, python, "-c", probe, "", b_database)  # A's own credentials, B's database
    assert "permission denied for database" in into_b.stdout, into_b
    as_superuser = as_user(a, python, "-c", probe, "postgres", "postgres")  # the superuser, any password
    assert "CONNECTED" not in as_superuser.stdout and "authentication failed" in as_superuser.stdout, as_superuser


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


def test_an_idle_server_is_culled_and_the_learners_work_and_database_survive(hub, spawned):
    a = hub.a
    python = str(interpreter.learner_python(Path(sys.executable).parent))
    wrote = as_user(a, "sh", "-c", "echo mine > ~/workspace/marker.txt")
    assert wrote.returncode == 0, wrote.stderr
    kept = as_user(a, python, "-c", KEEP, "write")
    assert kept.returncode == 0 and kept.stdout.strip() == "mine", kept.stderr[-2000:]

    deadline = time.monotonic() + CULL_IDLE_S * 2 + 30
    while server_pid(a) is not None and time.monotonic() < deadline:
        time.sleep(1)
    assert server_pid(a) is None, "the idle culler did not stop the server"
    assert f"Culling server {a}" in hub.log.read_text()

    results: dict[str, object] = {}
    spawn_and_wait(hub, a, results)  # signs in again (the password chosen at first sign-in) and respawns
    _, status, elapsed, _, _ = results[a]
    assert status is not None and status.status_code == 200, hub.log.read_text()[-3000:]
    print(f"{a}: respawned after the cull in {elapsed:.1f} s")
    home = Path(pwd.getpwnam(a).pw_dir)
    assert (home / "workspace" / "marker.txt").read_text() == "mine\n"
    again = as_user(a, python, "-c", KEEP, "read")
    assert again.returncode == 0 and again.stdout.strip() == "mine", again.stderr[-2000:]


def learner_action(hub: Hub, name: str, action: str) -> dict:
    """What the assignment list does in the learner's lab: `list`, `submit`, `fetch_feedback` (HTTP, as them)."""
    spawn_and_wait(hub, name, {})  # (the idle culler may have stopped it: started again, as a learner would)
    with httpx.Client(base_url=hub.url, follow_redirects=True, timeout=120) as client:
        sign_in(client, name)
        client.get(f"/user/{name}/lab")
        headers = server_xsrf(client, name)
        if action == "list":
            reply = client.get(f"/user/{name}/assignments", params={"course_id": COURSE_ID}, headers=headers)
        else:
            form = {"course_id": COURSE_ID, "assignment_id": HAND_IN}
            reply = client.post(f"/user/{name}/assignments/{action}", data=form, headers=headers)
    assert reply.status_code == 200, reply.text[:1000]
    answer = reply.json()
    assert answer["success"], answer
    return answer


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
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, (command, done.stdout[-2000:], done.stderr[-3000:])
    return done.stdout + done.stderr


def test_hand_in_collect_grade_and_feedback_through_the_exchange(hub, spawned):
    """Release -> the learner's lesson is listed as theirs (their workspace) -> submit -> collect ->
    `autograder grade --feedback` -> release feedback -> the learner fetches verdicts, never hidden tests."""
    a = hub.a
    nbgrader = str(Path(sys.executable).with_name("nbgrader"))
    instructor(hub, nbgrader, "release_assignment", HAND_IN, "--force")
    listed = learner_action(hub, a, "list")["value"]
    assert [(x["assignment_id"], x["status"]) for x in listed] == [(HAND_IN, "fetched")]  # ~/workspace/<lesson>

    submitted = learner_action(hub, a, "submit")["value"]
    assert any(x["status"] == "submitted" and x["student_id"] == a for x in submitted), submitted
    instructor(hub, nbgrader, "collect", HAND_IN)
    course = hub.base / "course"
    assert (course / "submitted" / a / HAND_IN / f"{HAND_IN}.ipynb").exists()

    instructor(hub, AUTOGRADER, "grade", "--course", str(course), "--lesson", HAND_IN, "--feedback")
    scores = (course / "exports" / "scores.csv").read_text()
    assert f"{a},{HAND_IN},0.0,8.0,graded" in scores  # the released lesson, unsolved: every test fails

    instructor(hub, nbgrader, "release_feedback", HAND_IN)
    learner_action(hub, a, "fetch_feedback")
    fetched = list((Path(pwd.getpwnam(a).pw_dir) / "workspace" / HAND_IN / "feedback").glob(f"*/{HAND_IN}.html"))
    assert len(fetched) == 1
    feedback = fetched[0].read_text()
    assert "FAILED — " in feedback and "HIDDEN TESTS" not in feedback
    assert fetched[0].stat().st_uid == pwd.getpwnam(a).pw_uid


def test_the_hub_stops_cleanly_and_keeps_learners_work(hub, spawned):
    hub.stop()
    assert hub.proc is not None and hub.proc.returncode == 0, hub.log.read_text()[-3000:]
    assert server_pid(hub.a) is None and server_pid(hub.b) is None
    assert provision.hub_cluster(hub.hub_dir).status() is None
    assert (Path(pwd.getpwnam(hub.a).pw_dir) / "workspace" / "START_HERE.ipynb").exists()
    assert "idle-culler" in hub.log.read_text()
