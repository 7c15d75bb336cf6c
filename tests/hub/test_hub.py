"""A real workshop hub (`autograder hub`, as `make hub` runs it) with two learners and an instructor.

Learners sign in through the login form (passwords set at first sign-in), their servers spawn as
their own accounts and answer through the proxy; then, from a learner's account (`runuser`), the
test tries what a learner in a terminal could: another learner's home and database, the course's
solutions and history, the hub's secrets. The hub is then stopped as Ctrl-C stops it.
"""

from __future__ import annotations

import json
import pwd
import re
import sys
import time
from pathlib import Path

import httpx
import pytest

from autograder.course.layout import COURSE_ID
from autograder.hub import interpreter, provision
from autograder.paths import project_root
from tests.hub.support import (
    AUTOGRADER,
    KEEP,
    PASSWORD,
    Hub,
    as_user,
    instructor,
    needs_root,
    running_hub,
    server_pid,
    server_xsrf,
    sign_in,
    spawn_all,
    spawn_and_wait,
)

pytestmark = needs_root

ROOT = project_root()
# Short, so that the test sees a cull: a server is culled 15-23 s after its last reported activity
# (its start: neither JupyterHub nor the server report the test's requests that fast). The tests before
# the cull's need no server after their first seconds; those after it start the server again if needed.
CULL_IDLE_S = 15

HAND_IN = "00_foundations"


@pytest.fixture(scope="module")
def hub():
    yield from running_hub(cull_idle=CULL_IDLE_S)


@pytest.fixture(scope="module")
def spawned(hub):
    return spawn_all(hub, (hub.a, hub.b))


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


def test_check_my_work_in_a_learners_server_is_graded_by_the_course_check_service(hub, spawned):
    """The learner's server holds the release only; its Check my work goes to the hub's check service, which
    identifies the learner by their server's token and answers with verdicts, never test code."""
    b, lesson = hub.b, "01_session_dependency"
    spawn_and_wait(hub, b, {})
    with httpx.Client(base_url=hub.url, follow_redirects=True, timeout=300) as client:
        sign_in(client, b)
        client.get(f"/user/{b}/lab")
        reply = client.post(
            f"/user/{b}/autograder/check", json={"path": f"{lesson}/{lesson}.ipynb"}, headers=server_xsrf(client, b)
        )
    assert reply.status_code == 200, reply.text[:1000]
    answer = reply.json()
    assert answer["ok"], (answer, hub.log.read_text()[-3000:])
    report = answer["report"]
    assert (report["score"], report["max_score"]) == (0, 7), report  # the release, unsolved
    assert all(not e["passed"] for e in report["exercises"]) and "HIDDEN TESTS" not in reply.text
    assert f"check of {lesson}/{lesson}.ipynb for {b}" in hub.log.read_text()  # the service knew whose check

    # Without a token the hub vouches for, the service grades nothing.
    service = httpx.post(
        f"http://127.0.0.1:{hub.check_port()}/services/course-check/check",
        json={"path": "x/x.ipynb", "notebook": "{}"},
        headers={"Authorization": "token not-a-hub-token"},
        timeout=30,
    )
    assert service.status_code == 403


def test_the_hub_stops_cleanly_and_keeps_learners_work(hub, spawned):
    hub.stop()
    assert hub.proc is not None and hub.proc.returncode == 0, hub.log.read_text()[-3000:]
    assert server_pid(hub.a) is None and server_pid(hub.b) is None
    assert provision.hub_cluster(hub.hub_dir).status() is None
    assert (Path(pwd.getpwnam(hub.a).pw_dir) / "workspace" / "START_HERE.ipynb").exists()
    assert "idle-culler" in hub.log.read_text()
