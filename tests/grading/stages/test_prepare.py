"""prepare: nbgrader's sanitize on a real course; a file that is no notebook gets its verdict here."""

from __future__ import annotations

import json
from types import SimpleNamespace

import nbformat
import pytest

from autograder.grading import gradebook
from autograder.grading.job import SubmissionJob
from autograder.grading.layout import RunPaths
from autograder.grading.stages.prepare import prepare
from autograder.paths import project_root
from tests.support.submissions import submit

LESSON = "00_foundations"


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    root = tmp_path_factory.mktemp("prepare-course")
    paths = RunPaths.for_this_process(root)
    api = gradebook.api_for_run(paths)
    gradebook.ensure_assignments(api, paths.root, {LESSON})
    return paths, SimpleNamespace(api=api)  # prepare reads run.api only


def _job(paths: RunPaths, student: str) -> SubmissionJob:
    return SubmissionJob(student, LESSON, paths.root / "submitted" / student / LESSON, checksum="c")


def test_a_notebook_is_sanitized_into_staging_with_its_cells_to_run(course):
    paths, run = course
    solution = nbformat.read(project_root() / "solutions" / LESSON / f"{LESSON}.ipynb", as_version=4)
    submit(paths.root, "ada", LESSON, solution)
    job = prepare(_job(paths, "ada"), run)
    assert job.result is None
    assert job.sanitized == paths.staged_autograded / "ada" / LESSON / f"{LESSON}.ipynb"
    cells = json.loads(job.sanitized.read_text())["cells"]
    tests = {
        i
        for i, c in enumerate(cells)
        if c.get("metadata", {}).get("nbgrader", {}).get("grade") and c["cell_type"] == "code"
    }
    assert job.graded_cells == tests and len(tests) == 3
    assert [i for i, _ in job.cells] == [i for i, c in enumerate(cells) if c["cell_type"] == "code"]


def test_a_file_that_is_not_json_is_not_graded_with_one_reason_per_test(course):
    paths, run = course
    submit(paths.root, "eve", LESSON, "{")
    job = prepare(_job(paths, "eve"), run)
    assert job.sanitized is None and job.result is not None
    assert job.result.status == "error" and job.result.verdict.startswith("not graded: the notebook is not valid JSON")
    assert job.result.max_score == 8.0 and job.result.score == 0
    assert {t.status for t in job.result.tests} == {"error"} and len(job.result.tests) == 3
