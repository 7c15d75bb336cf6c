"""What "Check my work" shows (autograder/labcheck/report.py): titles, points, messages, nothing else."""

from __future__ import annotations

import json
from pathlib import Path

from autograder.grading import results
from autograder.grading.results import SubmissionResult
from autograder.labcheck.report import exercise_titles, lesson_of, report_for
from tests.cli_support import REPO

LESSON = "01_session_dependency"
RELEASE = REPO / "notebooks" / LESSON / f"{LESSON}.ipynb"


def test_the_lesson_is_the_file_name_or_else_its_folder():
    known = [LESSON, "02_repositories"]
    assert lesson_of(Path(f"/w/anywhere/{LESSON}.ipynb"), known) == LESSON
    assert lesson_of(Path(f"/w/{LESSON}/{LESSON}-Copy1.ipynb"), known) == LESSON
    assert lesson_of(Path("/w/mine/scratch.ipynb"), known) is None


def test_each_graded_cell_is_titled_by_the_heading_above_it():
    titles = exercise_titles(RELEASE)
    assert set(titles) == {"test_get_db", "test_tags_app"}
    assert titles["test_get_db"].startswith("Exercise 1") and titles["test_tags_app"].startswith("Exercise 2")


def test_a_notebook_that_is_not_json_has_no_titles_and_the_ids_stand_in(tmp_path):
    broken = tmp_path / f"{LESSON}.ipynb"
    broken.write_text('{"cells": [')
    assert exercise_titles(broken) == {}
    result = SubmissionResult(
        "submission",
        LESSON,
        "error",
        "not graded: the notebook is not valid JSON",
        0.0,
        7.0,
        [results.TestResult("test_get_db", 0.0, 4.0, "error", "not graded: the notebook is not valid JSON")],
    )
    report = report_for(result, broken, f"{LESSON}/{LESSON}.ipynb", 1.234)
    assert report.exercises[0].title == "test_get_db" and not report.exercises[0].passed
    assert report.seconds == 1.23 and report.verdict.startswith("not graded")


def test_passed_means_the_test_passed_with_all_its_points():
    result = SubmissionResult(
        "submission",
        LESSON,
        "graded",
        "graded",
        4.0,
        7.0,
        [
            results.TestResult("test_get_db", 4.0, 4.0, "pass"),
            results.TestResult("test_tags_app", 1.0, 3.0, "pass", "partly"),
        ],
    )
    report = report_for(result, RELEASE, "x.ipynb", 0.0)
    assert [(e.passed, e.points, e.max_points) for e in report.exercises] == [(True, 4.0, 4.0), (False, 1.0, 3.0)]
    assert json.loads(json.dumps(report.to_json()))["exercises"][1]["message"] == "partly"
