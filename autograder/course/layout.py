"""Where things are: nbgrader's course layout mapped onto this repository.

nbgrader thinks in `source/<assignment>/` and `release/<assignment>/`; this
course keeps lessons in `solutions/<lesson>/<lesson>.ipynb` (the only place they
are written) and ships `notebooks/<lesson>/` (generated, committed).
"""

from __future__ import annotations

from pathlib import Path

from autograder.db.url import state_dir
from autograder.paths import project_root

SOURCE_DIR = "solutions"
RELEASE_DIR = "notebooks"
COURSE_ID = "async-sqlalchemy-course"


def lessons(root: Path | None = None) -> list[str]:
    """Lesson ids, in course order: every folder of solutions/ holding its notebook."""
    base = (root or project_root()) / SOURCE_DIR
    return sorted(p.name for p in base.iterdir() if p.is_dir() and (p / f"{p.name}.ipynb").exists())


def gradebook_url(root: Path | None = None) -> str:
    """The instructor's gradebook lives with the other local state, never in git."""
    folder = state_dir() if root is None else root / ".course"
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'gradebook.db'}"
