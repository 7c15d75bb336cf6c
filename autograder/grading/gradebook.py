"""nbgrader's side of a run: its API rooted at the course, the lessons it knows, the grades it wrote.

Every folder nbgrader uses is `CourseDirectory.root` (absolute, set by `course_api`) joined
with a directory name (`format_path`), and the gradebook is an absolute SQLite URL: nothing
depends on the working directory. nbgrader's converters still `chdir` into the root while
they run (`BaseConverter.start`, for generate_assignment and generate_feedback);
`converters_stay_put` turns that off, so no thread of a run ever sees the cwd move.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autograder.course.api import checked, course_api
from autograder.grading.layout import ASSIGNMENTS_STATE, RELEASE_FOR_GRADEBOOK, RunPaths
from autograder.grading.results import checksum, write_json_atomically
from autograder.paths import project_root

if TYPE_CHECKING:
    from nbgrader.apps import NbGraderAPI

log = logging.getLogger(__name__)


def api_for_run(paths: RunPaths) -> NbGraderAPI:
    """nbgrader rooted at the course; autograded notebooks go to the run's staging first."""
    return course_api(
        root=paths.root,
        release_directory=RELEASE_FOR_GRADEBOOK,
        autograded_directory=os.path.relpath(paths.staged_autograded, paths.root),
    )


def ensure_assignments(api: NbGraderAPI, root: Path, lessons: set[str]) -> None:
    """The gradebook must know each lesson's cells; (re)build them when the source changed."""
    state_file = root / ASSIGNMENTS_STATE
    state = json.loads(state_file.read_text()) if state_file.exists() else {}
    for lesson in sorted(lessons):
        source = project_root() / "solutions" / lesson / f"{lesson}.ipynb"
        digest = checksum(source.parent)
        if state.get(lesson) == digest and (root / RELEASE_FOR_GRADEBOOK / lesson).exists():
            continue
        log.info("releasing %s into the gradebook of %s", lesson, root)
        if root != project_root():
            target = root / "solutions" / lesson
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(source.parent, target)
        with converters_stay_put():
            checked(api.generate_assignment(lesson, force=True, create=True), f"generate_assignment {lesson}")
        state[lesson] = digest
    write_json_atomically(state_file, state)


def grades(api: NbGraderAPI, lesson: str, student: str) -> dict[str, tuple[float, float]]:
    """grade_id -> (score, max score), as nbgrader's scoring wrote them."""
    from nbgrader.api import Gradebook

    with Gradebook(api.coursedir.db_url, api.coursedir.course_id) as gb:
        nb = gb.find_submission_notebook(lesson, lesson, student)
        return {g.name: (float(g.score or 0.0), float(g.max_score)) for g in nb.grades}


def grade_cells(api: NbGraderAPI, lesson: str) -> list[tuple[str, float]]:
    """(grade_id, max score) of the lesson's test cells, by name; none if nbgrader does not know it."""
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(api.coursedir.db_url, api.coursedir.course_id) as gb:
        try:
            cells = gb.find_notebook(lesson, lesson).grade_cells
        except MissingEntry:
            return []
        return [(cell.name, float(cell.max_score)) for cell in sorted(cells, key=lambda c: c.name)]


class _OsWithoutChdir:
    """`os` as nbgrader's converter module sees it while a run is active: chdir does nothing."""

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    @staticmethod
    def chdir(path: object) -> None:
        log.debug("nbgrader asked to chdir to %s; staying in %s", path, os.getcwd())


_STAY_PUT_LOCK = threading.Lock()
_STAY_PUT_USERS = 0


@contextlib.contextmanager
def converters_stay_put() -> Iterator[None]:
    """While active, nbgrader's converters run without changing the process's working directory.
    Nested and concurrent uses are counted; the last one out puts `os` back."""
    global _STAY_PUT_USERS
    from nbgrader.converters import base

    with _STAY_PUT_LOCK:
        if _STAY_PUT_USERS == 0:
            base.os = _OsWithoutChdir()
        _STAY_PUT_USERS += 1
    try:
        yield
    finally:
        with _STAY_PUT_LOCK:
            _STAY_PUT_USERS -= 1
            if _STAY_PUT_USERS == 0:
                base.os = os
