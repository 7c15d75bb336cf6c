"""Stage 1, main thread: nbgrader's sanitize — record the submission, restore locked and test cells.

A file that is no gradable notebook gets its verdict here (every test zero, with the
reason) and goes straight to `record`.
"""

from __future__ import annotations

import logging
from pathlib import Path

from autograder.grading.autograde import SplitAutograde, SubmissionProblem, sanitized_code_cells
from autograder.grading.context import RunContext
from autograder.grading.demonstrations import demonstration_cells
from autograder.grading.job import SubmissionJob
from autograder.grading.stages.score import not_graded
from autograder.paths import project_root

log = logging.getLogger(__name__)


def prepare(job: SubmissionJob, run: RunContext) -> SubmissionJob:
    job.grader = SplitAutograde(coursedir=run.api.coursedir, parent=run.api)
    try:
        sanitized = job.grader.prepare(job.lesson, job.student)
    except SubmissionProblem as problem:
        return not_graded(job, run, str(problem))
    except Exception as exc:  # noqa: BLE001 - nbgrader refuses (e.g. no notebook matched)
        log.info("nbgrader could not read %s: %s", job.name, exc)
        return not_graded(job, run, f"nbgrader could not read the submission ({exc})")
    if len(sanitized) != 1:
        return not_graded(job, run, "the submission has no notebook of this lesson")
    job.sanitized = sanitized[0]
    job.notes = list(getattr(job.grader, "notes", []))
    skip = frozenset() if run.options.run_demonstrations else demonstration_cells(lesson_source(job.lesson))
    job.cells, job.graded_cells = sanitized_code_cells(job.sanitized, skip)
    return job


def lesson_source(lesson: str) -> Path:
    return project_root() / "solutions" / lesson / f"{lesson}.ipynb"
