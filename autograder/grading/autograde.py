"""nbgrader's own autograde, split so the slow middle can run elsewhere.

Stock `nbgrader autograde` does, per submission: record it in the gradebook,
*sanitize* the notebook (restore locked and test cells from the gradebook,
checksums, kernelspec), *execute* it in a fresh Jupyter kernel, then *score* it
(SaveAutoGrades writes each test cell's grade). Only the middle step is slow.

`SplitAutograde` keeps nbgrader's classes and preprocessors for the first and
last steps — so the gradebook, formgrader and every cell check behave exactly as
instructors know them — and hands execution to the caller (the forked sandbox).
Both gradebook steps run in the grader's main thread only: one writer, so the
SQLite gradebook is never written by two processes at once (nbgrader #174).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import nbformat
from nbconvert.writers import FilesWriter
from nbgrader.converters import Autograde
from nbgrader.converters.base import BaseConverter
from nbgrader.preprocessors import Execute, NbGraderPreprocessor

from autograder.course.preprocessors import with_outputs_sanitised, with_pasted_answers_kept
from autograder.grading import demonstrations
from autograder.grading.executor import Execution, apply_execution


class SubmissionProblem(Exception):
    """The submission cannot be graded as a notebook; the message says why, in one sentence."""


class ApplyExecution(NbGraderPreprocessor):
    """Stands where nbgrader's `Execute` stands: the outputs come from our sandbox."""

    def preprocess(self, nb: Any, resources: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        execution: Execution | None = resources.get("autograder_execution")
        if execution is None:  # pragma: no cover - SplitAutograde always provides it
            raise RuntimeError("no execution was provided for this notebook")
        apply_execution(nb, execution)
        return nb, resources


def _explain_unreadable(path: Path, exc: Exception) -> str:
    raw = path.read_bytes() if path.exists() else b""
    if not raw.strip():
        return "the notebook file is empty"
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as err:
        return f"the notebook is not valid JSON ({type(err).__name__}: {str(err)[:120]})"
    if not isinstance(data, dict) or "cells" not in data:
        return "the file is JSON but not a notebook (no 'cells')"
    major = data.get("nbformat")
    if major != 4:
        return f"the notebook has nbformat {major!r}; only version 4 notebooks can be graded"
    return f"the notebook could not be read ({type(exc).__name__}: {str(exc)[:160]})"


class SplitAutograde(Autograde):
    """One submission at a time: `prepare()` → (execute elsewhere) → `finish()`."""

    # nbgrader's traitlets (Autograde has no types): the steps, as classes, in order.
    autograde_preprocessors: list[Any]
    sanitize_preprocessors: list[Any]

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.force = True
        self.create_student = True
        self._executions: dict[str, Execution] = {}
        self.writer = FilesWriter(parent=self, config=self.config)
        self.exporter = self.exporter_class(parent=self, config=self.config)
        # nbconvert's own option: validate the notebook once after all of nbgrader's
        # preprocessors instead of after each (5-7 schema checks of the whole notebook per
        # step, ~1.5 ms each, a third of nbgrader's time here). Reading and writing the
        # notebook still validate it, and an invalid result still raises.
        self.exporter.optimistic_validation = True
        # nbgrader's scoring steps, with our outputs where it would execute a kernel.
        self.autograde_preprocessors = [ApplyExecution if pp is Execute else pp for pp in self.autograde_preprocessors]
        # Issue 11 (no-ops when nbgrader_config.py already added them): a copy-pasted answer
        # cell is graded instead of failing nbgrader's id checks, and the stored autograded
        # notebook (formgrader renders it for the logged-in instructor) carries no script.
        self.sanitize_preprocessors = with_pasted_answers_kept(self.sanitize_preprocessors)
        self.autograde_preprocessors = with_outputs_sanitised(self.autograde_preprocessors)

    def init_single_notebook_resources(self, notebook_filename: str) -> dict[str, Any]:
        resources: dict[str, Any] = super().init_single_notebook_resources(notebook_filename)
        execution = self._executions.get(os.path.basename(notebook_filename))
        if execution is not None:
            resources["autograder_execution"] = execution
        return resources

    def submitted_notebooks(self, lesson: str, student: str) -> list[Path]:
        self.coursedir.assignment_id = lesson
        self.coursedir.student_id = student
        self.init_notebooks()
        return [Path(p) for paths in self.assignments.values() for p in sorted(paths)]

    def prepare(self, lesson: str, student: str) -> list[Path]:
        """Record the submission and write its sanitized notebooks; return their paths."""
        notebooks = self.submitted_notebooks(lesson, student)
        self.notebooks = [str(p) for p in notebooks]
        self.init_destination(lesson, student)
        self.init_assignment(lesson, student)  # gradebook: student, submission, missing notebooks
        sanitized = []
        self.notes = []
        for path in [Path(p) for p in self.notebooks]:  # init_assignment drops unknown notebooks
            try:
                submitted = nbformat.read(path, as_version=4)
            except Exception as exc:  # noqa: BLE001 - every unreadable file gets one sentence
                raise SubmissionProblem(_explain_unreadable(path, exc)) from None
            self.notes += self._test_cell_changes(lesson, path.name, submitted)
            self._sanitizing = True
            self._init_preprocessors()
            try:
                BaseConverter.convert_single_notebook(self, str(path))
            except Exception as exc:  # noqa: BLE001 - nbgrader's checks raise many kinds: each is one sentence
                raise SubmissionProblem(
                    f"nbgrader could not check the notebook's cells ({type(exc).__name__}: {str(exc)[:200]})"
                ) from None
            sanitized.append(Path(self._format_dest(lesson, student)) / path.name)
        return sanitized

    def _test_cell_changes(self, lesson: str, filename: str, submitted: Any) -> list[str]:
        """Test cells the learner deleted or edited (nbgrader restores both; we say so)."""

        release_path = Path(self.coursedir.format_path(self.coursedir.release_directory, ".", lesson)) / filename
        if not release_path.exists():
            return []
        released = _released_test_cells(release_path)
        mine = {
            c.metadata.get("nbgrader", {}).get("grade_id"): c.source
            for c in submitted.cells
            if c.get("metadata", {}).get("nbgrader", {}).get("grade")
        }
        deleted = sorted(set(released) - set(mine))
        edited = sorted(g for g in released if g in mine and mine[g].strip() != released[g].strip())
        notes = []
        if deleted:
            notes.append(f"restored deleted test cell(s) {', '.join(deleted)}")
        if edited:
            notes.append(f"restored edited test cell(s) {', '.join(edited)}")
        return notes

    def finish(self, sanitized: Path, execution: Execution) -> Path:
        """Score the executed notebook with nbgrader's own preprocessors (writes the gradebook)."""
        self._executions[sanitized.name] = execution
        try:
            self._sanitizing = False
            self._init_preprocessors()
            BaseConverter.convert_single_notebook(self, str(sanitized))
        finally:
            self._sanitizing = True
            self._executions.pop(sanitized.name, None)
        return sanitized

    def record_zero(self, lesson: str, student: str) -> None:
        """A submission that could not be graded scores zero (and needs no manual grading)."""
        from nbgrader.api import Gradebook

        with Gradebook(self.coursedir.db_url, self.coursedir.course_id) as gb:
            gb.update_or_create_student(student)
            submission = gb.update_or_create_submission(lesson, student)
            for notebook in submission.notebooks:
                for grade in notebook.grades:
                    grade.auto_score = 0
                    grade.needs_manual_grade = False
            gb.db.commit()


_RELEASED: dict[tuple[str, int, int], dict[str, str]] = {}


def _released_test_cells(path: Path) -> dict[str, str]:
    """grade_id -> source of the release's test cells; read once per release file version."""
    from nbgrader import utils

    stat = path.stat()
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    if key not in _RELEASED:
        _RELEASED[key] = {
            c.metadata["nbgrader"]["grade_id"]: c.source
            for c in nbformat.read(path, as_version=4).cells
            if utils.is_grade(c) and not utils.is_solution(c)
        }
    return _RELEASED[key]


def sanitized_code_cells(
    path: Path, demos: frozenset[str] = frozenset()
) -> tuple[list[tuple[int, str]], frozenset[int]]:
    """The code cells to run, in order, and which of them are graded test cells.

    `demos`: ids of the lesson's demonstration cells; those that nothing after them needs are
    left out (see demonstrations.py). Plain JSON, not nbformat: nbgrader has just written and
    validated this file."""
    cells_json = json.loads(Path(path).read_text())["cells"]
    code = [(i, cell) for i, cell in enumerate(cells_json) if cell.get("cell_type") == "code"]
    sources = [
        "".join(c.get("source", "")) if isinstance(c.get("source"), list) else c.get("source", "") for _, c in code
    ]
    skip = demonstrations.skippable(
        [
            demonstrations.CodeCell(str(c.get("id", "")), src, bool(c.get("metadata", {}).get("nbgrader")))
            for (_, c), src in zip(code, sources, strict=True)
        ],
        demos,
    )
    cells, graded = [], set()
    for position, ((i, cell), source) in enumerate(zip(code, sources, strict=True)):
        if position in skip:
            continue
        cells.append((i, source))
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade"):
            graded.add(i)
    return cells, frozenset(graded)


def _text(source: str | list[str]) -> str:
    return "".join(source) if isinstance(source, list) else source
