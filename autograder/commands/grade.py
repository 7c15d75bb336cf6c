"""`autograder grade` — grade a class from nbgrader's `submitted/` folder."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from typing import TYPE_CHECKING

from autograder.db.url import project_root
from autograder.errors import SetupError
from autograder.grading import startup

if TYPE_CHECKING:
    from autograder.grading.run import GradeOptions, RunReport

# The grading modules are imported when a grading command runs, not when the CLI starts:
# nbformat/nbgrader cost ~1.5 s to import, which every other command would pay too.


def out_of_the_collectors_sight() -> None:
    """Move every object alive now out of the garbage collector's reach (`gc.freeze`).

    A grading process holds a couple of million long-lived objects (nbgrader, Jupyter,
    SQLAlchemy): every full collection walks all of them, and so does the one Python runs
    while it shuts down — 0.25-0.3 s of a command that grades a class in a few seconds.
    Called once the imports are done and again before exiting; what is made in between
    is collected as usual. Nothing is lost: files and connections are closed explicitly.
    """
    import gc

    gc.freeze()


def add_grading_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cell-timeout", type=float, default=60.0, metavar="S",
                        help="seconds one cell may run (default: 60)")
    parser.add_argument("--notebook-timeout", type=float, default=300.0, metavar="S",
                        help="seconds one notebook may run (default: 300)")
    parser.add_argument("--memory", type=int, default=3072, metavar="MIB",
                        help="address-space limit per submission in MiB (default: 3072)")
    parser.add_argument("--output-limit", type=int, default=1_000_000, metavar="CHARS",
                        help="characters of output kept per notebook (default: 1000000)")
    parser.add_argument("--no-sandbox", action="store_true",
                        help="run submissions without namespaces or a separate uid (resource limits stay)")


def options_from(args: argparse.Namespace, **extra) -> GradeOptions:
    from autograder.grading.executor import Deadlines
    from autograder.grading.run import GradeOptions
    from autograder.grading.sandbox import Limits

    return GradeOptions(
        deadlines=Deadlines(cell=args.cell_timeout, notebook=args.notebook_timeout),
        limits=Limits(address_space=args.memory * 1024**2),
        output_limit=args.output_limit,
        isolate=not args.no_sandbox,
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
    parser.add_argument("--course", type=Path, default=None,
                        help="the course folder holding submitted/ (default: this repository)")
    parser.add_argument("--lesson", action="append", dest="lessons", metavar="ID",
                        help="grade only this lesson (repeatable)")
    parser.add_argument("--student", action="append", dest="students", metavar="ID",
                        help="grade only this student (repeatable)")
    parser.add_argument("-j", "--workers", type=int, default=os.cpu_count() or 2,
                        help=f"submissions graded at once (default: {os.cpu_count() or 2}, the number of cores)")
    parser.add_argument("--force", action="store_true", help="re-grade submissions already graded")
    parser.add_argument("--feedback", action="store_true",
                        help="also write nbgrader feedback HTML (verdicts only, never hidden test code)")
    add_grading_options(parser)
    parser.set_defaults(func=cmd_grade)


def cmd_grade(args: argparse.Namespace) -> int:
    root = (args.course or project_root()).absolute()
    if not (root / "submitted").is_dir():
        raise SetupError(f"There is no submitted/ folder in {root}; collect submissions into "
                         "submitted/<student>/<lesson>/ (nbgrader's layout) or pass --course.")
    if args.workers < 1:
        raise SetupError("--workers must be at least 1.")
    startup.begin()  # before the heavy imports below (already done when run from the CLI)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from autograder.grading.run import GradeRun
    console = Console(stderr=True)
    options = options_from(args, lessons=args.lessons, students=args.students, workers=args.workers,
                           force=args.force, feedback=args.feedback)
    run = GradeRun(root, options)
    out_of_the_collectors_sight()
    with run.locked(), Progress(TextColumn("[bold]grading"), BarColumn(), MofNCompleteColumn(),
                                TimeElapsedColumn(), TextColumn("{task.description}"), console=console,
                                transient=True) as progress:
        task = progress.add_task("", total=None)

        def on_progress(result):
            progress.update(task, advance=1, description=f"{result.student}/{result.lesson}")

        run.on_progress = on_progress
        report = run.run()
    print_summary(console, report, root)
    out_of_the_collectors_sight()  # for the exit
    return 130 if report.interrupted else 0


def print_summary(console, report: RunReport, root: Path) -> None:
    from rich.table import Table

    from autograder.grading.run import EXPORTS_DIR
    from autograder.grading.sandbox import PROTECTIONS

    table = Table(title=f"Graded {len(report.results)} submission(s) in {report.seconds:.1f} s"
                        + (f", skipped {len(report.skipped)} already graded" if report.skipped else ""))
    for column in ("student", "lesson", "score", "verdict"):
        table.add_column(column)
    for r in sorted(report.results, key=lambda r: (r.lesson, r.student)):
        table.add_row(r.student, r.lesson, f"{r.score:g} / {r.max_score:g}", r.verdict)
    console.print(table)
    off = report.protections_off
    if off:
        console.print("[yellow]Protections that were off:[/yellow] "
                      + "; ".join(f"{name} ({why})" for name, why in sorted(off.items())))
    elif report.results:
        console.print(f"Protections on for every submission: {', '.join(PROTECTIONS)}.")
    if report.database_note:
        console.print(f"[yellow]Note:[/yellow] {report.database_note}.")
    if report.interrupted:
        console.print("[yellow]Interrupted:[/yellow] submissions not finished were left as they were; "
                      "run the same command again to continue.")
    console.print(f"Results: {root / EXPORTS_DIR} (scores.csv and one folder per lesson/student).")
