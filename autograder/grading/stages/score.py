"""Stage 4, main thread: nbgrader's scoring preprocessors write the gradebook; the grades, the
executed notebook's test verdicts and what the watchdogs saw become the `SubmissionResult`."""

from __future__ import annotations

from autograder.grading import gradebook
from autograder.grading.context import RunContext
from autograder.grading.executor import Execution
from autograder.grading.job import SubmissionJob
from autograder.grading.results import SubmissionResult, TestResult, tests_from
from autograder.grading.stages.provision import release


def score(job: SubmissionJob, run: RunContext) -> SubmissionJob:
    assert job.grader is not None and job.sanitized is not None and job.execution is not None
    execution = job.execution
    run.timings.add("execute", execution.seconds)
    job.grader.finish(job.sanitized, execution)
    release(job, run)  # the database is done with: dropped meanwhile
    tests = tests_from(job.sanitized, gradebook.grades(run.api, job.lesson, job.student))
    # What the database watchdog ended (a lifted timeout, a memory hog...) is part of the verdict.
    notes = [*job.notes, *(run.dbs.watchdog_events(job.database.name) if job.database else [])]
    job.result = SubmissionResult(
        student=job.student,
        lesson=job.lesson,
        status="graded",
        verdict=verdict(execution, tests, notes),
        score=sum(t.score for t in tests),
        max_score=sum(t.max_score for t in tests),
        tests=tests,
        checksum=job.checksum,
        execution_time=execution.seconds,
        timings={"startup": round(execution.startup_seconds, 3), "execute": round(execution.seconds, 3)},
        protections_off=execution.protections.off,
    )
    return job


def not_graded(job: SubmissionJob, run: RunContext, why: str) -> SubmissionJob:
    """Every test scores zero, with the reason; the gradebook says the same."""
    assert job.grader is not None
    job.grader.record_zero(job.lesson, job.student)
    tests = [
        TestResult(name, 0.0, max_score, "error", f"not graded: {why}")
        for name, max_score in gradebook.grade_cells(run.api, job.lesson)
    ]
    job.result = SubmissionResult(
        job.student,
        job.lesson,
        "error",
        f"not graded: {why}",
        max_score=sum(t.max_score for t in tests),
        tests=tests,
        checksum=job.checksum,
    )
    return job


def verdict(execution: Execution, tests: list[TestResult], notes: list[str]) -> str:
    passed = sum(1 for t in tests if t.status == "pass")
    parts = [f"graded: {passed} of {len(tests)} tests passed"]
    if execution.ended != "completed":
        parts.append(f"{execution.ended}: {execution.detail}")
    parts += notes
    return "; ".join(parts)
