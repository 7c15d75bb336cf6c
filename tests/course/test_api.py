"""nbgrader driven in-process with the course's configuration (autograder/course/api.py).

Whole nbgrader steps through it: tests/course/test_sample_pipeline.py and test_lessons_autograde.py.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from autograder.course import api
from autograder.course.layout import COURSE_ID, RELEASE_DIR, SOURCE_DIR
from autograder.paths import project_root


def test_load_config_is_the_repository_s_nbgrader_config():
    config = api.load_config()
    assert config.CourseDirectory.root == str(project_root())
    assert config.CourseDirectory.course_id == COURSE_ID
    assert config.CourseDirectory.source_directory == SOURCE_DIR
    assert config.CourseDirectory.release_directory == RELEASE_DIR
    # the course's own preprocessors are configured (issue 11): feedback never shows hidden tests
    feedback = [pp.__name__ for pp in config.GenerateFeedback.preprocessors]
    assert "RedactHiddenTests" in feedback and "SanitizeOutputs" in feedback


def test_load_config_re_roots_and_overrides(tmp_path):
    config = api.load_config(tmp_path / "course", "sqlite:///x.db", autograded_directory="graded-here")
    assert config.CourseDirectory.root == str((tmp_path / "course").absolute())
    assert config.CourseDirectory.db_url == "sqlite:///x.db"
    assert config.CourseDirectory.autograded_directory == "graded-here"
    assert config.CourseDirectory.course_id == COURSE_ID  # the rest is the repository's


def test_a_course_elsewhere_keeps_its_own_gradebook(tmp_path):
    course = api.course_api(tmp_path)
    assert course.coursedir.root == str(tmp_path.absolute())
    assert course.coursedir.db_url == f"sqlite:///{tmp_path / '.course' / 'gradebook.db'}"


def test_the_interpreter_s_bin_folder_comes_first_on_path(monkeypatch):
    bin_dir = str(Path(sys.executable).parent)
    monkeypatch.setenv("PATH", os.pathsep.join(["/usr/bin", bin_dir, "/bin"]))
    api._venv_on_path()
    assert os.environ["PATH"].split(os.pathsep) == [bin_dir, "/usr/bin", "/bin"]  # moved, not doubled
    api._venv_on_path()
    assert os.environ["PATH"].split(os.pathsep) == [bin_dir, "/usr/bin", "/bin"]


def test_checked_passes_success_through_and_raises_with_nbgrader_s_log():
    ok = {"success": True, "log": ""}
    assert api.checked(ok, "release") is ok
    with pytest.raises(api.NbgraderFailed, match=r"nbgrader autograde failed:\nboom\ntraceback here"):
        api.checked({"success": False, "error": "boom", "log": "traceback here"}, "autograde")
    with pytest.raises(api.NbgraderFailed, match="nbgrader release failed"):
        api.checked({}, "release")
