"""`autograder` — the course's command line.

Every subcommand lives in its own module under `autograder.commands` and exposes
`register(subparsers)`, which adds its parser and sets `func` (called with the
parsed arguments; it returns the exit code). To add a command (e.g. `grade`),
write `autograder/commands/grade.py` and list it in `autograder.commands.COMMANDS`.

Problems a person can fix (`SetupError`) are printed as one line,
`error: <sentence>`, on stderr with exit code 2 — never as a traceback.

This module and `autograder.commands` are the only places that parse arguments; what
the commands do lives in function APIs (`autograder.grading.api`, `autograder.release`...).
`-v` / `-vv` (before the command) show the autograder's own log — retries, clean-up
that failed, each stage — on stderr; without them only warnings are shown.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

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
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="log what the autograder does on stderr: -v its steps, -vv every detail",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="<command>", required=True)
    for name in COMMANDS:
        importlib.import_module(f"autograder.commands.{name}").register(subparsers)
    return parser


def configure_logging(verbosity: int) -> None:
    """Warnings only by default; -v adds the autograder's INFO lines, -vv its DEBUG lines."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    logging.getLogger("autograder").setLevel(level)


def command_argv(argv: Sequence[str]) -> list[str]:
    """The arguments from the command on: the global options before it left out."""
    rest = list(argv)
    while rest and (rest[0] in ("-v", "--verbose") or (rest[0].startswith("-v") and set(rest[0][1:]) == {"v"})):
        rest.pop(0)
    return rest


def main(argv: Sequence[str] | None = None) -> int:
    from autograder.grading import startup

    if startup.wants_grading(command_argv(sys.argv[1:] if argv is None else argv)):
        startup.begin()  # before building the parser: the other commands import SQLAlchemy
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.verbose)
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
