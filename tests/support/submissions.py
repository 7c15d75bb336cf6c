"""Put a submission where nbgrader looks for it: submitted/<student>/<lesson>/<lesson>.ipynb."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat


def submit(course_root: Path, student: str, lesson: str, notebook: nbformat.NotebookNode | bytes | str | Path) -> Path:
    """A notebook is written as nbformat writes it; bytes and str are written verbatim (broken
    files too); a Path is copied. Replaces an earlier submission; returns the file's path."""
    folder = Path(course_root) / "submitted" / student / lesson
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{lesson}.ipynb"
    if isinstance(notebook, Path):
        shutil.copyfile(notebook, path)
    elif isinstance(notebook, bytes):
        path.write_bytes(notebook)
    elif isinstance(notebook, str):
        path.write_text(notebook)
    else:
        nbformat.write(notebook, path)
    return path
