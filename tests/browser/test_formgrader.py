"""An instructor grades a class with `autograder grade` and reads the grades in formgrader, in a real browser.

The course folder has two submissions of lesson 00: alice hands in the solution
(8 / 8), bob the untouched release (0 / 8). `autograder grade --course DIR -j 2`
writes DIR/.course/gradebook.db; `autograder instructor --course DIR` opens
JupyterLab on DIR, and the instructor goes Nbgrader menu -> Formgrader and
clicks through Manage Assignments, the lesson's submissions, Manage Students and
Manual Grading, reading what each page shows.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal

import pytest
from playwright.sync_api import expect

from tests.browser.support import assert_real_screenshot, lab_server
from tests.cli_support import (
    REPO,
    _private_tmp,
    cli_env,
    free_port,
    postgres_pids_for,
    run_cli,
)

LESSON = "00_foundations"
STUDENTS = {"alice": ("solutions", "8 / 8"), "bob": ("notebooks", "0 / 8")}


def make_course():
    """A course folder in nbgrader's layout: submitted/<student>/<lesson>/<lesson>.ipynb."""
    root = _private_tmp("course-browser-grade-")
    root.chmod(0o755)  # the sandboxed grader runs as another user
    for student, (source, _) in STUDENTS.items():
        folder = root / "submitted" / student / LESSON
        folder.mkdir(parents=True)
        shutil.copy(REPO / source / LESSON / f"{LESSON}.ipynb", folder)
    return root


def stop_grading_cluster(state, monkeypatch) -> None:
    """`autograder grade` stops its cluster itself; this is for a run cut short, and removes its socket folder."""
    from autograder.grading.databases import grading_cluster

    monkeypatch.setenv("COURSE_DATA_DIR", str(state))
    cluster = grading_cluster()
    with contextlib.suppress(Exception):
        cluster.stop()
    for pid in postgres_pids_for(cluster.data_dir):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    socket_dir = cluster.fixed_socket_dir
    if socket_dir is not None and socket_dir.is_dir() and not any(socket_dir.iterdir()):
        socket_dir.rmdir()  # under /run when grading as root: not removed by the cluster's own stop


def row(frame, table, key: str):
    """The table's row with a cell reading exactly `key`."""
    return table.locator("tbody tr").filter(has=frame.locator("td", has_text=re.compile(f"^{re.escape(key)}$")))


@pytest.mark.timeout(150)
def test_formgrader_shows_the_graded_class(page, course_state, tmp_path, monkeypatch):
    course = make_course()
    instructor = None
    try:
        # JupyterLab starts while the class is graded (formgrader reads the gradebook per request).
        instructor = lab_server("instructor", course_state, free_port(), tmp_path, "--course", str(course))
        graded = run_cli("grade", "--course", str(course), "-j", "2", env=cli_env(course_state), timeout=120)
        assert graded.returncode == 0, graded.stdout + graded.stderr
        assert (course / ".course" / "gradebook.db").is_file()
        instructor.wait_ready()

        page.goto(instructor.url("/lab"))
        # JupyterLab opened on the course folder.
        expect(page.locator(".jp-DirListing-item", has_text="submitted")).to_be_visible()
        page.locator(".lm-MenuBar-item", has_text="Nbgrader").click()
        page.get_by_role("menuitem", name="Formgrader", exact=True).click()
        expect(page.locator(".lm-TabBar-tab", has_text="Formgrader")).to_be_visible()
        formgrader = page.frame_locator("#formgrader iframe")

        # Manage Assignments: the lesson, with two submissions.
        expect(formgrader.get_by_role("heading", name="Manage Assignments")).to_be_visible()
        assignments = formgrader.locator("table")
        lesson = row(formgrader, assignments, LESSON)
        expect(lesson).to_have_count(1)
        expect(lesson.locator("td.num-submissions")).to_have_text("2")
        page.screenshot(path=tmp_path / "formgrader-assignments.png")

        # Its submissions: each student graded, with the score.
        lesson.locator("td.num-submissions a").click()
        expect(formgrader.get_by_role("heading", name="Manage Submissions")).to_be_visible()
        submissions = formgrader.locator("table")
        expect(submissions.locator("tbody tr")).to_have_count(len(STUDENTS))
        for student, (_, score) in STUDENTS.items():
            line = row(formgrader, submissions, student)
            expect(line.locator("td.status")).to_have_text("graded")
            expect(line.locator("td.score")).to_have_text(score)
        page.screenshot(path=tmp_path / "formgrader-submissions.png")

        # Manage Students: every student with the overall score.
        formgrader.locator("a", has_text="Manage Students").click()
        expect(formgrader.get_by_role("heading", name="Manage Students")).to_be_visible()
        students = formgrader.locator("table")
        expect(students.locator("tbody tr")).to_have_count(len(STUDENTS))
        for student, (_, score) in STUDENTS.items():
            expect(row(formgrader, students, student).locator("td.score")).to_have_text(score)
        page.screenshot(path=tmp_path / "formgrader-students.png")

        # A student's page: the lesson's score.
        row(formgrader, students, "alice").locator("td.name a").click()
        expect(formgrader.locator(".breadcrumb")).to_contain_text(re.compile(r"Students\s*alice"))
        expect(row(formgrader, formgrader.locator("table"), LESSON).locator("td.score")).to_have_text("8 / 8")

        # Manual Grading (the gradebook): the lesson's average over two submissions.
        formgrader.locator("a", has_text="Manual Grading").click()
        expect(formgrader.get_by_role("heading", name="Manual Grading")).to_be_visible()
        gradebook = row(formgrader, formgrader.locator("table"), LESSON)
        expect(gradebook.locator("td.num-submissions")).to_have_text("2")
        expect(gradebook.locator("td.score")).to_have_text("4 / 8")
        page.screenshot(path=tmp_path / "formgrader-gradebook.png")

        for name in ("assignments", "submissions", "students", "gradebook"):
            assert_real_screenshot(tmp_path / f"formgrader-{name}.png", min_colours=50, max_dominant=0.9)
        assert "Traceback" not in instructor.output(), instructor.output()
    finally:
        if instructor is not None:
            instructor.close()
        stop_grading_cluster(course_state, monkeypatch)
        shutil.rmtree(course, ignore_errors=True)
