"""The last filter: hidden test lines removed from every learner-facing text."""

import json

import nbformat
from nbformat.v4 import new_code_cell, new_notebook, new_output

from autograder.grading import exporters, redact
from autograder.grading.results import SubmissionResult
from autograder.grading.results import TestResult as Check
from autograder.paths import project_root

LESSON = "00_foundations"
TEST_CELL = """assert x == 1, "visible check"
### BEGIN HIDDEN TESTS
_g_secret = compute_the_hidden_answer(x)
require_that(_g_secret == 42, "the hidden message")
pass
### END HIDDEN TESTS
"""
HIDDEN = "_g_secret = compute_the_hidden_answer(x)"


def _notebook():
    return new_notebook(cells=[new_code_cell("x = 1\nprint('mine')"), new_code_cell(TEST_CELL)])


def test_hidden_lines_are_those_inside_the_markers_and_nowhere_else():
    inside, outside = redact.hidden_regions([TEST_CELL, "print('public')"])
    assert HIDDEN in inside and 'assert x == 1, "visible check"' in outside
    r = redact.from_notebook(_notebook())
    assert r.text(f"before {HIDDEN} after") == f"before {redact.MARK} after"
    assert r.text("pass\nvisible check") == "pass\nvisible check"  # short and public lines stay


def test_a_line_is_removed_also_when_it_is_escaped_in_a_repr_or_json():
    line = 'require_that(_g_secret == 42, "the hidden message")'
    r = redact.Redactor([line])
    for shown in (
        line,
        repr(line),
        json.dumps(line),
        repr([line]),
        repr([json.dumps(line)]),
        json.dumps(repr(line)),
        repr("it's " + line),
    ):
        assert line not in r.text(shown) and 'the hidden message")' not in r.text(shown)
        assert redact.MARK in r.text(shown)


def test_a_notebook_s_outputs_are_redacted_in_place_and_its_sources_kept():
    nb = _notebook()
    nb.cells[0].outputs = [
        new_output("stream", name="stdout", text=f"found: {HIDDEN}\n"),
        new_output("display_data", data={"text/plain": HIDDEN, "application/json": {"k": [HIDDEN]}}),
        new_output("error", ename="E", evalue=HIDDEN, traceback=[f"---> 3 {HIDDEN}"]),
    ]
    redact.from_notebook(nb).notebook(nb)
    assert HIDDEN not in json.dumps([c.get("outputs", []) for c in nb.cells])
    assert HIDDEN in nb.cells[1].source


def test_a_lesson_s_hidden_lines_come_from_its_solution_minus_its_release():
    r = redact.for_lesson(LESSON)
    assert r, "lesson 00 has hidden tests"
    solution = nbformat.read(project_root() / "solutions" / LESSON / f"{LESSON}.ipynb", as_version=4)
    release = "\n".join(
        c.source for c in nbformat.read(project_root() / "notebooks" / LESSON / f"{LESSON}.ipynb", as_version=4).cells
    )
    inside, _ = redact.hidden_regions(c.source for c in solution.cells)
    hidden = [line for line in inside if len(line) >= 16 and line not in release]
    assert hidden
    text = "\n".join(hidden)
    assert not [line for line in hidden if line in r.text(text)]
    assert r.text("expected 2 products back") == "expected 2 products back"  # public messages stay
    assert not redact.for_lesson("no_such_lesson")


def test_results_and_exports_carry_no_hidden_line():
    hidden = next(line for line in redact.for_lesson(LESSON).needles if len(line) > 30)
    result = SubmissionResult(
        "s",
        LESSON,
        "graded",
        f"verdict {hidden}",
        0.0,
        3.0,
        [Check("t", 0.0, 3.0, "fail", f"AssertionError: {hidden}")],
    )
    assert hidden not in json.dumps(result.to_json())
    result.tests.append(Check("u", 0.0, 1.0, "fail", hidden))  # changed after it was made
    assert hidden not in json.dumps(exporters.gradescope(result))
    assert hidden not in json.dumps(exporters.exercism(result))
    assert hidden not in exporters.scores_csv([result])
