"""After the pipeline, main thread: nbgrader's feedback HTML for each graded submission
(verdicts only, never hidden test code: see the GenerateFeedback preprocessors)."""

from __future__ import annotations

import logging
from pathlib import Path

from autograder.course.api import course_api
from autograder.grading.gradebook import converters_stay_put
from autograder.grading.layout import RELEASE_FOR_GRADEBOOK
from autograder.grading.results import SubmissionResult

log = logging.getLogger(__name__)


def write_feedback(root: Path, results: list[SubmissionResult]) -> None:
    api = course_api(root=root, release_directory=RELEASE_FOR_GRADEBOOK)
    with converters_stay_put():
        for result in results:
            if result.status != "graded":
                continue
            try:
                api.generate_feedback(result.lesson, result.student, force=True)
            except Exception as exc:  # noqa: BLE001 - one notebook's feedback never stops the others'
                log.warning("no feedback for %s/%s: %s", result.student, result.lesson, exc)
