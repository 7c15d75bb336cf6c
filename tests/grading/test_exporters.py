"""The export formats, field by field, against the published specifications.

Gradescope "Autograder Specifications" (results.json) and the Exercism test-runner
interface, version 3 (results.json). tests/grading/test_run.py checks the files a whole
grading run writes against the same field lists; here each rule is checked on its own.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest

from autograder.grading import exporters, redact
from autograder.grading.results import SubmissionResult
from autograder.grading.results import TestResult as Check  # not collected as a test class

LESSON = "no_such_lesson"  # no solution notebook: nothing is redacted unless a test says so

# Published field lists: every field written must be one of them, and the ones relied on must be there.
GRADESCOPE_TOP_ALLOWED = {
    "score", "execution_time", "output", "output_format", "test_output_format", "test_name_format",
    "visibility", "stdout_visibility", "extra_data", "tests", "leaderboard",
}  # fmt: skip
GRADESCOPE_TOP = {"score", "execution_time", "output", "visibility", "stdout_visibility", "tests"}
GRADESCOPE_VISIBILITY = {"visible", "hidden", "after_due_date", "after_published"}
GRADESCOPE_TEST_ALLOWED = {
    "score", "max_score", "status", "name", "name_format", "number", "output", "output_format", "tags",
    "visibility", "extra_data",
}  # fmt: skip
GRADESCOPE_TEST = {"score", "max_score", "name", "number", "output", "visibility", "status"}
EXERCISM_TOP_ALLOWED = {"version", "status", "message", "tests"}
EXERCISM_TOP = {"version", "status", "tests"}
EXERCISM_TEST_ALLOWED = {"name", "test_code", "status", "message", "output", "task_id"}
EXERCISM_TEST = {"name", "status", "test_code"}


def check_gradescope(data: dict[str, Any]) -> None:
    assert GRADESCOPE_TOP <= set(data) <= GRADESCOPE_TOP_ALLOWED, set(data) - GRADESCOPE_TOP_ALLOWED
    assert data["visibility"] in GRADESCOPE_VISIBILITY and data["stdout_visibility"] in GRADESCOPE_VISIBILITY
    assert isinstance(data["score"], float) and isinstance(data["execution_time"], float)
    for test in data["tests"]:
        assert GRADESCOPE_TEST <= set(test) <= GRADESCOPE_TEST_ALLOWED, test
        assert test["status"] in {"passed", "failed"} and test["visibility"] in GRADESCOPE_VISIBILITY
        assert isinstance(test["number"], str) and isinstance(test["output"], str)
        assert 0 <= test["score"] <= test["max_score"]


def check_exercism(data: dict[str, Any]) -> None:
    assert EXERCISM_TOP <= set(data) <= EXERCISM_TOP_ALLOWED, set(data) - EXERCISM_TOP_ALLOWED
    assert data["version"] == 3 and data["status"] in {"pass", "fail", "error"}
    if data["status"] == "error":
        assert data["message"]
    for test in data["tests"]:
        assert EXERCISM_TEST <= set(test) <= EXERCISM_TEST_ALLOWED, test
        assert test["status"] in {"pass", "fail", "error"}
        if test["status"] != "pass":
            assert test["message"]
        assert len(test.get("output", "")) <= 500


def _result(*tests: Check, status: str = "graded", verdict: str = "2 of 3 tests passed") -> SubmissionResult:
    return SubmissionResult(
        student="ada",
        lesson=LESSON,
        status=status,
        verdict=verdict,
        score=sum((t.score for t in tests), 0.0),
        max_score=sum((t.max_score for t in tests), 0.0),
        tests=list(tests),
        execution_time=1.23456,
    )


def _mixed() -> SubmissionResult:
    return _result(
        Check("test_engine", 2.0, 2.0, "pass"),
        Check("test_session", 0.0, 3.0, "fail", "AssertionError: expected 1 COMMIT, saw 2"),
        Check("test_lifespan", 0.0, 1.0, "error", "NotRun: an earlier cell failed"),
    )


# -- Gradescope


def test_gradescope_top_level_fields_and_values():
    data = exporters.gradescope(_mixed())
    check_gradescope(data)
    assert data["score"] == 2.0
    assert data["execution_time"] == 1.235  # rounded to milliseconds
    assert data["output"] == "2 of 3 tests passed"
    assert data["visibility"] == "visible" and data["stdout_visibility"] == "hidden"
    # no top-level maximum in the spec: ours goes to extra_data, with the run's status
    assert "max_score" not in data
    assert data["extra_data"] == {"max_score": 6.0, "status": "graded"}


def test_gradescope_tests_are_numbered_in_order_with_passed_or_failed():
    tests = exporters.gradescope(_mixed())["tests"]
    assert [t["name"] for t in tests] == ["test_engine", "test_session", "test_lifespan"]
    assert [t["number"] for t in tests] == ["1", "2", "3"]  # strings, as the spec's "1.1"
    assert [t["status"] for t in tests] == ["passed", "failed", "failed"]  # an error is a failed test there
    assert [(t["score"], t["max_score"]) for t in tests] == [(2.0, 2.0), (0.0, 3.0), (0.0, 1.0)]
    assert all(t["visibility"] == "visible" for t in tests)


def test_gradescope_output_is_the_message_or_passed():
    tests = exporters.gradescope(_mixed())["tests"]
    assert tests[0]["output"] == "Passed."
    assert tests[1]["output"] == "AssertionError: expected 1 COMMIT, saw 2"
    failed_silently = exporters.gradescope(_result(Check("t", 0.0, 1.0, "fail")))["tests"][0]
    assert failed_silently["output"] == ""


def test_gradescope_is_json_serialisable_as_written():
    data = exporters.gradescope(_mixed())
    assert json.loads(json.dumps(data)) == data


def test_gradescope_of_a_submission_that_could_not_be_graded():
    r = _result(status="error", verdict="the notebook is not valid JSON")
    data = exporters.gradescope(r)
    check_gradescope(data)
    assert data["tests"] == [] and data["score"] == 0.0
    assert data["output"] == "the notebook is not valid JSON"
    assert data["extra_data"]["status"] == "error"


# -- Exercism


def test_exercism_fail_keeps_the_tests_in_notebook_order_with_messages():
    data = exporters.exercism(_mixed())
    check_exercism(data)
    assert data["version"] == 3
    assert data["status"] == "fail" and data["message"] == "2 of 3 tests passed"
    assert [(t["name"], t["status"]) for t in data["tests"]] == [
        ("test_engine", "pass"),
        ("test_session", "fail"),
        ("test_lifespan", "error"),
    ]
    passed, failed, errored = data["tests"]
    assert passed == {"name": "test_engine", "status": "pass", "test_code": ""}  # no message on a pass
    assert failed["message"] == failed["output"] == "AssertionError: expected 1 COMMIT, saw 2"
    assert errored["message"] == "NotRun: an earlier cell failed"


def test_exercism_pass_has_no_message():
    data = exporters.exercism(_result(Check("a", 1.0, 1.0, "pass"), Check("b", 1.0, 1.0, "pass")))
    check_exercism(data)
    assert data["status"] == "pass"
    assert "message" not in data


def test_exercism_failed_test_without_a_message_still_gets_one():
    test = exporters.exercism(_result(Check("t", 0.0, 1.0, "fail")))["tests"][0]
    assert test["message"] == "this test did not pass"
    assert "output" not in test  # nothing was printed


def test_exercism_output_is_cut_at_500_characters_but_the_message_is_not():
    long = "x" * 1200
    test = exporters.exercism(_result(Check("t", 0.0, 1.0, "fail", long)))["tests"][0]
    assert len(test["output"]) == exporters.EXERCISM_OUTPUT_LIMIT == 500
    assert test["message"] == long


def test_exercism_error_means_nothing_could_run():
    data = exporters.exercism(_result(Check("t", 0.0, 1.0, "fail"), status="error", verdict="not a notebook"))
    check_exercism(data)
    assert data == {"version": 3, "status": "error", "message": "not a notebook", "tests": []}


def test_exercism_no_tests_is_a_fail_not_a_pass():
    data = exporters.exercism(_result(verdict="no graded cells found"))
    assert data["status"] == "fail" and data["message"] == "no graded cells found"


# -- both: the last filter runs again at export time


@pytest.mark.parametrize("export", [exporters.gradescope, exporters.exercism])
def test_hidden_test_lines_added_after_the_result_was_made_are_removed(export, monkeypatch):
    hidden = "assert compute_the_hidden_answer() == 42"
    r = _mixed()  # made while the lesson had nothing to hide
    r.verdict = f"failed: {hidden}"
    r.tests[1].message = f"AssertionError: {hidden}"
    monkeypatch.setattr(redact, "for_lesson", lambda lesson, root=None: redact.Redactor([hidden]))
    text = json.dumps(export(r))
    assert hidden not in text
    assert redact.MARK in text


# -- CSV


def test_scores_csv_has_one_row_per_submission_sorted_by_lesson_then_student():
    rows = [
        SubmissionResult("bob", "02_x", "graded", "ok", score=1.0, max_score=2.0, execution_time=0.5),
        SubmissionResult("ada", "02_x", "graded", "ok", score=2.0, max_score=2.0, execution_time=0.25),
        SubmissionResult("zoe", "01_y", "error", "not a notebook, sorry", execution_time=0.0004),
    ]
    text = exporters.scores_csv(rows)
    assert text.splitlines()[0] == ",".join(exporters.CSV_FIELDS)
    parsed = list(csv.DictReader(io.StringIO(text)))
    assert [(r["lesson"], r["student"]) for r in parsed] == [("01_y", "zoe"), ("02_x", "ada"), ("02_x", "bob")]
    assert parsed[0] == {
        "student": "zoe",
        "lesson": "01_y",
        "score": "0.0",
        "max_score": "0.0",
        "status": "error",
        "verdict": "not a notebook, sorry",  # the comma is quoted, not a new column
        "execution_time": "0.0",
    }
    assert parsed[1]["score"] == "2.0" and parsed[1]["execution_time"] == "0.25"


def test_scores_csv_of_nothing_is_just_the_header():
    assert exporters.scores_csv([]) == ",".join(exporters.CSV_FIELDS) + "\n"
