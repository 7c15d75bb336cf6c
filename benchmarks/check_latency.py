"""How long "Check my work" takes, click to verdict, per lesson — and what skipping demonstrations saves.

    .venv/bin/python benchmarks/check_latency.py                 # every lesson, 3 checks each, ~6 min on 2 cores
    .venv/bin/python benchmarks/check_latency.py --repeat 5 --lessons 01_session_dependency 07_concurrency
    .venv/bin/python benchmarks/check_latency.py --class-run 6      # also: a class of 6 x every lesson, ~7 min

For each lesson it checks the release notebook with every exercise answered from the solution
(full marks) through the lab's own `CheckService` (the warm worker the button talks to), so a
figure is what the learner waits for after clicking (minus the browser's save, a few ms). The
baseline, measured in the same run, interleaved, is the same service with the lesson's
demonstration cells run too (COURSE_CHECK_RUN_DEMONSTRATIONS=1), as every graded run did
before. Both workers are started and warmed first; medians of --repeat checks. Exit 1 if a
check does not give full marks.

`--class-run N` also times a whole class run (`grade_course`, N students x every lesson, all
answered from the solutions) with demonstrations skipped and with them run, one after the other.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # `benchmarks.submissions` when run as a script

import nbformat  # noqa: E402

from autograder.course.layout import lessons  # noqa: E402
from autograder.labcheck.service import CheckService  # noqa: E402
from autograder.labcheck.worker import ENV_RUN_DEMONSTRATIONS  # noqa: E402
from benchmarks.submissions import answered  # noqa: E402


def write_answered(folder: Path, lesson: str) -> str:
    release = nbformat.read(REPO / "notebooks" / lesson / f"{lesson}.ipynb", as_version=4)
    solution = nbformat.read(REPO / "solutions" / lesson / f"{lesson}.ipynb", as_version=4)
    (folder / lesson).mkdir(parents=True, exist_ok=True)
    nbformat.write(answered(release, solution), folder / lesson / f"{lesson}.ipynb")
    return f"{lesson}/{lesson}.ipynb"


async def service(folder: Path, run_demonstrations: bool) -> CheckService:
    """A service whose worker is started (and warmed) now, with or without demonstrations."""
    previous = os.environ.pop(ENV_RUN_DEMONSTRATIONS, None)
    if run_demonstrations:
        os.environ[ENV_RUN_DEMONSTRATIONS] = "1"
    try:
        checks = CheckService(folder)
        await checks._ensure_worker()
        return checks
    finally:
        os.environ.pop(ENV_RUN_DEMONSTRATIONS, None)
        if previous is not None:
            os.environ[ENV_RUN_DEMONSTRATIONS] = previous


async def timed(checks: CheckService, path: str) -> tuple[float, dict]:
    started = time.monotonic()
    reply = await checks.check(path)
    return time.monotonic() - started, reply


def class_run(students: int, chosen: list[str]) -> int:
    """Wall time of grading a class with and without the demonstrations; 1 if a score is not full."""
    from autograder.grading.api import GradeOptions, grade_course

    failures = 0
    seconds = {}
    for label, run_demos in (("demonstrations skipped", False), ("demonstrations run", True)):
        with tempfile.TemporaryDirectory(prefix="class-run-") as tmp:
            root = Path(tmp)
            for n in range(students):
                folder = root / "submitted" / f"s{n:03d}"
                folder.mkdir(parents=True)
                for lesson in chosen:
                    write_answered(folder, lesson)
            started = time.monotonic()
            report = grade_course(root, GradeOptions(run_demonstrations=run_demos))
            seconds[label] = time.monotonic() - started
            short = [r for r in report.results if r.score != r.max_score or r.max_score == 0]
            failures += len(short)
            print(
                f"class run, {students} x {len(chosen)} submissions, {label}: {seconds[label]:.1f} s"
                + (f" ({len(short)} not full marks)" if short else ""),
                flush=True,
            )
    ratio = seconds["demonstrations run"] / seconds["demonstrations skipped"]
    print(f"class run ratio (demonstrations run / skipped): {ratio:.1f}x")
    return 1 if failures else 0


async def main(args: argparse.Namespace) -> int:
    chosen = args.lessons or lessons()
    failures = class_run(args.class_run, chosen) if args.class_run else 0
    with tempfile.TemporaryDirectory(prefix="check-latency-") as tmp:
        folder = Path(tmp)
        paths = {lesson: write_answered(folder, lesson) for lesson in chosen}
        ours, baseline = await service(folder, False), await service(folder, True)
        try:
            for lesson in chosen:  # the first check of a lesson prepares its gradebook: not timed
                await ours.check(paths[lesson])
            print(f"{'lesson':24} {'check (s)':>10} {'with demos (s)':>15} {'ratio':>7}", flush=True)
            totals = [0.0, 0.0]
            for lesson in chosen:
                times: dict[str, list[float]] = {"ours": [], "baseline": []}
                for _ in range(args.repeat):
                    for name, checks in (("baseline", baseline), ("ours", ours)):
                        seconds, reply = await timed(checks, paths[lesson])
                        report = reply.get("report") or {}
                        if not reply.get("ok") or report.get("score") != report.get("max_score"):
                            failures += 1
                            print(f"  {lesson} ({name}): not full marks: {json.dumps(reply)[:300]}", flush=True)
                        times[name].append(seconds)
                a, b = statistics.median(times["ours"]), statistics.median(times["baseline"])
                totals[0] += a
                totals[1] += b
                print(f"{lesson:24} {a:10.2f} {b:15.2f} {b / a:6.1f}x", flush=True)
            print(f"{'all lessons':24} {totals[0]:10.2f} {totals[1]:15.2f} {totals[1] / totals[0]:6.1f}x")
        finally:
            await ours.close()
            await baseline.close()
    return 1 if failures else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="checks per lesson and mode (median; default 3)")
    parser.add_argument("--lessons", nargs="*", help="lesson ids (default: all)")
    parser.add_argument("--class-run", type=int, default=0, metavar="N", help="also time a class of N students")
    raise SystemExit(asyncio.run(main(parser.parse_args())))
