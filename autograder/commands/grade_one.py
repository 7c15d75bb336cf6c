"""`autograder grade-one NOTEBOOK --lesson L` — grade one notebook, print its results as JSON.

No course folder needed: a throwaway one is made around the notebook and the
class grader runs on it — the same code path as `autograder grade`, so a single
notebook is graded exactly as it would be in a class run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from autograder.commands.grade import add_grading_options, options_from, out_of_the_collectors_sight
from autograder.course.layout import lessons
from autograder.errors import SetupError
from autograder.grading import startup

if TYPE_CHECKING:
    from autograder.grading.results import SubmissionResult

STUDENT = "submission"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "grade-one",
        help="grade a single notebook (no course folder) and print the results as JSON",
        description=("Grade one notebook against a lesson's hidden tests, sandboxed, with a database of "
                     "its own, and print the results as JSON on stdout (exit 0 whatever the score)."),
    )
    parser.add_argument("notebook", type=Path, help="the .ipynb file to grade")
    parser.add_argument("--lesson", required=True, metavar="ID", help="the lesson it answers, e.g. 00_foundations")
    parser.add_argument("--format", choices=("result", "gradescope", "exercism"), default="result",
                        help="result (ours, default), gradescope (results.json) or exercism (results.json v3)")
    add_grading_options(parser)
    parser.set_defaults(func=cmd_grade_one)


def grade_one(notebook: Path, lesson: str, options) -> SubmissionResult:
    if lesson not in lessons():
        raise SetupError(f"There is no lesson {lesson!r}; choose one of: {', '.join(lessons())}.")
    if not notebook.is_file():
        raise SetupError(f"{notebook} is not a file.")
    startup.begin()  # before the heavy imports below (already done when run from the CLI)
    from autograder.grading.run import GradeRun

    with tempfile.TemporaryDirectory(prefix="grade-one-") as tmp:
        root = Path(tmp)
        folder = root / "submitted" / STUDENT / lesson
        folder.mkdir(parents=True)
        shutil.copyfile(notebook, folder / f"{lesson}.ipynb")
        options.lessons = [lesson]
        options.workers = 1
        report = GradeRun(root, options).run()
        if not report.results:
            raise SetupError("The notebook was not graded (interrupted).")
        return report.results[0]


def cmd_grade_one(args: argparse.Namespace) -> int:
    from autograder.grading import exporters

    result = grade_one(args.notebook.absolute(), args.lesson, options_from(args))
    payload = {"result": result.to_json(), "gradescope": exporters.gradescope(result),
               "exercism": exporters.exercism(result)}[args.format]
    json.dump(payload, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
    out_of_the_collectors_sight()  # for the exit
    return 0
