"""Where things are: nbgrader's course layout mapped onto this repository.

nbgrader thinks in `source/<assignment>/` and `release/<assignment>/`; this
course keeps lessons in `solutions/<lesson>/<lesson>.ipynb` (the only place they
are written) and ships `notebooks/<lesson>/` (generated, committed).
"""

from __future__ import annotations

import os
from pathlib import Path

from autograder.db.url import state_dir
from autograder.paths import project_root

SOURCE_DIR = "solutions"
RELEASE_DIR = "notebooks"
COURSE_ID = "async-sqlalchemy-course"
# nbgrader's exchange (release -> fetch -> submit -> collect -> feedback). A workshop hub sets it
# to the directory its learners share; otherwise it is the instructor's own, with the other state.
ENV_EXCHANGE = "COURSE_EXCHANGE"


def lessons(root: Path | None = None) -> list[str]:
    """Lesson ids, in course order: every folder of solutions/ holding its notebook."""
    base = (root or project_root()) / SOURCE_DIR
    return sorted(p.name for p in base.iterdir() if p.is_dir() and (p / f"{p.name}.ipynb").exists())


def exchange_dir() -> Path:
    """nbgrader's exchange root, created if missing: for a missing one nbgrader only logs
    "Unwritable directory" and cannot release a lesson into it."""
    configured = os.environ.get(ENV_EXCHANGE, "").strip()
    folder = Path(configured) if configured else state_dir() / "exchange"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def gradebook_url(root: Path | None = None) -> str:
    """The instructor's gradebook lives with the other local state, never in git."""
    folder = state_dir() if root is None else root / ".course"
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'gradebook.db'}"
