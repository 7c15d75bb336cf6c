"""prepare: nbgrader's sanitize on a real course; a file that is no notebook gets its verdict here."""

from __future__ import annotations

import json
from types import SimpleNamespace

import nbformat
import pytest

from autograder.grading import gradebook
from autograder.grading.job import SubmissionJob
from autograder.grading.layout import RunPaths
from autograder.grading.options import GradeOptions
from autograder.grading.stages.prepare import prepare
from autograder.paths import project_root
from tests.support.submissions import submit

LESSON = "00_foundations"
WITH_DEMOS = "05_savepoints"  # a lesson with cells marked as demonstrations


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    root = tmp_path_factory.mktemp("prepare-course")
    paths = RunPaths.for_this_process(root)
    api = gradebook.api_for_run(paths)
    gradebook.ensure_assignments(api, paths.root, {LESSON, WITH_DEMOS})
    return paths, SimpleNamespace(api=api, options=GradeOptions())  # prepare reads run.api and run.options


def _job(paths: RunPaths, student: str, lesson: str = LESSON) -> SubmissionJob:
    return SubmissionJob(student, lesson, paths.root / "submitted" / student / lesson, checksum="c")


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


@pytest.mark.parametrize("run_demonstrations", [False, True])
def test_demonstrations_are_left_out_unless_asked_for(course, run_demonstrations):
    paths, run = course
    source = project_root() / "solutions" / WITH_DEMOS / f"{WITH_DEMOS}.ipynb"
    student = f"demo-{run_demonstrations}"
    submit(paths.root, student, WITH_DEMOS, nbformat.read(source, as_version=4))
    options = GradeOptions(run_demonstrations=run_demonstrations)
    job = prepare(_job(paths, student, WITH_DEMOS), SimpleNamespace(api=run.api, options=options))
    cells = json.loads(job.sanitized.read_text())["cells"]
    demos = {i for i, c in enumerate(cells) if (c["metadata"].get("autograder") or {}).get("demo")}
    ran = {i for i, _ in job.cells}
    assert demos, "the lesson marks demonstrations"
    assert (demos <= ran) if run_demonstrations else not (demos & ran)
    assert job.graded_cells <= ran
