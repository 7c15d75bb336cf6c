"""Stage 5, main thread: the staged autograded notebook moved into place, then the exports, and
result.json last — its checksum is what marks the submission graded, so a run stopped at any
point leaves either the complete old result or the complete new one."""

from __future__ import annotations

import shutil

from autograder.grading import exporters
from autograder.grading.context import RunContext
from autograder.grading.job import SubmissionJob
from autograder.grading.layout import RunPaths
from autograder.grading.results import SubmissionResult, write_json_atomically


def record(job: SubmissionJob, run: RunContext) -> SubmissionJob:
    assert job.result is not None, "a job is recorded once it has its verdict"
    move_into_place(run.paths, job.lesson, job.student)
    write_results(run.paths, job.result)
    return job


def move_into_place(paths: RunPaths, lesson: str, student: str) -> None:
    """The old notebook is moved aside (`.<lesson>.old`) until the new one is in: a run killed in
    between is put right by the next one (see course_lock.clear_leftovers)."""
    staged = paths.staged_autograded / student / lesson
    final = paths.autograded(lesson, student)
    if not staged.exists():
        return  # not graded: nbgrader wrote no notebook
    final.parent.mkdir(parents=True, exist_ok=True)
    old = final.with_name(f".{final.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    shutil.move(str(staged), str(final))
    shutil.rmtree(old, ignore_errors=True)


def write_results(paths: RunPaths, result: SubmissionResult) -> None:
    out = paths.export_folder(result.lesson, result.student)
    write_json_atomically(out / "results.gradescope.json", exporters.gradescope(result))
    write_json_atomically(out / "results.exercism.json", exporters.exercism(result))
    write_json_atomically(out / "result.json", result.to_json())  # last: marks it graded
