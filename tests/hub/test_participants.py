"""The participant list: who may sign in, who is an instructor, and names that are refused with one sentence."""

from __future__ import annotations

import pytest

from autograder.errors import SetupError
from autograder.hub import participants


def test_names_roles_and_comments():
    listed = participants.parse("# the list\nalice instructor\nbob   # a learner\n\ncarol_2 learner\n")
    assert [(p.name, p.instructor) for p in listed] == [("alice", True), ("bob", False), ("carol_2", False)]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("Bob\n", "cannot be used"),
        ("bo__b\n", "cannot be used"),  # `__` separates a role from a lesson in database names
        ("bob_\n", "cannot be used"),
        ("1bob\n", "cannot be used"),
        ("a" * 25 + "\n", "at most 24"),
        ("root\n", "system account"),
        ("bob teacher\n", "Line 1"),
        ("bob\nbob\n", "listed twice"),
        ("# nobody\n", "lists nobody"),
    ],
)
def test_bad_lists_are_refused_in_one_sentence(text, fragment):
    with pytest.raises(SetupError) as caught:
        participants.parse(text)
    assert fragment in caught.value.message
    assert "\n" not in caught.value.message


def test_missing_list_says_how_to_make_one(tmp_path):
    with pytest.raises(SetupError, match="does not exist; create it"):
        participants.load(tmp_path / "participants.txt")


def test_the_example_list_is_valid():
    from autograder.paths import project_root

    listed = participants.load(project_root() / "jupyter" / "hub" / "participants.example.txt")
    assert any(p.instructor for p in listed)
    assert any(not p.instructor for p in listed)
