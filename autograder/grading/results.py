"""What a graded submission produced, in one model every exporter reads.

Test messages come from the error a test cell raised (`ename: evalue`) — for the
course's checks that is the whole learner-facing verdict — and never from the
cell's source or traceback, which quote hidden test code. And every text of a result
passes the last filter (redact.py) when the result is made: no line of the lesson's
hidden tests reaches result.json, the exports or scores.csv, whatever a learner's code
managed to put into an error message.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import nbformat
from nbgrader import utils as nbutils

from autograder.grading import redact

# Errors that mean "the test could not run", as opposed to "the test ran and failed".
NOT_RUN = {"NotRun", "KernelDied", "Timeout", "CellTimeout", "GraderError", "OutputError", "Unconfirmed", "Tampering"}
MAX_MESSAGE = 4000


@dataclass
class TestResult:
    name: str
    score: float
    max_score: float
    status: str  # pass | fail | error
    message: str = ""


@dataclass
class SubmissionResult:
    student: str
    lesson: str
    status: str  # graded | error (nothing could be graded)
    verdict: str  # one sentence: what happened
    score: float = 0.0
    max_score: float = 0.0
    tests: list[TestResult] = field(default_factory=list)
    checksum: str = ""
    execution_time: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    protections_off: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        redact_texts(self)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SubmissionResult:
        tests = [TestResult(**t) for t in data.get("tests", [])]
        return cls(**{**data, "tests": tests})


def redact_texts(result: SubmissionResult) -> SubmissionResult:
    """Remove the lesson's hidden test lines from the result's texts (in place); returns it."""
    redactor = redact.for_lesson(result.lesson)
    if redactor:
        result.verdict = redactor.text(result.verdict)
        for test in result.tests:
            test.message = redactor.text(test.message)
    return result


def checksum(folder: Path) -> str:
    """sha256 over a submission folder's files (names and bytes), for resuming."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and ".ipynb_checkpoints" not in p.parts):
        digest.update(str(path.relative_to(folder)).encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def cell_message(cell: Mapping[str, Any]) -> tuple[str, str]:
    """(status, message) of an executed test cell, from its error output only."""
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            ename = str(output.get("ename", "Error"))
            evalue = str(output.get("evalue", ""))
            status = "error" if ename in NOT_RUN else "fail"
            return status, f"{ename}: {evalue}".strip().rstrip(":")[:MAX_MESSAGE]
    return "pass", ""


def tests_from(autograded: Path, grades: dict[str, tuple[float, float]]) -> list[TestResult]:
    """One TestResult per graded test cell, in notebook order."""
    nb = nbformat.read(autograded, as_version=4)
    tests = []
    for cell in nb.cells:
        if not (nbutils.is_grade(cell) and not nbutils.is_solution(cell)):
            continue
        grade_id = cell.metadata["nbgrader"]["grade_id"]
        score, max_score = grades.get(grade_id, (0.0, float(cell.metadata["nbgrader"].get("points", 0))))
        status, message = cell_message(cell)
        if status == "pass" and score < max_score:
            status = "fail"
        tests.append(TestResult(grade_id, float(score), float(max_score), status, message))
    return tests


def write_json_atomically(path: Path, data: Any) -> None:
    """Write-then-rename: a reader (or a crash) never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
