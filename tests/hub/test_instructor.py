"""An instructor in a real workshop hub (`autograder hub`, as `make hub` runs it) gets the instructor view.

The instructor and a learner sign in and spawn at once. The instructor's server runs as their own account
(a member of `course-instructors`, never root) on the instructors' course folder with formgrader and Create
Assignment on; formgrader answers on its first load (the gradebook is made then: nbgrader runs `alembic` by
name) and lists the lessons. Formgrader's own API generates and releases a lesson into the hub's exchange,
and the learner's assignment list shows it; the learner submits; formgrader collects and autogrades; the
operator's sandboxed `autograder grade --feedback` (root) writes feedback into the same folder, formgrader
releases it and the learner fetches verdicts. From the accounts themselves (`runuser`): the learner still
cannot read `solutions/`, the instructors' folder or its gradebook; the instructor reads `solutions/`, writes
only in their folder, and cannot read the hub's state (its secrets, the databases).
"""

from __future__ import annotations

import contextlib
import grp
import json
import os
import pwd
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from autograder.course.layout import COURSE_ID, lessons
from autograder.hub import instructors
from autograder.paths import project_root
from tests.hub.support import (
    AUTOGRADER,
    Hub,
    as_user,
    needs_root,
    running_hub,
    server_pid,
    server_xsrf,
    sign_in,
    spawn_all,
)

pytestmark = needs_root

ROOT = project_root()
LESSON = "00_foundations"


@pytest.fixture(scope="module")
def hub():
    yield from running_hub(cull_idle=0)


@pytest.fixture(scope="module")
def spawned(hub):
    results = spawn_all(hub, (hub.instructor, hub.a))
    for name in (hub.instructor, hub.a):
        _, status, _, _, _ = results[name]
        assert status is not None and status.status_code == 200, (name, status, hub.log.read_text()[-3000:])
    return results


def page_config(lab: httpx.Response) -> dict:
    found = re.search(r'<script id="jupyter-config-data" type="application/json">(.*?)</script>', lab.text, re.S)
    assert found, lab.text[:500]
    return json.loads(found.group(1))


@contextlib.contextmanager
def signed_in(hub: Hub, name: str) -> Iterator[tuple[httpx.Client, dict[str, str]]]:
    """A browser-like session of `name` on their server, with the header its API's POSTs need."""
    with httpx.Client(base_url=hub.url, follow_redirects=True, timeout=120) as client:
        sign_in(client, name)
        client.get(f"/user/{name}/lab")
        yield client, server_xsrf(client, name)


def test_the_instructor_gets_formgrader_on_the_course_as_their_own_account(hub, spawned):
    name = hub.instructor
    _, _, elapsed, _, lab = spawned[name]
    print(f"{name}: instructor server answered {elapsed:.1f} s after the spawn request")
    config = page_config(lab)
    disabled = set(config["disabledExtensions"])
    assert not disabled & {"@jupyter/nbgrader:formgrader", "@jupyter/nbgrader:create-assignment"}, disabled
    # The instructors' course folder, as `make instructor --course DIR` opens one.
    assert Path(config["serverRoot"]) == instructors.course_folder(hub.state)

    pid = server_pid(name)
    assert pid is not None
    account = pwd.getpwnam(name)
    status = Path(f"/proc/{pid}/status").read_text()
    uids = re.search(r"^Uid:\s+(.*)$", status, re.M)
    groups = re.search(r"^Groups:\s*(.*)$", status, re.M)
    assert uids is not None and set(uids.group(1).split()) == {str(account.pw_uid)}  # never root
    assert groups is not None and str(grp.getgrnam(instructors.GROUP).gr_gid) in groups.group(1).split()

    with signed_in(hub, name) as (client, headers):
        # formgrader's first load: the gradebook is made now (alembic found), every lesson is listed.
        reply = client.get(f"/user/{name}/formgrader/api/assignments", headers=headers)
        assert reply.status_code == 200, (reply.status_code, reply.text[:1000], hub.log.read_text()[-3000:])
        listed = {a["name"] for a in reply.json()}
        assert set(lessons()) <= listed, listed
        page = client.get(f"/user/{name}/formgrader")
        assert page.status_code == 200, page.text[:500]
    gradebook = instructors.gradebook(hub.state)
    assert gradebook.exists() and gradebook.stat().st_uid == account.pw_uid


def post_ok(client: httpx.Client, url: str, headers: dict[str, str], **form: str) -> dict:
    """A POST to formgrader's or the assignment list's API that must succeed (nbgrader's log if not)."""
    reply = client.post(url, headers=headers, data=form or None)
    assert reply.status_code == 200, (url, reply.status_code, reply.text[-3000:])
    answer = reply.json()
    assert answer["success"], (url, (answer.get("log") or answer.get("value") or str(answer))[-6000:])
    return answer


def learner_of(name: str, *command: str) -> str | None:
    """The error `command` run as `name` fails with (None: it worked)."""
    done = as_user(name, *command)
    return None if done.returncode == 0 else done.stderr


def test_formgrader_releases_a_lesson_into_the_hubs_exchange_and_the_learner_sees_it(hub, spawned):
    name = hub.instructor
    with signed_in(hub, name) as (client, headers):
        # Generate (the lesson into the gradebook and the folder's release), then Release, as in formgrader.
        for step in ("assign", "release"):
            post_ok(client, f"/user/{name}/formgrader/api/assignment/{LESSON}/{step}", headers)
    released = hub.exchange / COURSE_ID / "outbound" / LESSON / f"{LESSON}.ipynb"
    assert released.exists()
    assert released.stat().st_uid == pwd.getpwnam(name).pw_uid

    a = hub.a
    with signed_in(hub, a) as (learner, headers):
        listing = learner.get(f"/user/{a}/assignments", params={"course_id": COURSE_ID}, headers=headers)
    assert listing.status_code == 200 and listing.json()["success"], listing.text[:1000]
    assert LESSON in {x["assignment_id"] for x in listing.json()["value"]}


def test_collect_autograde_and_feedback_through_formgrader(hub, spawned):
    """The learner submits; formgrader's own buttons collect, autograde (a kernel of the instructor's server,
    as the instructor) and release feedback; the learner fetches verdicts, never hidden tests."""
    a, name = hub.a, hub.instructor
    course = instructors.course_folder(hub.state)
    form = {"course_id": COURSE_ID, "assignment_id": LESSON}
    with signed_in(hub, a) as (learner, headers):
        post_ok(learner, f"/user/{a}/assignments/submit", headers, **form)
    with signed_in(hub, name) as (client, headers):
        api = f"/user/{name}/formgrader/api"
        for step in (f"assignment/{LESSON}/collect", f"submission/{LESSON}/{a}/autograde"):
            post_ok(client, f"{api}/{step}", headers)
        graded = client.get(f"{api}/submission/{LESSON}/{a}", headers=headers).json()
        assert (graded["score"], graded["max_score"]) == (0, 8), graded  # the release, unsolved
        # Sandboxed grading with feedback (ours: verdicts only), as the README has the operator run it (root),
        # on the instructors' course folder; formgrader releases the feedback.
        graded_again = subprocess.run(
            [AUTOGRADER, "grade", "--course", str(course), "--lesson", LESSON, "--feedback"],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
            env={**os.environ, "COURSE_EXCHANGE": str(hub.exchange)},
        )
        assert graded_again.returncode == 0, graded_again.stderr[-3000:]
        post_ok(client, f"{api}/assignment/{LESSON}/release_feedback", headers)
    with signed_in(hub, a) as (learner, headers):
        post_ok(learner, f"/user/{a}/assignments/fetch_feedback", headers, **form)
    home = Path(pwd.getpwnam(a).pw_dir)
    feedback = list((home / "workspace" / LESSON / "feedback").glob(f"*/{LESSON}.html"))
    assert len(feedback) == 1
    text = feedback[0].read_text()
    assert "FAILED — " in text and "HIDDEN TESTS" not in text
    assert (course / "submitted" / a / LESSON / f"{LESSON}.ipynb").stat().st_uid == pwd.getpwnam(name).pw_uid


def test_learners_still_cannot_read_the_course_and_instructors_cannot_read_the_hubs_secrets(hub, spawned):
    a, name = hub.a, hub.instructor
    course = instructors.course_folder(hub.state)
    source = Path("solutions") / LESSON / f"{LESSON}.ipynb"
    for path in (ROOT / "solutions", ROOT / source, course, course / source, instructors.gradebook(hub.state)):
        error = learner_of(a, "cat" if path.suffix else "ls", str(path))
        assert error is not None and "Permission denied" in error, (path, error)
    # The instructor reads the lessons' sources and writes in the instructors' folder, not in the checkout.
    assert learner_of(name, "cat", str(ROOT / source)) is None
    assert learner_of(name, "touch", str(course / ".course" / "probe")) is None
    assert learner_of(name, "touch", str(ROOT / "solutions" / "probe")) is not None
    # ... but nothing of the hub's own state: its secrets and databases.
    for path in (hub.state, hub.hub_dir / "secrets", hub.hub_dir / "secrets" / "database.secret"):
        error = learner_of(name, "cat" if path.suffix else "ls", str(path))
        assert error is not None and "Permission denied" in error, (path, error)
