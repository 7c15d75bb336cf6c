"""The grading pipeline, one module per stage, in the spirit of nbgrader's preprocessor lists.

Each stage takes the submission's `SubmissionJob` and the run's `RunContext` and returns
the job with its part filled in. The scheduler (`run.GradeRun`) runs them in this order,
each on the thread named here: only the main thread touches nbgrader's SQLite gradebook
and the result files, and the slow middle runs in parallel.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from autograder.grading.context import RunContext
from autograder.grading.job import SubmissionJob
from autograder.grading.stages.execute import execute
from autograder.grading.stages.prepare import prepare
from autograder.grading.stages.provision import provision
from autograder.grading.stages.record import record
from autograder.grading.stages.score import score


@dataclass(frozen=True)
class Stage:
    run: Callable[[SubmissionJob, RunContext], SubmissionJob]
    in_worker: bool = False  # runs in a worker thread; every other stage runs in the main thread
    after_verdict: bool = False  # still runs for a job that has its result already (not graded)

    @property
    def name(self) -> str:
        return self.run.__name__


PIPELINE: tuple[Stage, ...] = (
    Stage(prepare),  # main: nbgrader sanitize (a file that is no notebook gets its verdict here)
    Stage(provision),  # main: the database is made on the admin loop, meanwhile
    Stage(execute, in_worker=True),  # worker: forked, sandboxed, with its own database
    Stage(score),  # main: nbgrader scoring writes the gradebook; the SubmissionResult
    Stage(record, after_verdict=True),  # main: notebook into place, exports, result.json last
)
