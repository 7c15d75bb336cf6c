"""Every cell a lesson marks as a demonstration is left out when its solution is graded, and nothing else.

The marks ({"autograder": {"demo": true}} in solutions/) are what makes a graded run (and
"Check my work") fast: a mark on a cell that a later cell needs would be kept anyway
(autograder/grading/demonstrations.py), silently costing the time it was meant to save;
a mark on an answer, test, locked or markdown cell would do nothing. What the skipped
cells do to the database is covered by tests/course/test_lessons_autograde.py: each
solution, graded with them skipped, still gets full marks.
"""

from __future__ import annotations

import json

import pytest

from autograder.course.layout import lessons
from autograder.grading.autograde import sanitized_code_cells
from autograder.grading.demonstrations import DEMO_METADATA, demonstration_cells
from autograder.paths import project_root


def source(lesson: str):
    return project_root() / "solutions" / lesson / f"{lesson}.ipynb"


@pytest.mark.parametrize("lesson", lessons())
def test_every_marked_demonstration_is_skipped_when_the_solution_is_graded(lesson):
    path = source(lesson)
    cells = json.loads(path.read_text())["cells"]
    demos = demonstration_cells(path)
    kept, _ = sanitized_code_cells(path, demos)
    kept_ids = {cells[i].get("id") for i, _ in kept}
    assert not demos & kept_ids, f"marked as demonstrations but needed by a later cell: {sorted(demos & kept_ids)}"
    code_ids = {c.get("id") for c in cells if c["cell_type"] == "code"}
    assert kept_ids == code_ids - demos


@pytest.mark.parametrize("lesson", lessons())
def test_only_plain_code_cells_are_marked_as_demonstrations(lesson):
    path = source(lesson)
    cells = json.loads(path.read_text())["cells"]
    marked = {c.get("id") for c in cells if (c.get("metadata", {}).get(DEMO_METADATA) or {}).get("demo") is True}
    assert marked == set(demonstration_cells(path)), marked - set(demonstration_cells(path))
