"""record: the staged notebook moved into place, the exports, and result.json last."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from autograder.grading import results
from autograder.grading.job import SubmissionJob
from autograder.grading.layout import RunPaths
from autograder.grading.stages.record import record

# The module (the package's `record` is the stage function itself).
record_module = importlib.import_module("autograder.grading.stages.record")

LESSON = "00_foundations"


def _run(root: Path) -> SimpleNamespace:
    return SimpleNamespace(paths=RunPaths(root, pid=4242))  # record reads run.paths only


def _job(root: Path, score: float) -> SubmissionJob:
    job = SubmissionJob("ada", LESSON, root / "submitted" / "ada" / LESSON, checksum=f"sum-{score}")
    job.result = results.SubmissionResult(
        "ada",
        LESSON,
        "graded",
        "graded: 1 of 1 tests passed",
        score=score,
        max_score=1.0,
        tests=[results.TestResult("test_x", score, 1.0, "pass")],
        checksum=job.checksum,
    )
    return job


def _stage(paths: RunPaths, text: str) -> None:
    staged = paths.staged_autograded / "ada" / LESSON
    staged.mkdir(parents=True)
    (staged / f"{LESSON}.ipynb").write_text(text)


def test_the_staged_notebook_replaces_the_old_one_and_result_json_is_written_last(tmp_path, monkeypatch):
    run = _run(tmp_path)
    final = run.paths.autograded(LESSON, "ada")
    final.mkdir(parents=True)
    (final / f"{LESSON}.ipynb").write_text("old")
    _stage(run.paths, "new")
    written = []
    real_write = record_module.write_json_atomically

    def write(path, data):
        written.append(path.name)
        real_write(path, data)

    monkeypatch.setattr(record_module, "write_json_atomically", write)
    record(_job(tmp_path, 1.0), run)
    assert (final / f"{LESSON}.ipynb").read_text() == "new"
    assert not (run.paths.staged_autograded / "ada" / LESSON).exists()
    assert not final.with_name(f".{LESSON}.old").exists()
    assert written == ["results.gradescope.json", "results.exercism.json", "result.json"]
    assert json.loads(run.paths.result_file(LESSON, "ada").read_text())["checksum"] == "sum-1.0"


def test_an_export_that_fails_leaves_the_old_result_json_standing(tmp_path, monkeypatch):
    run = _run(tmp_path)
    record(_job(tmp_path, 0.0), run)  # an earlier, complete result
    _stage(run.paths, "new")

    def broken(result):
        raise OSError("disk full")

    monkeypatch.setattr(record_module.exporters, "exercism", broken)
    with pytest.raises(OSError, match="disk full"):
        record(_job(tmp_path, 1.0), run)
    # result.json (what marks a submission graded) is still the old, complete one: the next
    # run sees a different checksum and grades it again.
    assert json.loads(run.paths.result_file(LESSON, "ada").read_text())["checksum"] == "sum-0.0"


def test_a_submission_that_was_not_graded_has_no_notebook_to_move(tmp_path):
    run = _run(tmp_path)
    record(_job(tmp_path, 0.0), run)
    assert not (tmp_path / "autograded").exists()
    assert run.paths.result_file(LESSON, "ada").exists()
