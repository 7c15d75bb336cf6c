"""The Python API every grading command is a thin shim over (like Otter-Grader's verb packages).

    from autograder.grading.api import grade_course, grade_notebook
    report = grade_course(Path("my-course"), GradeOptions(workers=4))
    result = grade_notebook(Path("mine.ipynb"), "00_foundations")

Problems a person can fix raise `SetupError` (one sentence, what to do).
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from autograder.course.layout import lessons
from autograder.errors import SetupError
from autograder.grading.options import GradeOptions
from autograder.grading.results import SubmissionResult
from autograder.grading.run import GradeRun, RunReport

__all__ = ["GradeOptions", "RunReport", "grade_course", "grade_notebook"]

ONE_NOTEBOOK_STUDENT = "submission"  # the student of grade_notebook's throwaway course


def grade_course(
    course_root: Path,
    options: GradeOptions | None = None,
    on_progress: Callable[[SubmissionResult], None] | None = None,
    on_start: Callable[[int], None] | None = None,
) -> RunReport:
    """Grade <course_root>/submitted/<student>/<lesson>/ into the gradebook and exports/.

    `on_start(n)` is called once the course's lock is held, with the number of submissions
    to grade; `on_progress(result)` after each one (both on the calling thread)."""
    root = Path(course_root).absolute()
    options = options or GradeOptions()
    if not (root / "submitted").is_dir():
        raise SetupError(
            f"There is no submitted/ folder in {root}; collect submissions into "
            "submitted/<student>/<lesson>/ (nbgrader's layout) or pass --course."
        )
    if options.workers < 1:
        raise SetupError("--workers must be at least 1.")
    return GradeRun(root, options, on_progress=on_progress, on_start=on_start).run()


def grade_notebook(path: Path, lesson: str, options: GradeOptions | None = None) -> SubmissionResult:
    """Grade one notebook against a lesson's hidden tests, in a throwaway course folder — the
    same code path as a class run, so it is graded exactly as it would be there."""
    known = lessons()
    if lesson not in known:
        raise SetupError(f"There is no lesson {lesson!r}; choose one of: {', '.join(known)}.")
    path = Path(path)
    if not path.is_file():
        raise SetupError(f"{path} is not a file.")
    options = dataclasses.replace(options or GradeOptions(), lessons=[lesson], students=None, workers=1)
    with tempfile.TemporaryDirectory(prefix="grade-one-") as tmp:
        root = Path(tmp)
        folder = root / "submitted" / ONE_NOTEBOOK_STUDENT / lesson
        folder.mkdir(parents=True)
        shutil.copyfile(path, folder / f"{lesson}.ipynb")
        report = GradeRun(root, options).run()
        if not report.results:
            raise SetupError("The notebook was not graded (interrupted).")
        return report.results[0]
