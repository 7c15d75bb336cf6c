"""`autograder lab` — the learner's JupyterLab, opened on notebooks/."""

from __future__ import annotations

import argparse

from autograder.commands import _jupyter
from autograder.paths import project_root


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "lab",
        help="start the learner JupyterLab on notebooks/ with the course database",
        description=(
            "Start JupyterLab on notebooks/ with learner tools only (nbgrader's Validate button; no "
            "formgrader, no Create Assignment, no news pop-up). Every kernel gets DATABASE_URL: the "
            "server in DATABASE_URL if set, else the bundled PostgreSQL, which is started now and "
            "stopped when JupyterLab stops (unless something else, e.g. pytest, still uses it). "
            "Ctrl-C stops both."
        ),
    )
    _jupyter.add_server_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    view = _jupyter.View(name="learner", root_dir=project_root() / "notebooks", make_target="lab")
    return _jupyter.run(view, port=args.port, ip=args.ip, no_browser=args.no_browser)
