"""score's verdict: one sentence — how many tests passed, how the run ended, what was restored."""

from __future__ import annotations

from types import SimpleNamespace

from autograder.grading import results
from autograder.grading.stages.score import verdict

TESTS = [results.TestResult("a", 1.0, 1.0, "pass"), results.TestResult("b", 0.0, 2.0, "fail", "AssertionError: no")]


def test_a_completed_run_says_how_many_tests_passed():
    completed = SimpleNamespace(ended="completed", detail="")
    assert verdict(completed, TESTS, []) == "graded: 1 of 2 tests passed"


def test_a_run_that_ended_early_says_how_and_keeps_the_notes():
    timed_out = SimpleNamespace(ended="timeout", detail="cell 4 ran for 60 s")
    said = verdict(timed_out, TESTS, ["restored deleted test cell(s) b"])
    assert said == "graded: 1 of 2 tests passed; timeout: cell 4 ran for 60 s; restored deleted test cell(s) b"
