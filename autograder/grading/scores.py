"""exports/scores.csv: every result on disk (this run's and earlier ones'), one row each."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from autograder.grading import exporters
from autograder.grading.layout import EXPORTS_DIR
from autograder.grading.results import SubmissionResult

log = logging.getLogger(__name__)


def write_scores_csv(root: Path) -> Path:
    exports = root / EXPORTS_DIR
    rows = []
    for path in sorted(exports.glob("*/*/result.json")):
        try:
            rows.append(SubmissionResult.from_json(json.loads(path.read_text())))
        except (OSError, ValueError, TypeError) as exc:
            log.warning("scores.csv leaves out %s, which cannot be read: %s", path, exc)
    target = exports / "scores.csv"
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(".scores.csv.tmp")
    tmp.write_text(exporters.scores_csv(rows))
    os.replace(tmp, target)
    return target
