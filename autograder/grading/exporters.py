"""Results in the formats other tools read.

* Gradescope autograder `results.json`: top-level score/execution_time/output/
  visibility/stdout_visibility/extra_data/tests; per test score, max_score, name,
  number, output, visibility, status. Only `output` is shown to the student, so it carries the
  check's message and never test code.
* Exercism test-runner interface, version 3: status pass | fail | error (error:
  nothing could run, with a message), per test name/status/message/output
  (output at most 500 characters), tests in notebook order.
* CSV: one row per submission, for a spreadsheet or an LMS import.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from autograder.grading.results import SubmissionResult, redact_texts

EXERCISM_OUTPUT_LIMIT = 500


def gradescope(result: SubmissionResult) -> dict[str, Any]:
    redact_texts(result)  # the last filter, again: a result can be changed after it was made
    tests = []
    for number, test in enumerate(result.tests, start=1):
        tests.append(
            {
                "name": test.name,
                "number": str(number),
                "score": test.score,
                "max_score": test.max_score,
                "status": "passed" if test.status == "pass" else "failed",
                "output": test.message or ("Passed." if test.status == "pass" else ""),
                "visibility": "visible",
            }
        )
    return {
        "score": result.score,
        "execution_time": round(result.execution_time, 3),
        "output": result.verdict,
        "visibility": "visible",
        "stdout_visibility": "hidden",
        # The spec has no top-level maximum (the assignment's is set in Gradescope); kept for instructors.
        "extra_data": {"max_score": result.max_score, "status": result.status},
        "tests": tests,
    }


def exercism(result: SubmissionResult) -> dict[str, Any]:
    redact_texts(result)
    if result.status == "error":
        return {"version": 3, "status": "error", "message": result.verdict, "tests": []}
    tests = []
    for test in result.tests:
        entry: dict[str, Any] = {"name": test.name, "status": test.status, "test_code": ""}
        if test.status != "pass":
            entry["message"] = test.message or "this test did not pass"
        if test.message:
            entry["output"] = test.message[:EXERCISM_OUTPUT_LIMIT]
        tests.append(entry)
    status = "pass" if tests and all(t["status"] == "pass" for t in tests) else "fail"
    out: dict[str, Any] = {"version": 3, "status": status, "tests": tests}
    if status != "pass":
        out["message"] = result.verdict
    return out


CSV_FIELDS = ["student", "lesson", "score", "max_score", "status", "verdict", "execution_time"]


def scores_csv(results: list[SubmissionResult]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for r in sorted(results, key=lambda r: (r.lesson, r.student)):
        writer.writerow(
            {
                "student": r.student,
                "lesson": r.lesson,
                "score": r.score,
                "max_score": r.max_score,
                "status": r.status,
                "verdict": r.verdict,
                "execution_time": round(r.execution_time, 3),
            }
        )
    return buffer.getvalue()
