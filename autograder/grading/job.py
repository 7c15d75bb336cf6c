"""One submission on its way through the pipeline: what each stage adds, typed."""

from __future__ import annotations

import concurrent.futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from autograder.grading.autograde import SplitAutograde
    from autograder.grading.databases import SubmissionDatabase
    from autograder.grading.executor import Execution
    from autograder.grading.results import SubmissionResult


@dataclass(eq=False)  # a job is itself, not its contents (the scheduler keys futures by job)
class SubmissionJob:
    # found: submitted/<student>/<lesson>/
    student: str
    lesson: str
    folder: Path
    checksum: str = ""
    # prepare: nbgrader's sanitized notebook and what is to run of it
    grader: SplitAutograde | None = None
    sanitized: Path | None = None
    cells: list[tuple[int, str]] = field(default_factory=list)
    graded_cells: frozenset[int] = frozenset()
    notes: list[str] = field(default_factory=list)  # what nbgrader restored, for the verdict
    # provision: made on the admin loop; `database` once the worker has it
    database_future: concurrent.futures.Future[SubmissionDatabase] | None = None
    database: SubmissionDatabase | None = None
    # execute
    execution: Execution | None = None
    # score (or prepare, for a submission that cannot be graded): the verdict
    result: SubmissionResult | None = None

    @property
    def name(self) -> str:
        return f"{self.student}/{self.lesson}"
