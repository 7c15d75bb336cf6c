"""`autograder grade-one NOTEBOOK --lesson L` — grade one notebook, print its results as JSON.

No course folder needed: `grading.api.grade_notebook` makes a throwaway one around the
notebook and runs the class grader on it, so a single notebook is graded exactly as
it would be in a class run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from autograder.commands.grade import add_grading_options, options_from
from autograder.grading import startup


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "grade-one",
        help="grade a single notebook (no course folder) and print the results as JSON",
        description=(
            "Grade one notebook against a lesson's hidden tests, sandboxed, with a database of "
            "its own, and print the results as JSON on stdout (exit 0 whatever the score)."
        ),
    )
    parser.add_argument("notebook", type=Path, help="the .ipynb file to grade")
    parser.add_argument("--lesson", required=True, metavar="ID", help="the lesson it answers, e.g. 00_foundations")
    parser.add_argument(
        "--format",
        choices=("result", "gradescope", "exercism"),
        default="result",
        help="result (ours, default), gradescope (results.json) or exercism (results.json v3)",
    )
    add_grading_options(parser)
    parser.set_defaults(func=cmd_grade_one)


def cmd_grade_one(args: argparse.Namespace) -> int:
    startup.begin()  # before the heavy imports below (already done when run from the CLI)
    from autograder.grading import exporters, speedups
    from autograder.grading.api import grade_notebook

    result = grade_notebook(args.notebook.absolute(), args.lesson, options_from(args))
    payload = {
        "result": result.to_json(),
        "gradescope": exporters.gradescope(result),
        "exercism": exporters.exercism(result),
    }[args.format]
    json.dump(payload, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
    speedups.freeze_gc()  # for the exit
    return 0
