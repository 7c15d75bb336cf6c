"""`autograder workspace` — the learner's workspace: bring it up to date, or start a lesson afresh."""

from __future__ import annotations

import argparse

from autograder import workspace
from autograder.commands.lab import add_workspace_argument


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "workspace",
        help="sync your workspace with the release, or start a lesson afresh (`workspace reset LESSON`)",
        description=(
            "Your workspace is your own copy of the course release notebooks/ (workspace/ in the checkout, "
            f"or ${workspace.ENV_WORKSPACE}); `autograder lab` opens JupyterLab on it and syncs it first. "
            "Nothing here ever deletes your work."
        ),
    )
    verbs = parser.add_subparsers(dest="verb", metavar="<verb>", required=True)

    sync = verbs.add_parser(
        "sync",
        help="what `autograder lab` does first: copy new lessons, update files you have not edited",
        description=(
            "Copy missing files and new lessons from the release, replace files you have not edited when the "
            "release changed them, and put a newer release of a file you edited beside it "
            "(<name>.release-<date>.ipynb). Prints what it did."
        ),
    )
    add_workspace_argument(sync)
    sync.set_defaults(func=run_sync)

    reset = verbs.add_parser(
        "reset",
        help="start a lesson afresh: your copy moves to backups/ in the workspace, a fresh one is copied",
        description=(
            "Move your copy of LESSON to backups/<lesson>-<date>-<time>/ in the workspace (never deleted) and "
            "copy a fresh one from the release. Close the lesson's tab in JupyterLab first."
        ),
    )
    reset.add_argument("lesson", metavar="LESSON", help="the lesson folder, e.g. 01_session_dependency")
    add_workspace_argument(reset)
    reset.set_defaults(func=run_reset)


def run_sync(args: argparse.Namespace) -> int:
    folder = workspace.workspace_dir(args.workspace)
    report = workspace.sync_workspace(workspace.release_dir(), folder)
    for line in report.notes() or [f"your workspace {folder} is up to date ({len(report.kept)} files)."]:
        print(line)
    return 0


def run_reset(args: argparse.Namespace) -> int:
    folder = workspace.workspace_dir(args.workspace)
    result = workspace.reset_lesson(workspace.release_dir(), folder, args.lesson)
    if result.backup is not None:
        print(f"your copy of {result.lesson} was moved to {result.backup}.")
    print(f"a fresh {result.lesson} is in {folder / result.lesson} ({len(result.files)} file(s)).")
    return 0
