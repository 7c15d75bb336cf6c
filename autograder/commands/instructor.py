"""`autograder instructor` — JupyterLab on the course root with nbgrader's instructor tools."""

from __future__ import annotations

import argparse

from autograder.commands import _jupyter
from autograder.db import url as urls


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
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    view = _jupyter.View(name="instructor", root_dir=urls.project_root(), make_target="instructor")
    return _jupyter.run(view, port=args.port, ip=args.ip, no_browser=args.no_browser)
