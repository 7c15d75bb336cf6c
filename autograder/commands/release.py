"""`autograder release` — generate the learner release notebooks/ from solutions/ with nbgrader."""

from __future__ import annotations

import argparse
from pathlib import Path

from autograder.course.layout import RELEASE_DIR, SOURCE_DIR


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "release",
        help=f"regenerate {RELEASE_DIR}/ from {SOURCE_DIR}/ (or --check that it is up to date)",
        description=(
            f"Build the learner release of every lesson with nbgrader, in a scratch course folder, "
            f"and copy it over {RELEASE_DIR}/ (a failed build leaves {RELEASE_DIR}/ as it was)."
        ),
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help=f"compare {RELEASE_DIR}/ with a fresh release and change nothing; exit 1 if it drifted",
    )
    parser.add_argument(
        "--learner-copy",
        type=Path,
        metavar="DIR",
        help="instead, copy what learners may have to DIR (a new folder): the release, the package and the lab's "
        "config, never solutions/ or tests/; `make lab` runs there",
    )
    parser.set_defaults(func=cmd_release)


def cmd_release(args: argparse.Namespace) -> int:
    import sys

    from autograder import release

    if args.learner_copy is not None:
        copied = release.learner_copy(args.learner_copy)
        print(f"Copied {', '.join(copied)} to {args.learner_copy}; learners run `make lab` there.")
        return 0
    if args.check:
        problems = release.check()
        if problems:
            print(f"{RELEASE_DIR}/ is out of date with {SOURCE_DIR}/; run `make release`:", file=sys.stderr)
            for problem in problems:
                print(f"  {problem}", file=sys.stderr)
            return 1
        print(f"{RELEASE_DIR}/ matches a fresh release of {SOURCE_DIR}/.")
        return 0
    written = release.release_course()
    print(f"Released {len(written)} lesson(s) to {RELEASE_DIR}/: {', '.join(written)}")
    return 0
