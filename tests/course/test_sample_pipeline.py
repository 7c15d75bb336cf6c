"""The release and feedback preprocessors, on a tiny lesson that needs no database."""

from pathlib import Path

import pytest

from autograder.course.preprocessors import EXPECTED_FAILURE_TAG
from tests.support.workspace import Workspace

SAMPLE = Path(__file__).parent / "sample"
HIDDEN_SENTINEL = "_sample_hidden_probe_zq"


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    return Workspace(tmp_path_factory.mktemp("sample-course"), source_root=SAMPLE)


def cell(nb, grade_id):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def test_release_tags_only_unsolved_exercise_and_test_cells(ws):
    release = ws.release("sample")
    assert EXPECTED_FAILURE_TAG in cell(release, "ex_double").metadata["tags"]
    assert EXPECTED_FAILURE_TAG in cell(release, "test_double").metadata["tags"]
    assert "tags" not in cell(release, "demo").metadata
    assert "tags" not in cell(release, "after").metadata


def test_release_hides_solution_and_hidden_tests(ws):
    text = Path(ws.root / "notebooks/sample/sample.ipynb").read_text()
    assert "2 * x" not in text
    assert HIDDEN_SENTINEL not in text
    assert "raise NotImplementedError()" in text


def test_solution_scores_full_marks(ws):
    ws.submit("ada", "sample", ws.solution("sample"))
    ws.autograde("sample", "ada")
    assert ws.total("sample", "ada") == (2.0, 2.0)


def test_untouched_release_scores_zero_without_crashing(ws):
    ws.submit("bob", "sample", ws.release("sample"))
    result = ws.autograde("sample", "bob")
    assert result["success"], result.get("log")
    assert ws.total("sample", "bob") == (0.0, 2.0)


def test_wrong_answer_loses_points_and_feedback_names_the_reason_without_hidden_code(ws):
    nb = ws.solution("sample")
    # Passes the visible test (double(1) == 2) but not the hidden one.
    cell(nb, "ex_double").source = "def double(x):\n    return x + 1"
    ws.submit("eve", "sample", nb)
    ws.autograde("sample", "eve")
    assert ws.total("sample", "eve") == (0.0, 2.0)
    html = ws.feedback_html("sample", "eve")
    assert "double(21) == 42" in html and "double(21) == 22" in html  # the verdict's expected/got
    assert "multiply by two" in html  # the hint
    assert HIDDEN_SENTINEL not in html
    assert "BEGIN HIDDEN TESTS" not in html


def test_feedback_of_a_passing_submission_shows_the_verdict_not_the_code(ws):
    html = ws.feedback_html("sample", "ada")
    assert "PASSED" in html
    assert HIDDEN_SENTINEL not in html
