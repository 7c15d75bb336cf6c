"""How long each lesson's "Run All" takes, against the course's budget of 60 s a lesson.

    .venv/bin/python benchmarks/run_all.py                       # every lesson once, ~6 min on 2 cores
    .venv/bin/python benchmarks/run_all.py --repeat 3 --lessons 07_concurrency 09_testing

What is timed is what a learner waits for after Kernel > Restart and Run All: the release
notebook with every exercise answered from the solution (as a learner who solved it hands it
in), executed top to bottom by nbclient in a fresh kernel, kernel start included. Each lesson
runs on a database of its own (COURSE_DB_NAME=bench_<lesson>), so a lab that is open on the
same machine keeps its data.

The baseline, measured in the same run, interleaved with the lessons, is a notebook holding
only lesson 00's setup cell: kernel start, imports and a fresh lesson database, the floor no
lesson can go below. Each lesson is reported as seconds, as a multiple of that floor, and with
its three slowest cells, so a lesson that creeps towards the budget shows where. Medians of
--repeat runs. Exit 1 if a lesson raised or went over --budget.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # `benchmarks.submissions` when run as a script

import nbformat  # noqa: E402
from nbclient import NotebookClient  # noqa: E402
from nbclient.exceptions import CellExecutionError  # noqa: E402

from autograder.course.layout import lessons  # noqa: E402
from autograder.db import admin  # noqa: E402
from autograder.db.server import release, server_url  # noqa: E402
from benchmarks.submissions import answered  # noqa: E402

BUDGET_SECONDS = 60.0
BASELINE = "baseline (setup cell only)"


@dataclass
class Timing:
    seconds: list[float] = field(default_factory=list)
    cells: dict[str, list[float]] = field(default_factory=dict)  # cell label -> seconds per run
    error: str | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    def slowest(self, n: int = 3) -> list[tuple[str, float]]:
        medians = {label: statistics.median(times) for label, times in self.cells.items()}
        return sorted(medians.items(), key=lambda item: item[1], reverse=True)[:n]


def answered_notebook(lesson: str) -> nbformat.NotebookNode:
    release = nbformat.read(REPO / "notebooks" / lesson / f"{lesson}.ipynb", as_version=4)
    solution = nbformat.read(REPO / "solutions" / lesson / f"{lesson}.ipynb", as_version=4)
    return answered(release, solution)


def baseline_notebook() -> nbformat.NotebookNode:
    release = nbformat.read(REPO / "notebooks" / "00_foundations" / "00_foundations.ipynb", as_version=4)
    setup = [cell for cell in release.cells if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "setup"]
    notebook = nbformat.v4.new_notebook(metadata=release.metadata)
    notebook.cells = setup
    return notebook


def cell_label(index: int, cell: nbformat.NotebookNode) -> str:
    grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
    first_line = "".join(cell.source).strip().splitlines()[0][:40] if cell.source.strip() else ""
    return f"[{index}] {grade_id or first_line}"


def run_once(notebook: nbformat.NotebookNode, database: str, workdir: Path, timing: Timing) -> None:
    """Restart and Run All: a fresh kernel, every cell in order, stop at the first error."""
    os.environ["COURSE_DB_NAME"] = database  # kernels inherit it: the lesson resets this database
    notebook = nbformat.reads(nbformat.writes(notebook), as_version=4)  # a copy: no outputs carried over
    client = NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}
    )
    started = time.perf_counter()
    try:
        client.execute()
    except CellExecutionError as exc:
        timing.error = str(exc).strip().splitlines()[-1][:200]
        return
    timing.seconds.append(time.perf_counter() - started)
    for index, cell in enumerate(notebook.cells):
        execution = cell.get("metadata", {}).get("execution", {})
        if cell.cell_type != "code" or "iopub.execute_input" not in execution:
            continue
        spent = _seconds_between(execution["iopub.execute_input"], execution["shell.execute_reply"])
        timing.cells.setdefault(cell_label(index, cell), []).append(spent)


def _seconds_between(start: str, end: str) -> float:
    from datetime import datetime

    return (datetime.fromisoformat(end.rstrip("Z")) - datetime.fromisoformat(start.rstrip("Z"))).total_seconds()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lessons", nargs="*", default=None, help="default: every lesson")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--budget", type=float, default=BUDGET_SECONDS, help="seconds per lesson (default 60)")
    args = parser.parse_args(argv)
    chosen = args.lessons or lessons()

    notebooks = {BASELINE: baseline_notebook()} | {lesson: answered_notebook(lesson) for lesson in chosen}
    timings = {name: Timing() for name in notebooks}
    databases = {name: admin.check_identifier(f"bench_{index:02d}") for index, name in enumerate(notebooks)}
    root = server_url(hold=True)  # one server start for the whole run, not one per kernel
    workdir = Path(os.environ.get("TMPDIR", "/tmp"))
    try:
        for round_ in range(args.repeat):
            for name, notebook in notebooks.items():  # interleaved: the machine's noise hits all alike
                run_once(notebook, databases[name], workdir, timings[name])
                state = timings[name].error or f"{timings[name].seconds[-1]:.1f} s"
                print(f"round {round_ + 1}/{args.repeat} {name}: {state}", file=sys.stderr, flush=True)
    finally:
        for database in databases.values():
            try:
                admin.drop_database(root, database)
            except Exception as exc:  # noqa: BLE001 - the figures above stand; say what was left behind
                print(f"could not drop {database}: {exc}", file=sys.stderr)
        release()

    floor = timings[BASELINE].median if timings[BASELINE].seconds else float("nan")
    print(f"\nRun All per lesson (median of {args.repeat}; budget {args.budget:.0f} s; floor: {floor:.1f} s)")
    print(f"{'lesson':24} {'seconds':>8} {'x floor':>8}  slowest cells")
    failed = False
    for name in chosen:
        timing = timings[name]
        if timing.error or not timing.seconds:
            failed = True
            print(f"{name:24} {'ERROR':>8} {'':>8}  {timing.error}")
            continue
        over = timing.median > args.budget
        failed |= over
        slowest = ", ".join(f"{label} {seconds:.1f} s" for label, seconds in timing.slowest())
        mark = "  OVER BUDGET" if over else ""
        print(f"{name:24} {timing.median:8.1f} {timing.median / floor:7.1f}x  {slowest}{mark}")
    total = sum(timings[name].median for name in chosen if timings[name].seconds)
    print(
        f"all {len(chosen)} lessons: {total:.1f} s; slowest lesson vs budget: "
        f"{max((timings[n].median for n in chosen if timings[n].seconds), default=float('nan')) / args.budget:.2f}"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
