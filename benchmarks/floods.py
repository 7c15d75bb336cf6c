#!/usr/bin/env python
"""Benchmark: a class run under resource floods, beside correct submissions, against a baseline.

    .venv/bin/python benchmarks/floods.py [--good N] [-j WORKERS] [--cases a,b,...]

Grades, in one process, first N correct lesson-00 submissions alone (the baseline), then the
same N beside hostile flood cases (benchmarks/submissions.py, copies of the corpus cases of the
same names: output, errors, memory, disk, connections, temp files, server memory, busy backends,
a lifted statement timeout). While each run grades, a sampler reads every 0.1 s: the grader's
own RSS, the grading cluster's folder size, and the summed RSS of the cluster's backends. Prints
the peaks of both runs, the good submissions' scores (they must keep full marks), and as the last
line how much slower a correct submission's execution is beside the floods than alone (medians,
same machine, same run).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `benchmarks.submissions` when run as a script

FLOODS = (
    "huge_output",
    "error_output_flood",
    "memory_hog",
    "disk_fill",
    "fill_the_folder",
    "connection_flood",
    "db_temp_file_flood",
    "db_work_mem_hog",
    "db_busy_backends",
    "db_connections_held",
    "db_statement_timeout_lifted",
)  # the cases of benchmarks/submissions.py FLOODS
MiB = 1024**2


def _rss(pid: int | str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _folder_size(folder: Path) -> int:
    total = 0
    for base, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(base, name)).st_blocks * 512
            except OSError:
                continue
    return total


def _backends(data_dir: Path) -> list[int]:
    """The grading cluster's processes: the postmaster and its children."""
    try:
        postmaster = int((data_dir / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return []
    found = [postmaster]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == postmaster:
                    found.append(int(entry.name))
            except (OSError, ValueError, IndexError):
                continue
    return found


class Sampler(threading.Thread):
    def __init__(self, data_dir: Path):
        super().__init__(daemon=True)
        self.data_dir = data_dir
        self.stop = threading.Event()
        self.peak = {"grader RSS": 0, "cluster folder": 0, "backends RSS": 0}

    def run(self) -> None:
        while not self.stop.wait(0.1):
            self._take("grader RSS", _rss(os.getpid()))
            self._take("cluster folder", _folder_size(self.data_dir))
            self._take("backends RSS", sum(_rss(pid) for pid in _backends(self.data_dir)))

    def _take(self, what: str, value: int) -> None:
        self.peak[what] = max(self.peak[what], value)


def grade(root: Path, submissions: Mapping[str, object], workers: int, data_dir: Path):
    from autograder.grading.executor import Deadlines
    from autograder.grading.run import GradeOptions, GradeRun
    from benchmarks.submissions import write_submission

    for student, built in submissions.items():
        write_submission(root, student, built)
    sampler = Sampler(data_dir)
    sampler.start()
    started = time.perf_counter()
    report = GradeRun(root, GradeOptions(workers=workers, deadlines=Deadlines(cell=6.0, notebook=90.0))).run()
    seconds = time.perf_counter() - started
    sampler.stop.set()
    sampler.join()
    return report, seconds, sampler.peak


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--good", type=int, default=6, help="correct submissions in each run")
    parser.add_argument("-j", type=int, default=os.cpu_count() or 2, dest="workers")
    parser.add_argument("--cases", default=",".join(FLOODS), help="corpus cases to flood with")
    args = parser.parse_args()

    from autograder.grading.databases import grading_cluster
    from benchmarks.submissions import FLOOD_LESSON, lesson_notebooks
    from benchmarks.submissions import FLOODS as BUILDERS

    bases = lesson_notebooks(FLOOD_LESSON)
    floods = {name: BUILDERS[name](bases) for name in args.cases.split(",") if name}
    good = {f"good{i:02d}": bases["solution"] for i in range(args.good)}
    data_dir = grading_cluster().data_dir
    with tempfile.TemporaryDirectory(prefix="floods-") as tmp:
        base_report, base_seconds, base_peak = grade(Path(tmp) / "baseline", good, args.workers, data_dir)
        flood_report, flood_seconds, flood_peak = grade(Path(tmp) / "flood", {**good, **floods}, args.workers, data_dir)
    print(f"baseline: {args.good} correct submissions in {base_seconds:.1f} s")
    print(f"flood:    the same beside {len(floods)} flood cases in {flood_seconds:.1f} s")
    for what in base_peak:
        print(f"  peak {what:15s} baseline {base_peak[what] / MiB:8.0f} MiB   flood {flood_peak[what] / MiB:8.0f} MiB")
    max_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  grader max RSS over the process's life: {max_rss:.0f} MiB")
    kept = [r for r in flood_report.results if r.student in good]
    full = sum(1 for r in kept if r.score == r.max_score)
    print(f"good submissions at full marks beside the floods: {full} of {len(kept)}")
    for result in sorted(flood_report.results, key=lambda r: r.student):
        if result.student in floods:
            print(f"  {result.student:28s} {result.score:.0f}/{result.max_score:.0f}  {result.verdict[:110]}")
    import statistics

    alone = statistics.median(r.execution_time for r in base_report.results)
    beside = statistics.median(r.execution_time for r in kept)
    print(f"a correct submission's execution, median: alone {alone:.2f} s, beside the floods {beside:.2f} s")
    print(f"correct submission slowdown beside the floods (beside / alone): {beside / alone:.2f}x")
    return 0 if full == len(kept) else 1


if __name__ == "__main__":
    sys.exit(main())
