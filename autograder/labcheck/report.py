"""What "Check my work" shows: per exercise, points and the check's message — nothing else.

Built from the grader's `SubmissionResult`, whose texts have already passed the hidden-test
filter (autograder/grading/redact.py); the report adds exercise titles taken from the
learner's own notebook (the markdown heading above each graded cell), so it carries no
text the learner has not seen or that a check did not write for them.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from autograder.course.layout import lessons
from autograder.grading.results import SubmissionResult

HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$")


@dataclass(frozen=True)
class ExerciseVerdict:
    name: str  # the graded cell's id (nbgrader grade_id)
    title: str  # the heading above it in the notebook, or its id
    points: float
    max_points: float
    passed: bool
    message: str  # expected / got / SQL / hint, as the check wrote it


@dataclass(frozen=True)
class CheckReport:
    lesson: str
    notebook: str  # the path the learner checked, relative to the lab's folder
    score: float
    max_score: float
    verdict: str  # one sentence: what happened
    exercises: list[ExerciseVerdict] = field(default_factory=list)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def lesson_of(notebook: Path, known: list[str] | None = None) -> str | None:
    """The lesson a notebook answers: its file name (`01_x.ipynb`), else its folder (`01_x/copy.ipynb`)."""
    known = lessons() if known is None else known
    for candidate in (notebook.stem, notebook.parent.name):
        if candidate in known:
            return candidate
    return None


def exercise_titles(notebook: Path) -> dict[str, str]:
    """grade_id -> the last markdown heading above that graded cell. Unreadable notebook: {}."""
    try:
        cells = json.loads(notebook.read_text(encoding="utf-8")).get("cells", [])
    except (OSError, ValueError, AttributeError):
        return {}
    titles: dict[str, str] = {}
    heading = ""
    for cell in cells if isinstance(cells, list) else []:
        if not isinstance(cell, dict):
            continue
        source = cell.get("source", "")
        text = "".join(source) if isinstance(source, list) else str(source)
        if cell.get("cell_type") == "markdown":
            for line in text.splitlines():
                found = HEADING.match(line)
                if found:
                    heading = found.group(1).strip()
            continue
        meta = cell.get("metadata", {}).get("nbgrader", {}) if isinstance(cell.get("metadata"), dict) else {}
        if isinstance(meta, dict) and meta.get("grade") and meta.get("grade_id"):
            titles[str(meta["grade_id"])] = heading or str(meta["grade_id"])
    return titles


def report_for(result: SubmissionResult, notebook: Path, shown_path: str, seconds: float) -> CheckReport:
    titles = exercise_titles(notebook)
    exercises = [
        ExerciseVerdict(
            name=test.name,
            title=titles.get(test.name, test.name),
            points=test.score,
            max_points=test.max_score,
            passed=test.status == "pass" and test.score >= test.max_score,
            message=test.message,
        )
        for test in result.tests
    ]
    return CheckReport(
        lesson=result.lesson,
        notebook=shown_path,
        score=result.score,
        max_score=result.max_score,
        verdict=result.verdict,
        exercises=exercises,
        seconds=round(seconds, 2),
    )
