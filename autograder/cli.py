"""`autograder` — the course's command line.

Every subcommand lives in its own module under `autograder.commands` and exposes
`register(subparsers)`, which adds its parser and sets `func` (called with the
parsed arguments; it returns the exit code). To add a command (e.g. `grade`),
write `autograder/commands/grade.py` and list it in `autograder.commands.COMMANDS`.

Problems a person can fix (`SetupError`) are printed as one line,
`error: <sentence>`, on stderr with exit code 2 — never as a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from autograder import __version__
from autograder.commands import COMMANDS
from autograder.errors import SetupError

EXIT_SETUP_ERROR = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="autograder",
        description=(
            "Run the async SQLAlchemy course: JupyterLab for learners, the nbgrader view for "
            "instructors, and the course PostgreSQL (DATABASE_URL, or a bundled server)."
        ),
        epilog="Run `autograder <command> --help` for the options of one command.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="<command>", required=True)
    for name in COMMANDS:
        importlib.import_module(f"autograder.commands.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from autograder.grading import startup

    if startup.wants_grading(list(sys.argv[1:] if argv is None else argv)):
        startup.begin()  # before building the parser: the other commands import SQLAlchemy
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = args.func(args)
    except SetupError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return EXIT_SETUP_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return int(code or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
