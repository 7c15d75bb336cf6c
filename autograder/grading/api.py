"""The Python API every grading command is a thin shim over (like Otter-Grader's verb packages).

    from autograder.grading.api import grade_course, grade_notebook
    report = grade_course(Path("my-course"), GradeOptions(workers=4))
    result = grade_notebook(Path("mine.ipynb"), "00_foundations")

Problems a person can fix raise `SetupError` (one sentence, what to do).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import logging
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from autograder.course.layout import lessons
from autograder.db.url import state_dir
from autograder.errors import SetupError
from autograder.grading import gradebook
from autograder.grading.layout import ASSIGNMENTS_STATE, RELEASE_FOR_GRADEBOOK, RunPaths
from autograder.grading.options import GradeOptions
from autograder.grading.results import SubmissionResult
from autograder.grading.run import GradeRun, RunReport

__all__ = ["GradeOptions", "RunReport", "grade_course", "grade_notebook"]

ONE_NOTEBOOK_STUDENT = "submission"  # the student of grade_notebook's throwaway course
PREPARED_DIR = "prepared-lessons"  # under the state dir: one lesson's gradebook, made once

log = logging.getLogger(__name__)


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
        seed_prepared_lesson(root, lesson)
        shutil.copyfile(path, folder / f"{lesson}.ipynb")
        report = GradeRun(root, options).run()
        if not report.results:
            raise SetupError("The notebook was not graded (interrupted).")
        return report.results[0]


# The files of a course root that hold a lesson's nbgrader release: the gradebook with its
# cells, the release nbgrader made from the source, the digest it was made from, the source.
def _prepared_files(root: Path, lesson: str) -> list[Path]:
    return [
        root / ".course" / "gradebook.db",
        root / ASSIGNMENTS_STATE,
        root / RELEASE_FOR_GRADEBOOK / lesson,
        root / "solutions" / lesson,
    ]


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes, or the process dies
        yield


def seed_prepared_lesson(root: Path, lesson: str) -> None:
    """Give a throwaway course the lesson's gradebook without making it again.

    Releasing a lesson into a new gradebook (nbgrader's generate_assignment: ~35 SQLite commits
    and three conversions) costs ~1-1.5 s, the largest part of grading one notebook. It is made
    once per lesson under the state dir and copied in; `ensure_assignments` then finds it up to
    date. When the lesson's source changes, the copied digest no longer matches, the run
    releases it again as before, and the next call here rebuilds the prepared copy. Any
    failure only costs the time: the run makes the gradebook itself."""
    prepared = state_dir() / PREPARED_DIR / lesson
    try:
        with _locked(prepared.with_name(f"{lesson}.lock")):
            if not _up_to_date(prepared, lesson):
                _prepare(prepared, lesson)
            for source in _prepared_files(prepared, lesson):
                target = root / source.relative_to(prepared)
                target.parent.mkdir(parents=True, exist_ok=True)
                if source.is_dir():
                    shutil.copytree(source, target)
                else:
                    shutil.copyfile(source, target)
    except Exception as exc:  # noqa: BLE001 - a speed-up only: the run releases the lesson itself
        log.warning("could not use the prepared gradebook of %s (%s); releasing it for this run", lesson, exc)
        for leftover in _prepared_files(root, lesson):
            shutil.rmtree(leftover, ignore_errors=True) if leftover.is_dir() else leftover.unlink(missing_ok=True)


def _up_to_date(prepared: Path, lesson: str) -> bool:
    import json

    from autograder.grading.results import checksum
    from autograder.paths import project_root

    if not all(p.exists() for p in _prepared_files(prepared, lesson)):
        return False
    state = json.loads((prepared / ASSIGNMENTS_STATE).read_text())
    return bool(state.get(lesson) == checksum(project_root() / "solutions" / lesson))


def _prepare(prepared: Path, lesson: str) -> None:
    building = prepared.with_name(f"{lesson}.building")
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir(parents=True)
    api = gradebook.api_for_run(RunPaths.for_this_process(building))
    gradebook.ensure_assignments(api, building, {lesson})
    shutil.rmtree(prepared, ignore_errors=True)
    building.rename(prepared)
