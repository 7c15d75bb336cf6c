"""nbgrader, driven in-process with this course's configuration.

Everything that runs nbgrader (release, the autograde tests, instructors'
scripts) goes through `course_api()`, so the course layout and the custom
preprocessors in `nbgrader_config.py` apply everywhere, and a course copied to
another folder (a test's temp dir, a grading run) is graded the same way.
Running in-process also saves nbgrader's ~2.5 s CLI start-up per call.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

from autograder.paths import project_root


class NbgraderFailed(RuntimeError):
    """An nbgrader step reported failure; the message carries its log."""


def load_config(root: Path | None = None, db_url: str | None = None, **course_dirs: str) -> Config:
    """The repository's nbgrader_config.py, re-rooted at `root` (default: the repo).

    `course_dirs` override CourseDirectory settings, e.g. autograded_directory="...".
    """
    repo = project_root()
    config = PyFileConfigLoader("nbgrader_config.py", path=str(repo)).load_config()
    if root is not None:
        config.CourseDirectory.root = str(Path(root).absolute())
    if db_url is not None:
        config.CourseDirectory.db_url = db_url
    for key, value in course_dirs.items():
        setattr(config.CourseDirectory, key, value)
    return config


def _venv_on_path() -> None:
    """nbgrader shells out to `alembic` (and kernels to `python`) by name: make sure the
    interpreter's own bin folder comes first even when the venv was not activated
    (`.venv/bin/python -m ...`, make, CI)."""
    bin_dir = str(Path(sys.executable).parent)
    parts = os.environ.get("PATH", "").split(os.pathsep)
    if parts[0] != bin_dir:
        os.environ["PATH"] = os.pathsep.join([bin_dir, *[p for p in parts if p != bin_dir]])


def course_api(root: Path | None = None, db_url: str | None = None, **course_dirs: str):
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    _venv_on_path()
    if db_url is None and root is not None and Path(root).resolve() != project_root():
        # A course folder elsewhere (a test, grade-one) keeps its own gradebook.
        from autograder.course.layout import gradebook_url

        db_url = gradebook_url(Path(root))
    config = load_config(root, db_url, **course_dirs)
    coursedir = CourseDirectory(config=config)
    api = NbGraderAPI(coursedir=coursedir, config=config)
    api.log.setLevel(logging.WARNING)
    return api


def checked(result: dict, what: str) -> dict:
    """Raise with nbgrader's own log when a step failed (nbgrader reports, never raises)."""
    if not result.get("success"):
        detail = (result.get("error") or "") + "\n" + (result.get("log") or "")
        raise NbgraderFailed(f"nbgrader {what} failed:\n{detail.strip()}")
    return result
