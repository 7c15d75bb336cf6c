"""`autograder instructor` — JupyterLab on the course root with nbgrader's instructor tools."""

from __future__ import annotations

import argparse
from pathlib import Path

from autograder.commands import _jupyter
from autograder.errors import SetupError
from autograder.paths import project_root

# Read by jupyter/instructor/nbgrader_config.py (first on JUPYTER_CONFIG_PATH in this view).
ENV_COURSE_ROOT = "AUTOGRADER_COURSE_ROOT"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "instructor",
        help="start JupyterLab on the course root with formgrader and Create Assignment",
        description=(
            "Start JupyterLab on the repository root (where nbgrader_config.py lives) with nbgrader's "
            "instructor tools: formgrader, Create Assignment and Validate. The database is handled "
            "as for `autograder lab`."
        ),
    )
    _jupyter.add_server_arguments(parser)
    parser.add_argument(
        "--course",
        type=Path,
        default=None,
        metavar="DIR",
        help="a course folder other than this repository (e.g. one graded with `autograder grade --course DIR`): "
        "JupyterLab opens on it and formgrader uses its submitted/ and autograded/ folders and its gradebook "
        "DIR/.course/gradebook.db, with this repository's nbgrader configuration",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    root = project_root()
    env: dict[str, str] = {}
    if args.course is not None and args.course.resolve() != root:
        if not args.course.is_dir():
            raise SetupError(f"The course folder {args.course} does not exist; pass the folder that holds submitted/.")
        root = args.course.resolve()
        env[ENV_COURSE_ROOT] = str(root)
    view = _jupyter.View(name="instructor", root_dir=root, make_target="instructor", env=env)
    return _jupyter.run(view, port=args.port, ip=args.ip, no_browser=args.no_browser)
