"""`autograder release --learner-copy DIR`: what a graded course hands learners (autograder/release.py)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from autograder import release
from autograder.errors import SetupError
from tests.cli_support import AUTOGRADER, REPO, cli_env


def test_a_learner_copy_holds_the_release_and_offers_checks_only_through_a_checker(tmp_path):
    dest = tmp_path / "course"
    result = subprocess.run(
        [*AUTOGRADER, "release", "--learner-copy", str(dest)], env=cli_env(), capture_output=True, text=True, cwd=REPO
    )
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in dest.iterdir()) == sorted(release.LEARNER_FILES)
    everything = [p for p in dest.rglob("*") if p.is_file()]
    assert not [p for p in everything if {"solutions", "tests", "benchmarks", ".git", ".course"} & set(p.parts)]
    for notebook in (p for p in everything if p.suffix == ".ipynb"):
        assert "BEGIN HIDDEN TESTS" not in notebook.read_text() and "BEGIN SOLUTION" not in notebook.read_text()
    assert sorted(p.name for p in (dest / "notebooks").iterdir()) == sorted(
        p.name for p in (REPO / "notebooks").iterdir()
    )

    # The copy's own package (not this checkout's) decides what Check my work can do there.
    probe = (
        "from pathlib import Path; import autograder.labcheck.remote as r; "
        "print(r.__file__); print(type(r.service_for(Path('.'))).__name__)"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("COURSE_CHECK_URL", "PYTHONPATH")}
    shown = subprocess.run(
        [sys.executable, "-c", probe], env={**env, "PYTHONPATH": str(dest)}, cwd=dest, capture_output=True, text=True
    )
    assert shown.returncode == 0, shown.stderr
    module_file, chosen = shown.stdout.split()
    assert module_file.startswith(str(dest)) and chosen == "Unavailable"


def test_a_learner_copy_never_lands_on_existing_files_or_inside_the_course(tmp_path):
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "mine.ipynb").write_text("{}")
    with pytest.raises(SetupError, match="not an empty folder"):
        release.learner_copy(occupied)
    assert [p.name for p in occupied.iterdir()] == ["mine.ipynb"]
    with pytest.raises(SetupError, match="inside the course checkout"):
        release.learner_copy(REPO / "learner-copy-here")
    assert not (REPO / "learner-copy-here").exists()
