"""The Python API under the grading commands: grade_notebook, grade_course."""

from __future__ import annotations

import dataclasses
import os
import threading

import pytest

from autograder.errors import SetupError
from autograder.grading import exporters
from autograder.grading.api import GradeOptions, grade_course, grade_notebook
from autograder.paths import project_root
from tests.support.submissions import submit

LESSON = "00_foundations"
SOLUTION = project_root() / "solutions" / LESSON / f"{LESSON}.ipynb"


def test_grade_notebook_gives_a_solution_full_marks_and_leaves_the_options_alone(tmp_path):
    options = GradeOptions(workers=3, lessons=["other"])
    before = dataclasses.replace(options)
    result = grade_notebook(SOLUTION, LESSON, options)
    assert result.status == "graded" and result.score == result.max_score == 8.0
    assert [t.status for t in result.tests] == ["pass"] * 3
    assert exporters.exercism(result)["status"] == "pass"
    assert options == before


def test_grade_notebook_gives_a_broken_file_a_one_sentence_error_verdict(tmp_path):
    broken = tmp_path / "mine.ipynb"
    broken.write_text('{"cells": [')
    result = grade_notebook(broken, LESSON)
    assert result.status == "error" and result.score == 0 and result.max_score == 8.0
    assert result.verdict.startswith("not graded: the notebook is not valid JSON (JSONDecodeError")
    assert "\n" not in result.verdict


def _no_workers(root):
    (root / "submitted").mkdir()
    return grade_course(root, GradeOptions(workers=0))


@pytest.mark.parametrize(
    ("call", "says"),
    [
        (lambda tmp: grade_notebook(SOLUTION, "99_nope"), "There is no lesson '99_nope'; choose one of: "),
        (lambda tmp: grade_notebook(tmp / "missing.ipynb", LESSON), "missing.ipynb is not a file."),
        (lambda tmp: grade_course(tmp), "There is no submitted/ folder in "),
        (lambda tmp: _no_workers(tmp), "--workers must be at least 1."),
    ],
)
def test_what_a_person_can_fix_is_a_setup_error(tmp_path, call, says):
    with pytest.raises(SetupError) as error:
        call(tmp_path)
    assert says in error.value.message


def test_grade_course_never_changes_the_working_directory_and_writes_under_the_course_only(tmp_path, monkeypatch):
    course, elsewhere = tmp_path / "course", tmp_path / "elsewhere"
    elsewhere.mkdir()
    submit(course, "ada", LESSON, SOLUTION)
    monkeypatch.chdir(elsewhere)
    # Any chdir of this process (ours or nbgrader's) is seen, and so is any cwd another thread meets.
    changes: list[str] = []
    real_chdir = os.chdir
    monkeypatch.setattr(os, "chdir", lambda path: (changes.append(str(path)), real_chdir(path)))
    seen: set[str] = set()
    done = threading.Event()

    def watch():
        while not done.is_set():
            seen.add(os.getcwd())
            done.wait(0.001)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    started, progress = [], []
    try:
        report = grade_course(
            course, GradeOptions(workers=1, feedback=True), on_progress=progress.append, on_start=started.append
        )
    finally:
        done.set()
        watcher.join()
    assert changes == [] and seen == {str(elsewhere)} and os.getcwd() == str(elsewhere)
    assert started == [1] and [r.student for r in progress] == ["ada"]
    assert [r.score for r in report.results] == [8.0]
    assert list(elsewhere.iterdir()) == [], "nothing was written to the working directory"
    out = course / "exports" / LESSON / "ada"
    assert {p.name for p in out.iterdir()} == {"result.json", "results.gradescope.json", "results.exercism.json"}
    assert (course / "exports" / "scores.csv").exists()
    assert (course / "autograded" / "ada" / LESSON / f"{LESSON}.ipynb").exists()
    assert (course / "feedback" / "ada" / LESSON / f"{LESSON}.html").exists()
    assert (course / ".course" / "gradebook.db").exists()


def test_grade_notebook_releases_a_lesson_into_a_gradebook_once_and_reuses_it(tmp_path, monkeypatch):
    from nbgrader.apps import NbGraderAPI

    from autograder.grading import api

    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "state"))  # a state dir with no prepared lessons
    released: list[str] = []
    stock = NbGraderAPI.generate_assignment

    def counted(self, assignment_id, *args, **kwargs):
        released.append(assignment_id)
        return stock(self, assignment_id, *args, **kwargs)

    monkeypatch.setattr(NbGraderAPI, "generate_assignment", counted)
    first = grade_notebook(SOLUTION, LESSON)
    assert released == [LESSON] and (tmp_path / "state" / api.PREPARED_DIR / LESSON).is_dir()
    second = grade_notebook(SOLUTION, LESSON)
    assert released == [LESSON], "the second grading reused the prepared gradebook"
    assert [(t.name, t.score, t.status) for t in second.tests] == [(t.name, t.score, t.status) for t in first.tests]
    assert second.score == second.max_score == 8.0


def test_a_prepared_gradebook_that_cannot_be_used_only_costs_time(tmp_path, monkeypatch):
    from autograder.grading import api

    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "state"))
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / api.PREPARED_DIR).write_text("a file where the folder should be")
    result = grade_notebook(SOLUTION, LESSON)
    assert result.status == "graded" and result.score == result.max_score == 8.0
