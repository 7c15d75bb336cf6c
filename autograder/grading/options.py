"""What a grading run may be asked to do: the one typed set of options every entry point fills."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from autograder.grading import sandbox
from autograder.grading.executor import Deadlines


@dataclass
class GradeOptions:
    lessons: list[str] | None = None  # None: every lesson found under submitted/
    students: list[str] | None = None  # None: every student
    workers: int = field(default_factory=lambda: os.cpu_count() or 2)
    force: bool = False  # re-grade submissions whose result.json has the same checksum
    feedback: bool = False  # also write nbgrader's feedback HTML
    isolate: bool = True  # namespaces and a uid of its own per submission
    deadlines: Deadlines = field(default_factory=Deadlines)
    output_limit: int = 1_000_000
    limits: sandbox.Limits = field(default_factory=sandbox.Limits)
    # Cells the lesson marks as demonstrations are skipped unless this is set (see
    # autograde.demonstration_cells); a learner's Run All and `pytest --nbval` run them all.
    run_demonstrations: bool = False
