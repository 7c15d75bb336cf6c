"""nbgrader's course layout mapped onto this repository (autograder/course/layout.py)."""

from __future__ import annotations

from autograder.course import layout
from autograder.db import url as urls
from autograder.paths import project_root


def test_lessons_are_the_solution_folders_holding_their_notebook_in_order(tmp_path):
    solutions = tmp_path / layout.SOURCE_DIR
    for name in ("02_b", "00_a", "01_c"):
        (solutions / name).mkdir(parents=True)
        (solutions / name / f"{name}.ipynb").write_text("{}")
    (solutions / "03_no_notebook").mkdir()
    (solutions / "04_other_name").mkdir()
    (solutions / "04_other_name" / "notes.ipynb").write_text("{}")
    (solutions / "05_a_file.ipynb").write_text("{}")
    assert layout.lessons(tmp_path) == ["00_a", "01_c", "02_b"]


def test_the_course_s_own_lessons_are_found():
    found = layout.lessons()
    assert found == sorted(found) and "00_foundations" in found
    assert all((project_root() / "solutions" / name / f"{name}.ipynb").exists() for name in found)


def test_the_gradebook_lives_in_the_course_state_folder(tmp_path, monkeypatch):
    url = layout.gradebook_url(tmp_path)
    assert url == f"sqlite:///{tmp_path / '.course' / 'gradebook.db'}"
    assert (tmp_path / ".course").is_dir()  # made, so SQLite can create the file
    monkeypatch.setenv(urls.ENV_DATA_DIR, str(tmp_path / "state"))
    assert layout.gradebook_url() == f"sqlite:///{tmp_path / 'state' / 'gradebook.db'}"
