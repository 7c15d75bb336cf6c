#!/usr/bin/env python
"""Benchmark: `autograder grade` vs stock `nbgrader autograde` on the same class, in one run.

    .venv/bin/python benchmarks/grading.py [--students N] [-j WORKERS] [--keep DIR]
                                           [--speedups on|off|both|each] [--repeat N]

Builds a deterministic class (N students x 2 lessons: right, wrong and broken
submissions), copies it into two course folders, grades one with stock nbgrader
(one `nbgrader autograde <lesson> --force --create` CLI call per lesson) and the
other with `autograder grade --course DIR -j WORKERS --force`, compares every total
score, and prints where our time goes. `--speedups` times ours with the speed-ups of
autograder/grading/speedups.py on, off, both, or each one off in turn (the switch
AUTOGRADER_SPEEDUPS), in the same run. The last line is the throughput ratio.
Exits 1 if any score disagrees. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path

# Keep module-level imports light: on Python 3.11 the grader's fork server does not
# preload __main__ (forkserver passes 'main_path', spawn provides 'init_main_from_path'),
# so every forked submission re-runs this file's top level (only matters in-process, and
# only with the speed-up `submissions_skip_main` off).
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # `benchmarks.submissions` when run as a script
SPEEDUPS_ENV = "AUTOGRADER_SPEEDUPS"

LESSONS = ["00_foundations", "01_session_dependency"]
BIN = Path(sys.executable).parent
# Per student, indexed by (student + 3 * lesson) % 10: each lesson gets 6 right, 3 wrong, 1 broken
# per 10 students, so 20 students x 2 lessons = 24 right, 12 wrong, 4 broken.
CYCLE = ["right", "right", "wrong", "right", "broken", "right", "wrong", "right", "wrong", "right"]
BROKEN_KINDS = ["invalid-json", "empty-file", "nbformat-5"]


# ---------------------------------------------------------------- the class
def build_class(students: int, lessons: list[str], release_root: Path) -> list[dict]:
    """[{student, lesson, kind, content(bytes), expected(score or None)}] — deterministic.

    Submissions are what learners hand in: the *release* notebook with its exercise
    cells answered (from the solution, or the lesson's known wrong answer), so test
    cells are exactly as released and nbgrader has nothing to restore."""
    import nbformat

    from benchmarks.submissions import WRONG_ANSWERS, answered

    solutions = {ls: nbformat.read(REPO / "solutions" / ls / f"{ls}.ipynb", as_version=4) for ls in lessons}
    releases = {ls: nbformat.read(release_root / ls / f"{ls}.ipynb", as_version=4) for ls in lessons}
    points = {}
    for ls, nb in solutions.items():
        points[ls] = {
            c.metadata["nbgrader"]["grade_id"]: float(c.metadata["nbgrader"].get("points", 0))
            for c in nb.cells
            if c.metadata.get("nbgrader", {}).get("grade")
        }
    subs, broken_seen, wrong_seen = [], 0, 0
    for i in range(students):
        student = f"s{i:03d}"
        for j, lesson in enumerate(lessons):
            kind = CYCLE[(i + 3 * j) % len(CYCLE)]
            full = sum(points[lesson].values())
            right = nbformat.writes(answered(releases[lesson], solutions[lesson]))
            if kind == "right":
                content, expected = right, full
            elif kind == "wrong":
                wrong_seen += 1
                if wrong_seen % 4 == 0:  # every 4th wrong one is the untouched release: zero
                    kind = "untouched"
                    content, expected = nbformat.writes(releases[lesson]), 0.0
                else:
                    case = WRONG_ANSWERS[lesson]
                    nb = answered(releases[lesson], solutions[lesson], {case.solution_id: case.source})
                    content = nbformat.writes(nb)
                    expected = full - sum(points[lesson][g] for g in case.loses)
            else:
                variant = BROKEN_KINDS[broken_seen % len(BROKEN_KINDS)]
                broken_seen += 1
                kind = f"broken:{variant}"
                if variant == "invalid-json":
                    content = right[:-200]  # truncated upload
                elif variant == "empty-file":
                    content = ""
                else:
                    data = json.loads(right)
                    data["nbformat"] = 5
                    content = json.dumps(data)
                expected = None
            subs.append(
                {"student": student, "lesson": lesson, "kind": kind, "content": content.encode(), "expected": expected}
            )
    return subs


def place(subs: list[dict], root: Path) -> None:
    for s in subs:
        folder = root / "submitted" / s["student"] / s["lesson"]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{s['lesson']}.ipynb").write_bytes(s["content"])


# ---------------------------------------------------------------- stock nbgrader
STOCK_CONFIG = """\
# This repository's nbgrader configuration, re-rooted at this folder with a gradebook of its own.
c = get_config()  # noqa: F821
load_subconfig({repo_config!r})  # noqa: F821
c.CourseDirectory.root = {root!r}
c.CourseDirectory.db_url = {db_url!r}
"""


def stock_setup(root: Path, lessons: list[str], env: dict) -> str:
    shutil.copytree(
        REPO / "solutions", root / "solutions", ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__")
    )
    db_url = f"sqlite:///{root / 'gradebook.db'}"
    (root / "nbgrader_config.py").write_text(
        STOCK_CONFIG.format(repo_config=str(REPO / "nbgrader_config.py"), root=str(root), db_url=db_url)
    )
    for lesson in lessons:  # not timed
        nbgrader(root, env, "generate_assignment", lesson, "--force", "--create", check=True)
    return db_url


def nbgrader(root: Path, env: dict, *args: str, check: bool = False) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(BIN / "nbgrader"), *args], cwd=root, env=env, capture_output=True, text=True)
    if check and proc.returncode != 0:
        sys.exit(f"nbgrader {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def stock_grade(root: Path, lessons: list[str], env: dict, extra: Sequence[str] = ()) -> tuple[float, dict]:
    logs, t0 = {}, time.perf_counter()
    for lesson in lessons:
        proc = nbgrader(root, env, "autograde", lesson, "--force", "--create", *extra)
        logs[lesson] = (proc.returncode, proc.stdout + proc.stderr)
    return time.perf_counter() - t0, logs


def stock_scores(db_url: str, subs: list[dict]) -> dict:
    from nbgrader.api import Gradebook, MissingEntry

    scores: dict = {}
    with Gradebook(db_url) as gb:
        for s in subs:
            key = (s["lesson"], s["student"])
            try:
                sub = gb.find_submission(s["lesson"], s["student"])
            except MissingEntry:
                scores[key] = None
                continue
            # an unexecuted/failed notebook has no grades or no autograded notebook
            nb_ok = (root_of(db_url) / "autograded" / s["student"] / s["lesson"] / f"{s['lesson']}.ipynb").exists()
            scores[key] = float(sub.score) if nb_ok else None
    return scores


def root_of(db_url: str) -> Path:
    return Path(db_url.removeprefix("sqlite:///")).parent


def stock_failures(logs: dict, subs: list[dict]) -> dict:
    """For each broken submission, the line of nbgrader's log that names it (if any)."""
    out = {}
    for s in subs:
        if not s["kind"].startswith("broken"):
            continue
        text = logs[s["lesson"]][1]
        lines = [ln for ln in text.splitlines() if s["student"] in ln and ("rror" in ln or "ERROR" in ln)]
        out[(s["lesson"], s["student"])] = lines[0].strip()[:160] if lines else ""
    return out


# ---------------------------------------------------------------- ours
def ours_grade(
    root: Path, workers: int, env: dict, extra: Sequence[str] = (), speedups: str | None = None
) -> tuple[float, subprocess.CompletedProcess]:
    cmd = [str(BIN / "autograder"), "grade", "--course", str(root), "-j", str(workers), "--force", *extra]
    env = dict(env)
    if speedups is None:
        env.pop(SPEEDUPS_ENV, None)
    else:
        env[SPEEDUPS_ENV] = speedups
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"{SPEEDUPS_ENV}={speedups} {' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return seconds, proc


def children_cpu() -> float:
    """CPU seconds (user + system) of the child processes this process has waited for so far."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def speedup_configs(choice: str) -> list[tuple[str, str | None]]:
    """[(label, AUTOGRADER_SPEEDUPS value or None for unset)] to time ours with; the first is the
    one the throughput ratio uses."""
    from autograder.grading.speedups import SPEEDUPS

    on, off = ("speed-ups on", None), ("speed-ups off", "off")
    if choice == "on":
        return [on]
    if choice == "off":
        return [off]
    if choice == "both":
        return [on, off]
    return [on, off, *((f"all but {name}", f"-{name}") for name in SPEEDUPS)]  # each


def ours_results(root: Path, subs: list[dict]) -> dict:
    out = {}
    for s in subs:
        path = root / "exports" / s["lesson"] / s["student"] / "result.json"
        out[(s["lesson"], s["student"])] = json.loads(path.read_text()) if path.exists() else None
    return out


def ours_breakdown(root: Path, workers: int) -> dict:
    """One more run, in-process, with the phases of GradeRun split further by wrapping
    (never editing) the grader's functions. Not used for the ratio. A step whose function
    is not found (the grader was reorganised) is listed as missing, not timed."""
    import importlib

    from autograder.grading import run

    timers: defaultdict[str, float] = defaultdict(float)
    counts: Counter = Counter()
    missing: list[str] = []

    def wrap(where: str, name: str, label: str):
        module, _, cls = where.partition(":")
        try:
            owner = importlib.import_module(module)
            owner = getattr(owner, cls) if cls else owner
            original = getattr(owner, name)
        except (ImportError, AttributeError):
            missing.append(f"{label} ({where}.{name})")
            return lambda: None

        if asyncio_function(original):

            async def timed(*a, **k):
                t = time.perf_counter()
                try:
                    return await original(*a, **k)
                finally:
                    timers[label] += time.perf_counter() - t
                    counts[label] += 1
        else:

            def timed(*a, **k):  # type: ignore[misc]  # the sync twin of the async wrapper above
                t = time.perf_counter()
                try:
                    return original(*a, **k)
                finally:
                    timers[label] += time.perf_counter() - t
                    counts[label] += 1

        setattr(owner, name, timed)
        return lambda: setattr(owner, name, original)

    undo = [
        wrap("autograder.grading.autograde:SplitAutograde", "prepare", "nbgrader sanitize + gradebook (prepare)"),
        wrap("autograder.grading.autograde:SplitAutograde", "finish", "nbgrader scoring + gradebook (finish)"),
        wrap(
            "autograder.grading.databases:GradingDatabases",
            "create",
            "database clone (role + CREATE DATABASE) [db thread]",
        ),
        wrap("autograder.grading.databases:GradingDatabases", "drop", "database drop [db thread]"),
        wrap("autograder.grading.gradebook", "grades", "gradebook read-back"),
        wrap("autograder.grading.stages.record", "move_into_place", "autograded notebook moved into place"),
        wrap("autograder.grading.stages.record", "write_results", "results + exports written"),
        wrap("autograder.grading.gradebook", "ensure_assignments", "assignments up to date (setup)"),
        wrap("autograder.grading.run", "write_scores_csv", "scores.csv"),
        wrap("autograder.grading.executor:Executor", "warm_up", "fork server warm-up (setup)"),
        wrap("autograder.grading.databases:GradingDatabases", "open_for_run", "grading cluster acquire (setup)"),
    ]
    try:
        report = run.GradeRun(root, run.GradeOptions(workers=workers, force=True)).run()
    finally:
        for u in undo:
            u()
    return {
        "seconds": report.seconds,
        "phase_seconds": dict(report.phase_seconds),
        "timers": dict(timers),
        "counts": dict(counts),
        "n": len(report.results),
        "missing": missing,
    }


def asyncio_function(f) -> bool:
    import inspect

    return inspect.iscoroutinefunction(f)


# ---------------------------------------------------------------- report
def fmt(x: float) -> str:
    return f"{x:6.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--students",
        type=int,
        default=20,
        help="students in the class; each submits both lessons (default 20 = 40 submissions)",
    )
    parser.add_argument(
        "-j",
        "--workers",
        type=int,
        default=os.cpu_count() or 2,
        help="workers for `autograder grade` (default: the number of cores)",
    )
    parser.add_argument("--no-warmup", action="store_true", help="skip the untimed warm-up runs")
    parser.add_argument(
        "--no-breakdown", action="store_true", help="skip the extra in-process run that splits our time into phases"
    )
    parser.add_argument(
        "--keep",
        type=Path,
        default=None,
        help="build the two course folders here and keep them (default: a temp dir, removed)",
    )
    parser.add_argument(
        "--speedups",
        choices=["on", "off", "both", "each"],
        default="on",
        help="time ours with the speed-ups on (default), off, both (on and off, same run), or "
        "each (on, off, and each one off in turn); the ratio uses the first",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="time each of ours N times, the configurations interleaved; medians are reported",
    )
    args = parser.parse_args()
    configs = speedup_configs(args.speedups)

    from autograder.db import url as urls
    from autograder.db.server import release, server_url

    base = args.keep or Path(tempfile.mkdtemp(prefix="grading-bench-"))
    base.mkdir(parents=True, exist_ok=True)
    stock_root, ours_root = base / "stock", base / "ours"
    for r in (stock_root, ours_root):
        shutil.rmtree(r, ignore_errors=True)
        r.mkdir(parents=True)

    path_env = os.pathsep.join([str(BIN), os.environ.get("PATH", "")])
    ours_env = {**os.environ, "PATH": path_env}
    for var in ("DATABASE_URL", "GRADING_DATABASE_URL"):  # ours: its default, the isolated grading cluster
        ours_env.pop(var, None)
    held = urls.configured_url() is None
    admin_url = urls.render(server_url(hold=True))  # the course server stays up for stock's kernels
    stock_env = {**os.environ, "PATH": path_env, "DATABASE_URL": admin_url}
    try:
        print(f"course folders: {base}", flush=True)
        db_url = stock_setup(stock_root, LESSONS, stock_env)
        subs = build_class(args.students, LESSONS, stock_root / "notebooks")
        place(subs, stock_root)
        place(subs, ours_root)
        kinds = Counter(s["kind"].split(":")[0] for s in subs)
        print(
            f"class: {len(subs)} submissions ({args.students} students x {len(LESSONS)} lessons): "
            + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())),
            flush=True,
        )

        if not args.no_warmup:
            # Untimed, same for both: grade the first student only (disk cache, kernel spec, fork
            # server imports, our gradebook's copy of the lessons and the databases' templates).
            first = subs[0]["student"]
            t = time.perf_counter()
            stock_grade(stock_root, LESSONS, stock_env, ["--student", first])
            ws = time.perf_counter() - t
            t = time.perf_counter()
            ours_grade(ours_root, args.workers, ours_env, ["--student", first], configs[0][1])
            wo = time.perf_counter() - t
            print(f"warm-up (untimed, student {first} only): stock {ws:.1f} s, ours {wo:.1f} s", flush=True)

        print("stock: nbgrader autograde, one CLI call per lesson ...", flush=True)
        stock_seconds, logs = stock_grade(stock_root, LESSONS, stock_env)
        timings: dict[str, list[float]] = {label: [] for label, _ in configs}
        cpu: dict[str, list[float]] = {label: [] for label, _ in configs}
        worker: dict[str, list[float]] = {label: [] for label, _ in configs}  # summed execute timings
        results: dict[str, dict] = {}
        for r in range(args.repeat):
            for label, value in configs:
                print(
                    f"ours: autograder grade -j {args.workers} --force, {label} "
                    f"({SPEEDUPS_ENV}={value or ''}) [{r + 1}/{args.repeat}] ...",
                    flush=True,
                )
                before = children_cpu()
                seconds, _ = ours_grade(ours_root, args.workers, ours_env, speedups=value)
                cpu[label].append(children_cpu() - before)
                timings[label].append(seconds)
                results[label] = ours_results(ours_root, subs)
                worker[label].append(
                    sum(
                        r["timings"]["execute"]
                        for r in results[label].values()
                        if r and r.get("status") == "graded" and r.get("timings")
                    )
                )
                print(
                    f"  {seconds:.2f} s wall, {cpu[label][-1]:.2f} s CPU, {worker[label][-1]:.2f} s in workers",
                    flush=True,
                )
        ours_seconds = statistics.median(timings[configs[0][0]])

        # ------------------------------------------------ scores
        stock = stock_scores(db_url, subs)
        ours = results[configs[0][0]]
        disagreements, compared, wrong_expect = [], 0, []
        for label, other in results.items():  # every configuration of ours grades alike
            for key, result in other.items():
                mine = {k: v for k, v in (ours[key] or {}).items() if k in ("status", "score")}
                theirs = {k: v for k, v in (result or {}).items() if k in ("status", "score")}
                if mine != theirs:
                    disagreements.append(f"{key}: {configs[0][0]} {mine} != {label} {theirs}")
        for s in subs:
            key = (s["lesson"], s["student"])
            st, ou = stock[key], ours[key]
            ou_score = ou["score"] if ou and ou.get("status") == "graded" else None
            if s["expected"] is not None and ou_score != s["expected"]:
                wrong_expect.append(f"{key}: {s['kind']} expected {s['expected']}, ours {ou_score}")
            if st is None or ou_score is None:
                if not s["kind"].startswith("broken"):
                    disagreements.append(f"{key} ({s['kind']}): only one side graded it: stock {st}, ours {ou_score}")
                continue
            compared += 1
            if abs(st - ou_score) > 1e-9:
                disagreements.append(f"{key} ({s['kind']}): stock {st:g} != ours {ou_score:g}")

        print()
        print(f"scores: {compared} submissions graded by both; {len(disagreements)} disagreement(s)")
        for d in disagreements:
            print(f"  DISAGREE {d}")
        for w in wrong_expect:
            print(f"  note: not the score the class was built for: {w}")
        print("broken submissions:")
        fails = stock_failures(logs, subs)
        for s in subs:
            if not s["kind"].startswith("broken"):
                continue
            key = (s["lesson"], s["student"])
            ou = ours[key]
            ours_said = f"{ou['status']}, {ou['score']:g}/{ou['max_score']:g}: {ou['verdict']}" if ou else "no result"
            stock_said = ("no score" if stock[key] is None else f"score {stock[key]:g}") + (
                f"; log: {fails[key]}" if fails[key] else ""
            )
            print(f"  {s['student']}/{s['lesson']} [{s['kind']}]")
            print(f"    stock: {stock_said}")
            print(f"    ours:  {ours_said}")
        print("stock exit codes: " + ", ".join(f"{ls}={rc}" for ls, (rc, _) in logs.items()))

        # ------------------------------------------------ timing
        n = len(subs)
        graded = [r for r in ours.values() if r and r.get("status") == "graded"]
        startups = [r["timings"]["startup"] for r in graded if r.get("timings")]
        executes = [r["timings"]["execute"] for r in graded if r.get("timings")]
        print()
        print(
            f"stock: {stock_seconds:7.1f} s for {n} submissions = {stock_seconds / n:.3f} s/submission "
            f"(sequential kernels, {len(LESSONS)} CLI calls)"
        )
        print(
            f"ours:  {ours_seconds:7.1f} s for {n} submissions = {ours_seconds / n:.3f} s/submission "
            f"(-j {args.workers}, whole CLI command incl. start-up; {configs[0][0]}"
            + (f", median of {args.repeat}" if args.repeat > 1 else "")
            + ")"
        )
        if executes:
            print(
                f"ours per graded submission (worker side, n={len(executes)}): "
                f"startup median {statistics.median(startups):.3f} s (fork + sandbox), "
                f"execute median {statistics.median(executes):.3f} s "
                f"(min {min(executes):.2f}, max {max(executes):.2f}; includes startup)"
            )
            busy = sum(executes)
            print(
                f"  worker-seconds executing: {busy:.1f} s over {args.workers} workers "
                f"= {busy / args.workers:.1f} s of the {ours_seconds:.1f} s wall "
                f"(workers busy {busy / args.workers / ours_seconds:.0%})"
            )
            print(
                f"  ceiling if nothing but execution counted (wall = worker-seconds / -j): "
                f"{stock_seconds / (busy / args.workers):.1f}x"
            )
        if not args.no_breakdown:
            b = ours_breakdown(ours_root, args.workers)
            print(
                f"ours, breakdown (a separate in-process GradeRun, {b['n']} submissions, {b['seconds']:.1f} s wall;"
                f" not the timed run):"
            )
            print("  GradeRun.report.phase_seconds (summed over submissions; execute runs in parallel):")
            for phase, sec in b["phase_seconds"].items():
                once = {
                    "setup": "cluster start, nbgrader ready",
                    "fork server wait": "workers waiting for the fork server's imports, summed",
                    "teardown": "drops finished, cluster stopped",
                }
                if phase in once:  # at the start or the end of the run, not per submission
                    print(f"    {phase:<16} {fmt(sec)} s (once: {once[phase]})")
                else:
                    print(f"    {phase:<16} {fmt(sec)} s total, {sec / max(b['n'], 1):.3f} s/submission")
            print("  steps (wrapped, summed; [db thread] runs beside the main thread):")
            for label, sec in sorted(b["timers"].items(), key=lambda kv: -kv[1]):
                c = b["counts"][label]
                print(f"    {label:<45} {fmt(sec)} s  ({c} call(s), {sec / max(c, 1) * 1000:.0f} ms each)")
            for label in b["missing"]:
                print(f"    (not timed, not found: {label})")
            main_thread = sum(b["timers"][k] for k in b["timers"] if "setup" not in k and "db thread" not in k)
            print(
                f"    => main thread busy {main_thread:.1f} s of {b['seconds']:.1f} s wall "
                f"(serial: bounds throughput whatever -j is)"
            )
        if len(configs) > 1:
            base_label = configs[0][0]
            base = statistics.median(timings[base_label])
            base_cpu = statistics.median(cpu[base_label])
            base_worker = statistics.median(worker[base_label])
            print()
            print(
                f"ours by speed-up configuration ({SPEEDUPS_ENV}; median of {args.repeat}, interleaved; "
                f"+x% = slower than {base_label}; CPU = the grading command's own process, not the fork "
                f"server's nor PostgreSQL's; workers = the submissions' execute timings, summed):"
            )
            for label, value in configs:
                med, med_cpu = statistics.median(timings[label]), statistics.median(cpu[label])
                med_worker = statistics.median(worker[label])
                runs = ", ".join(f"{t:.2f}" for t in timings[label])
                print(
                    f"  {label:<34} {value or '(unset)':<26} wall {med:6.2f} s {(med - base) / base:+6.1%}  "
                    f"CPU {med_cpu:6.2f} s {(med_cpu - base_cpu) / base_cpu:+6.1%}  "
                    f"workers {med_worker:6.2f} s {(med_worker - base_worker) / max(base_worker, 1e-9):+6.1%}  "
                    f"[wall: {runs}]"
                )
        print()
        if disagreements:
            print("SCORES DISAGREE: see above")
        print(f"throughput ratio (stock/ours): {stock_seconds / ours_seconds:.1f}x")
        return 1 if disagreements else 0
    finally:
        if held:
            release()
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
