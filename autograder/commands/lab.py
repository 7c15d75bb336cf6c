"""`autograder lab` — the learner's JupyterLab, opened on their own workspace (a copy of notebooks/)."""

from __future__ import annotations

import argparse
from pathlib import Path

from autograder import workspace
from autograder.commands import _jupyter


def add_workspace_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--workspace",
        type=Path,
        default=None,
        metavar="DIR",
        help=f"the learner's workspace folder (default: ${workspace.ENV_WORKSPACE} if set, else workspace/ "
        "in the course checkout)",
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "lab",
        help="start the learner JupyterLab on your workspace (a copy of notebooks/) with the course database",
        description=(
            "Start JupyterLab on your workspace, a git-ignored copy of the course release notebooks/ "
            f"(workspace/ in the checkout, or ${workspace.ENV_WORKSPACE}, or --workspace), opened on its "
            "START_HERE page. The first start copies the release; later starts add new lessons and update "
            "files you have not edited, and never overwrite one you have (a newer release of it is put "
            "beside it). Learner tools only (nbgrader's Validate button; no formgrader, no Create "
            "Assignment, no news pop-up). Every kernel gets DATABASE_URL: the server in DATABASE_URL if "
            "set, else the bundled PostgreSQL, which is started now and stopped when JupyterLab stops "
            "(unless something else, e.g. pytest, still uses it). The URL to open, with its token, is "
            "printed once JupyterLab is ready. Ctrl-C stops both."
        ),
    )
    _jupyter.add_server_arguments(parser)
    add_workspace_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    _jupyter.check_port(args.ip, args.port, "lab")  # before touching the workspace
    folder = workspace.workspace_dir(args.workspace)
    report = workspace.sync_workspace(workspace.release_dir(), folder)
    for line in report.notes():
        _jupyter.note(line)
    view = _jupyter.View(
        name="learner",
        root_dir=folder,
        make_target="lab",
        start_file=workspace.START_PAGE,
    )
    return _jupyter.run(view, port=args.port, ip=args.ip, no_browser=args.no_browser)
