"""`autograder grade` — grade a class from nbgrader's `submitted/` folder."""

from __future__ import annotations

import argparse
import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

from autograder.grading import startup
from autograder.paths import project_root

if TYPE_CHECKING:
    from autograder.grading.options import GradeOptions
    from autograder.grading.run import RunReport

# The grading modules are imported when a grading command runs, not when the CLI starts:
# nbformat/nbgrader cost ~1.5 s to import, which every other command would pay too.


def add_grading_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cell-timeout", type=float, default=60.0, metavar="S", help="seconds one cell may run (default: 60)"
    )
    parser.add_argument(
        "--notebook-timeout", type=float, default=300.0, metavar="S", help="seconds one notebook may run (default: 300)"
    )
    parser.add_argument(
        "--memory",
        type=int,
        default=3072,
        metavar="MIB",
        help="address-space limit per submission in MiB (default: 3072)",
    )
    parser.add_argument(
        "--output-limit",
        type=int,
        default=1_000_000,
        metavar="CHARS",
        help="characters of output kept per notebook (default: 1000000)",
    )
    parser.add_argument(
        "--run-demonstrations",
        action="store_true",
        help="also run the cells a lesson marks as demonstrations (skipped by default: no check needs them)",
    )
    parser.add_argument(
        "--no-sandbox",
        action="store_true",
        help="run submissions without namespaces or a separate uid (resource limits stay)",
    )


def options_from(args: argparse.Namespace, **extra) -> GradeOptions:
    from autograder.grading.executor import Deadlines
    from autograder.grading.options import GradeOptions
    from autograder.grading.sandbox import Limits

    return GradeOptions(
        deadlines=Deadlines(cell=args.cell_timeout, notebook=args.notebook_timeout),
        limits=Limits(address_space=args.memory * 1024**2),
        output_limit=args.output_limit,
        isolate=not args.no_sandbox,
        run_demonstrations=args.run_demonstrations,
        **extra,
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "grade",
        help="grade submitted/<student>/<lesson>/ in parallel, into the gradebook and exports/",
        description=(
            "Grade every submission under <course>/submitted/<student>/<lesson>/ with nbgrader's own "
            "cell checks, each in a sandboxed process with a fresh database of its own. Grades go to "
            "nbgrader's gradebook (formgrader shows them); exports/ gets per-submission result.json, "
            "results.gradescope.json and results.exercism.json, and exports/scores.csv. Submissions "
            "already graded with the same files are skipped unless --force. Ctrl-C stops cleanly."
        ),
    )
    parser.add_argument(
        "--course", type=Path, default=None, help="the course folder holding submitted/ (default: this repository)"
    )
    parser.add_argument(
        "--lesson", action="append", dest="lessons", metavar="ID", help="grade only this lesson (repeatable)"
    )
    parser.add_argument(
        "--student", action="append", dest="students", metavar="ID", help="grade only this student (repeatable)"
    )
    parser.add_argument(
        "-j",
        "--workers",
        type=int,
        default=os.cpu_count() or 2,
        help=f"submissions graded at once (default: {os.cpu_count() or 2}, the number of cores)",
    )
    parser.add_argument("--force", action="store_true", help="re-grade submissions already graded")
    parser.add_argument(
        "--feedback",
        action="store_true",
        help="also write nbgrader feedback HTML (verdicts only, never hidden test code)",
    )
    add_grading_options(parser)
    parser.set_defaults(func=cmd_grade)


def cmd_grade(args: argparse.Namespace) -> int:
    root = (args.course or project_root()).absolute()
    startup.begin()  # before the heavy imports below (already done when run from the CLI)
    from rich.console import Console

    from autograder.grading import speedups
    from autograder.grading.api import grade_course

    console = Console(stderr=True)
    options = options_from(
        args,
        lessons=args.lessons,
        students=args.students,
        workers=args.workers,
        force=args.force,
        feedback=args.feedback,
    )
    speedups.freeze_gc()
    with ProgressBar(console) as bar:
        # The bar is drawn once the course's lock is held: a refused run prints one sentence only.
        report = grade_course(root, options, on_progress=bar.advance, on_start=bar.start)
    print_summary(console, report, root)
    speedups.freeze_gc()  # for the exit
    return 130 if report.interrupted else 0


class ProgressBar:
    """rich's progress bar, drawn from `start()` on and gone when the block ends."""

    def __init__(self, console):
        self.console = console
        self._stack = contextlib.ExitStack()
        self._progress = None
        self._task = None

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc_info) -> None:
        self._stack.close()

    def start(self, to_grade: int) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = self._stack.enter_context(
            Progress(
                TextColumn("[bold]grading"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.description}"),
                console=self.console,
                transient=True,
            )
        )
        self._task = self._progress.add_task("", total=None)

    def advance(self, result) -> None:
        if self._progress is not None:
            self._progress.update(self._task, advance=1, description=f"{result.student}/{result.lesson}")


def print_summary(console, report: RunReport, root: Path) -> None:
    from rich.table import Table

    from autograder.grading.layout import EXPORTS_DIR
    from autograder.grading.sandbox import PROTECTIONS

    table = Table(
        title=f"Graded {len(report.results)} submission(s) in {report.seconds:.1f} s"
        + (f", skipped {len(report.skipped)} already graded" if report.skipped else "")
    )
    for column in ("student", "lesson", "score", "verdict"):
        table.add_column(column)
    for r in sorted(report.results, key=lambda r: (r.lesson, r.student)):
        table.add_row(r.student, r.lesson, f"{r.score:g} / {r.max_score:g}", r.verdict)
    console.print(table)
    off = report.protections_off
    if off:
        console.print(
            "[yellow]Protections that were off:[/yellow] "
            + "; ".join(f"{name} ({why})" for name, why in sorted(off.items()))
        )
    elif report.results:
        console.print(f"Protections on for every submission: {', '.join(PROTECTIONS)}.")
    if report.database_note:
        console.print(f"[yellow]Note:[/yellow] {report.database_note}.")
    if report.interrupted:
        console.print(
            "[yellow]Interrupted:[/yellow] submissions not finished were left as they were; "
            "run the same command again to continue."
        )
    console.print(f"Results: {root / EXPORTS_DIR} (scores.csv and one folder per lesson/student).")
