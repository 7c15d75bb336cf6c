"""What a grading command does first, before its heavy imports: light to import itself.

`autograder.cli` calls `begin()` as soon as it sees a grading command, before it has
imported anything else (the other commands pull in SQLAlchemy: 0.15 s).
"""

from __future__ import annotations

import sys

GRADING_COMMANDS = frozenset({"grade", "grade-one"})


def wants_grading(argv: list[str]) -> bool:
    """A grading command that will run (not its --help)."""
    return bool(argv) and argv[0] in GRADING_COMMANDS and not {"-h", "--help"} & set(argv)


def begin() -> None:
    """Start the fork server's ~0.7 s of imports on the other core now, so they overlap ours.

    And: jsonschema (imported by nbformat) imports `rfc3987_syntax` if it is installed (it
    is: JupyterLab's jupyter-events pulls it in) for its optional IRI *format* checks, and
    that import builds a Lark grammar: 0.8 s, half of our start-up. Formats are checked
    only when a FormatChecker is passed, which neither nbformat nor nbgrader does, so a
    grading process skips that import (jsonschema treats the module as not installed).
    Other processes — JupyterLab, the tests — are untouched. Calling it again does nothing.
    """
    from autograder.grading.executor import Executor

    Executor.warm_up_in_background()
    if "jsonschema" not in sys.modules:
        sys.modules.setdefault("rfc3987_syntax", None)
