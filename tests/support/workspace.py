"""A throwaway nbgrader course for tests: release, submit, autograde, read grades, feedback.

The project's tests use it to run the *real* nbgrader pipeline on the real
lessons (solution → full marks, untouched release → zero, wrong answer → the
matching test loses its points) without touching the instructor's gradebook.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import nbformat

from autograder.course.api import checked, course_api
from autograder.course.layout import RELEASE_DIR, SOURCE_DIR
from autograder.paths import project_root
from tests.support.submissions import submit


@dataclass(frozen=True)
class CellGrade:
    grade_id: str
    score: float
    max_score: float


class Workspace:
    def __init__(self, root: Path, source_root: Path | None = None):
        self.root = Path(root)
        source_root = source_root or project_root()
        shutil.copytree(
            source_root / SOURCE_DIR,
            self.root / SOURCE_DIR,
            ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"),
        )
        self.db_url = f"sqlite:///{self.root / 'gradebook.db'}"
        self.api = course_api(root=self.root, db_url=self.db_url)
        self._released: set[str] = set()

    def ensure_released(self, lesson: str) -> None:
        """Release a lesson on first use: a test of one lesson never depends on another."""
        if lesson not in self._released:
            checked(self.api.generate_assignment(lesson, force=True, create=True), f"generate_assignment {lesson}")
            self._released.add(lesson)

    # notebooks ---------------------------------------------------------------
    def solution(self, lesson: str) -> nbformat.NotebookNode:
        return nbformat.read(self.root / SOURCE_DIR / lesson / f"{lesson}.ipynb", as_version=4)

    def release(self, lesson: str) -> nbformat.NotebookNode:
        self.ensure_released(lesson)
        return nbformat.read(self.root / RELEASE_DIR / lesson / f"{lesson}.ipynb", as_version=4)

    def submit(self, student: str, lesson: str, notebook: nbformat.NotebookNode | bytes | str) -> Path:
        """Place a submission as nbgrader expects it; bytes/str are written verbatim (broken files too)."""
        self.ensure_released(lesson)
        return submit(self.root, student, lesson, notebook)

    # grading -----------------------------------------------------------------
    def autograde(self, lesson: str, student: str) -> dict:
        return self.api.autograde(lesson, student, force=True, create=True)

    def grades(self, lesson: str, student: str) -> dict[str, CellGrade]:
        from nbgrader.api import Gradebook

        with Gradebook(self.db_url) as gb:
            nb = gb.find_submission_notebook(lesson, lesson, student)
            return {g.name: CellGrade(g.name, float(g.score), float(g.max_score)) for g in nb.grades}

    def total(self, lesson: str, student: str) -> tuple[float, float]:
        grades = self.grades(lesson, student).values()
        return sum(g.score for g in grades), sum(g.max_score for g in grades)

    def autograded(self, lesson: str, student: str) -> nbformat.NotebookNode:
        return nbformat.read(self.root / "autograded" / student / lesson / f"{lesson}.ipynb", as_version=4)

    def feedback_html(self, lesson: str, student: str) -> str:
        checked(self.api.generate_feedback(lesson, student, force=True), f"generate_feedback {lesson}")
        return (self.root / "feedback" / student / lesson / f"{lesson}.html").read_text()
