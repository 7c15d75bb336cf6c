"""Which command lines start the grading fork server before anything else is imported."""

import pytest

from autograder.grading.startup import wants_grading


@pytest.mark.parametrize("argv, wanted", [
    (["grade"], True),
    (["grade", "--course", "x", "-j", "2"], True),
    (["grade-one", "nb.ipynb", "--lesson", "00_foundations"], True),
    (["grade", "--help"], False),  # prints help: nothing to warm up
    (["grade-one", "-h"], False),
    (["lab"], False),
    (["db", "start"], False),
    ([], False),
])
def test_only_a_grading_command_that_will_run_starts_the_fork_server(argv, wanted):
    assert wants_grading(argv) is wanted
