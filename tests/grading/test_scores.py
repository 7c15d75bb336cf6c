"""exports/scores.csv: one row per result on disk, earlier runs' included; unreadable ones logged."""

from __future__ import annotations

import json
import logging

from autograder.grading import exporters
from autograder.grading.results import SubmissionResult
from autograder.grading.scores import write_scores_csv


def _result(root, lesson, student, score):
    path = root / "exports" / lesson / student / "result.json"
    path.parent.mkdir(parents=True)
    path.write_text(
        json.dumps(SubmissionResult(student, lesson, "graded", "graded", score=score, max_score=2.0).to_json())
    )


def test_every_result_on_disk_is_a_row_and_an_unreadable_one_is_logged(tmp_path, caplog):
    _result(tmp_path, "00_foundations", "ada", 2.0)
    _result(tmp_path, "01_session_dependency", "bob", 1.0)
    broken = tmp_path / "exports" / "00_foundations" / "cy" / "result.json"
    broken.parent.mkdir(parents=True)
    broken.write_text("{")
    with caplog.at_level(logging.WARNING, logger="autograder.grading.scores"):
        target = write_scores_csv(tmp_path)
    rows = target.read_text().splitlines()
    assert rows[0] == ",".join(exporters.CSV_FIELDS)
    assert [r.split(",")[:3] for r in rows[1:]] == [
        ["ada", "00_foundations", "2.0"],
        ["bob", "01_session_dependency", "1.0"],
    ]
    assert "scores.csv leaves out" in caplog.text and str(broken) in caplog.text
    assert not list(target.parent.glob(".*")), "written through a temporary file, then renamed"
