"""What a grading command does first, before its heavy imports: light to import itself.

`autograder.cli` calls `begin()` as soon as it sees a grading command, before it has
imported anything else (the other commands pull in SQLAlchemy: 0.15 s).
"""

from __future__ import annotations

GRADING_COMMANDS = frozenset({"grade", "grade-one"})


def wants_grading(argv: list[str]) -> bool:
    """A grading command that will run (not its --help)."""
    return bool(argv) and argv[0] in GRADING_COMMANDS and not {"-h", "--help"} & set(argv)


def begin() -> None:
    """Start the fork server's ~0.7 s of imports on the other core now, so they overlap ours,
    and apply the start-up speed-up `no_iri_grammar` (jsonschema's IRI grammar, 0.8 s: see
    `speedups.skip_rfc3987_syntax`) before nbformat imports jsonschema. Only a grading
    process does this: JupyterLab and the tests are untouched. Calling it again does nothing."""
    from autograder.grading import speedups
    from autograder.grading.executor import Executor

    Executor.warm_up_in_background()
    speedups.apply("no_iri_grammar")
