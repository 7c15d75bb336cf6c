"""A submission's result and how it is read from a graded notebook (autograder/grading/results.py)."""

from __future__ import annotations

import json

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

from autograder.grading import redact, results
from autograder.grading.results import SubmissionResult
from autograder.grading.results import TestResult as Check  # not collected as a test class


def _error(ename: str, evalue: str) -> dict:
    return new_output("error", ename=ename, evalue=evalue, traceback=[])


def _graded(grade_id: str, points: float, outputs: list, *, solution: bool = False):
    cell = new_code_cell("assert True", outputs=outputs)
    cell.metadata["nbgrader"] = {"grade": True, "solution": solution, "grade_id": grade_id, "points": points}
    return cell


# -- cell_message


def test_a_cell_without_an_error_passed():
    assert results.cell_message({"outputs": [new_output("stream", name="stdout", text="hi")]}) == ("pass", "")
    assert results.cell_message({}) == ("pass", "")


def test_an_assertion_is_a_fail_and_a_test_that_could_not_run_is_an_error():
    assert results.cell_message({"outputs": [_error("AssertionError", "expected 2 COMMITs")]}) == (
        "fail",
        "AssertionError: expected 2 COMMITs",
    )
    for ename in sorted(results.NOT_RUN):
        assert results.cell_message({"outputs": [_error(ename, "why")]})[0] == "error", ename


def test_the_message_is_bounded_and_has_no_dangling_colon():
    status, message = results.cell_message({"outputs": [_error("AssertionError", "")]})
    assert (status, message) == ("fail", "AssertionError")
    _, long = results.cell_message({"outputs": [_error("ValueError", "x" * 10_000)]})
    assert len(long) == results.MAX_MESSAGE


# -- tests_from: one result per graded test cell, in notebook order


def test_tests_from_reads_graded_test_cells_in_order(tmp_path):
    nb = new_notebook(
        cells=[
            new_code_cell("x = 1"),  # not graded
            _graded("answer", 0, [], solution=True),  # an autograded answer cell, not a test
            _graded("test_b", 2, []),
            _graded("test_a", 3, [_error("AssertionError", "no")]),
            _graded("test_c", 1, [_error("NotRun", "an earlier cell failed")]),
            _graded("test_partial", 4, []),
        ]
    )
    path = tmp_path / "graded.ipynb"
    nbformat.write(nb, path)
    grades = {"test_b": (2.0, 2.0), "test_a": (0.0, 3.0), "test_partial": (1.0, 4.0)}
    tests = results.tests_from(path, grades)
    assert [(t.name, t.score, t.max_score, t.status) for t in tests] == [
        ("test_b", 2.0, 2.0, "pass"),
        ("test_a", 0.0, 3.0, "fail"),
        ("test_c", 0.0, 1.0, "error"),  # not in the gradebook: no score, its points as the maximum
        ("test_partial", 1.0, 4.0, "fail"),  # no error but not full marks: not a pass
    ]
    assert tests[1].message == "AssertionError: no"


# -- SubmissionResult


def test_a_result_survives_its_json_round_trip():
    r = SubmissionResult(
        "ada",
        "no_such_lesson",
        "graded",
        "1 of 2 tests passed",
        score=1.0,
        max_score=3.0,
        tests=[Check("t1", 1.0, 1.0, "pass"), Check("t2", 0.0, 2.0, "fail", "AssertionError: no")],
        checksum="abc",
        execution_time=0.5,
        timings={"execute": 0.4},
        protections_off={"seccomp": "no libseccomp"},
    )
    data = json.loads(json.dumps(r.to_json()))
    assert SubmissionResult.from_json(data) == r
    assert data["tests"][1] == {
        "name": "t2",
        "score": 0.0,
        "max_score": 2.0,
        "status": "fail",
        "message": "AssertionError: no",
    }


def test_a_result_is_redacted_when_it_is_made(monkeypatch):
    hidden = "assert compute_the_hidden_answer() == 42"
    monkeypatch.setattr(redact, "for_lesson", lambda lesson, root=None: redact.Redactor([hidden]))
    r = SubmissionResult("ada", "x", "graded", f"verdict {hidden}", tests=[Check("t", 0, 1, "fail", hidden)])
    assert hidden not in r.verdict and redact.MARK in r.verdict
    assert r.tests[0].message == redact.MARK


# -- checksum and write_json_atomically


def test_checksum_follows_names_and_bytes_and_ignores_checkpoints(tmp_path):
    (tmp_path / "a.ipynb").write_text("one")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.txt").write_text("two")
    first = results.checksum(tmp_path)
    assert len(first) == 64 and first == results.checksum(tmp_path)
    (tmp_path / ".ipynb_checkpoints").mkdir()
    (tmp_path / ".ipynb_checkpoints" / "a-checkpoint.ipynb").write_text("old")
    assert results.checksum(tmp_path) == first
    (tmp_path / "sub" / "b.txt").write_text("changed")
    assert results.checksum(tmp_path) != first
    (tmp_path / "sub" / "b.txt").write_text("two")
    assert results.checksum(tmp_path) == first
    (tmp_path / "sub" / "b.txt").rename(tmp_path / "sub" / "c.txt")  # same bytes, another name
    assert results.checksum(tmp_path) != first


def test_write_json_atomically_writes_sorted_json_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "deep" / "result.json"
    results.write_json_atomically(path, {"b": 1, "a": [1, 2]})
    assert json.loads(path.read_text()) == {"a": [1, 2], "b": 1}
    assert path.read_text().startswith('{\n  "a"') and path.read_text().endswith("}\n")
    with pytest.raises(TypeError):
        results.write_json_atomically(path, {"not": object()})
    assert json.loads(path.read_text()) == {"a": [1, 2], "b": 1}  # the old file is untouched
    assert [p.name for p in path.parent.iterdir()] == ["result.json"]
