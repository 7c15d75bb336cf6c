"""A workshop hub under load: learners signing in, spawning and running lesson 00 all at once.

    .venv/bin/python benchmarks/hub_load.py                     # 1 alone, then groups of 5, 10, 20 (~6 min, root)
    .venv/bin/python benchmarks/hub_load.py --sizes 20          # only the 20-learner group

A real `autograder hub` (as `make hub` starts it: its own PostgreSQL, FirstUseAuthenticator, one OS
account and one database role per learner) on a free port, with a throwaway state folder and
participant list. Each learner, in a thread of their own, does what a person does: signs in through
the login form, clicks "Start My Server", waits until the server answers through the proxy, starts a
kernel in it and runs lesson 00 top to bottom (the release answered from the solution, so the run is
the lesson's own work, not errors), cell by cell.

The baseline, measured in the same run, is one learner doing the same alone. Each group is a new set
of learners (new accounts, new servers), all starting together; after the group its servers are
stopped, so the groups do not add up. Reported per group: spawn time (p50, p95), the lesson's run time
(median, max, and the median as a multiple of the baseline), memory per learner (RSS of every process
of their account: server + kernel, median and max), the peak of PostgreSQL client connections, and
every error. "Degraded" marks a group whose median lesson time is over 2x the baseline, whose spawn
p95 is over 30 s, or which had an error. Accounts are removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pwd
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # `benchmarks.submissions` when run as a script

import httpx  # noqa: E402
import nbformat  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from autograder.db import admin  # noqa: E402
from autograder.hub import provision, users  # noqa: E402
from autograder.hub.client import Participant  # noqa: E402
from autograder.hub.run import free_port  # noqa: E402
from benchmarks.submissions import answered  # noqa: E402

LESSON = "00_foundations"
PASSWORD = "load-benchmark-password"
AUTOGRADER = str(Path(sys.executable).with_name("autograder"))


@dataclass
class LearnerRun:
    name: str
    spawn_s: float | None = None
    lesson_s: float | None = None
    rss_mb: float | None = None
    error: str | None = None


@dataclass
class Group:
    size: int
    runs: list[LearnerRun] = field(default_factory=list)
    peak_connections: int = 0

    def values(self, attribute: str) -> list[float]:
        return [getattr(r, attribute) for r in self.runs if getattr(r, attribute) is not None]


def lesson_cells() -> list[str]:
    release = nbformat.read(REPO / "notebooks" / LESSON / f"{LESSON}.ipynb", as_version=4)
    solution = nbformat.read(REPO / "solutions" / LESSON / f"{LESSON}.ipynb", as_version=4)
    notebook = nbformat.reads(nbformat.writes(answered(release, solution)), as_version=4)
    return [cell.source for cell in notebook.cells if cell.cell_type == "code" and cell.source.strip()]


def account_rss_mb(name: str) -> float:
    """Resident memory of every process of the account `name` (its server, kernels, their children)."""
    uid = pwd.getpwnam(name).pw_uid
    total = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if proc.stat().st_uid != uid:
                continue
            for line in (proc / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except (OSError, ValueError):
            continue
    return total / 1024


class Hub:
    def __init__(self, names: list[str]) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="hub-load-"))
        os.chmod(self.base, 0o755)  # the exchange below it must be reachable by learners
        self.state = self.base / "state"
        self.participants = self.base / "participants.txt"
        self.participants.write_text("".join(f"{name}\n" for name in names))
        self.port = free_port()
        self.log = self.base / "hub.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {**os.environ, "COURSE_DATA_DIR": str(self.state)}
        env.pop("DATABASE_URL", None)
        command = [AUTOGRADER, "hub", "--port", str(self.port), "--participants", str(self.participants)]
        command += ["--exchange", str(self.base / "exchange"), "--cull-idle", "0"]
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"the hub exited:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/hub/api", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise SystemExit(f"the hub did not answer in 120 s:\n{self.log.read_text()[-3000:]}")

    def client_connections(self) -> int:
        info = provision.hub_cluster(self.state / "hub").status()
        if info is None:
            return 0

        async def count() -> int:
            conn = await admin.connect(make_url(info.url("postgres")))
            try:
                value = await conn.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"
                )
                return int(value) - 1  # not this one
            finally:
                await conn.close()

        return asyncio.run(count())

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=90)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        shutil.rmtree(self.base, ignore_errors=True)


def learner_does_the_lesson(hub: Hub, run: LearnerRun, cells: list[str], start: threading.Barrier) -> None:
    start.wait()
    try:
        with Participant(hub.url, run.name, PASSWORD, timeout=120) as learner:
            signed = learner.sign_in()
            if signed.status_code != 200:
                raise RuntimeError(f"sign-in answered {signed.status_code}")
            run.spawn_s = learner.start_server()
            kernel = learner.start_kernel()
            try:
                began = time.monotonic()
                for index, code in enumerate(cells):
                    result = kernel.run(code)
                    if result.status != "ok":
                        raise RuntimeError(f"cell {index}: {result.error}")
                run.lesson_s = time.monotonic() - began
                run.rss_mb = account_rss_mb(run.name)
            finally:
                kernel.close()
            learner.stop_server()
    except Exception as exc:  # noqa: BLE001 - a learner's failure is a figure of the benchmark, not its end
        run.error = f"{type(exc).__name__}: {exc}"[:300]


def run_group(hub: Hub, names: list[str], cells: list[str]) -> Group:
    group = Group(size=len(names), runs=[LearnerRun(name) for name in names])
    start = threading.Barrier(len(names))
    threads = [threading.Thread(target=learner_does_the_lesson, args=(hub, run, cells, start)) for run in group.runs]
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        try:
            group.peak_connections = max(group.peak_connections, hub.client_connections())
        except Exception:  # noqa: BLE001 - a missed sample only lowers the peak
            pass
        time.sleep(0.5)
    return group


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")


def report(alone: Group, groups: list[Group]) -> None:
    base = statistics.median(alone.values("lesson_s")) if alone.values("lesson_s") else float("nan")
    print(f"\nlesson {LESSON}, run cell by cell in each learner's own kernel; 2 cores, {os.cpu_count()} CPUs seen")
    print(
        f"{'learners':>8} {'spawn p50':>9} {'p95':>6} {'lesson med':>10} {'max':>6} {'x alone':>7} "
        f"{'MB/learner':>10} {'max':>6} {'PG conns':>8}  errors"
    )
    degraded_at = None
    for group in [alone, *groups]:
        spawn, lesson, rss = group.values("spawn_s"), group.values("lesson_s"), group.values("rss_mb")
        errors = [f"{r.name}: {r.error}" for r in group.runs if r.error]
        ratio = statistics.median(lesson) / base if lesson else float("nan")
        degraded = bool(errors) or ratio > 2 or percentile(spawn, 0.95) > 30
        if degraded and degraded_at is None and group is not alone:
            degraded_at = group.size
        nan = float("nan")
        lesson_median = statistics.median(lesson) if lesson else nan
        rss_median = statistics.median(rss) if rss else nan
        print(
            f"{group.size:>8} {percentile(spawn, 0.5):>9.1f} {percentile(spawn, 0.95):>6.1f} "
            f"{lesson_median:>10.1f} {max(lesson, default=nan):>6.1f} {ratio:>7.2f} "
            f"{rss_median:>10.0f} {max(rss, default=nan):>6.0f} "
            f"{group.peak_connections:>8}  {len(errors)}{' DEGRADED' if degraded else ''}"
        )
        for error in errors[:5]:
            print(f"         {error}")
    print(json.dumps({"baseline_lesson_s": base, "degraded_at": degraded_at}))
    print(f"degrades at: {degraded_at if degraded_at is not None else 'none of the sizes run'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="5,10,20", help="group sizes, comma-separated (default 5,10,20)")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("error: the hub makes an account per learner: run this as root.", file=sys.stderr)
        return 2
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    tag = secrets.token_hex(2)
    names = [f"hl{tag}n{i:03d}" for i in range(1 + sum(sizes))]
    cells = lesson_cells()
    hub = Hub(names)
    try:
        hub.start()
        print(f"hub on {hub.url}; {len(names)} participants; lesson {LESSON}: {len(cells)} code cells", file=sys.stderr)
        alone = run_group(hub, names[:1], cells)
        print(
            f"alone: spawn {alone.runs[0].spawn_s}, lesson {alone.runs[0].lesson_s}, {alone.runs[0].error}",
            file=sys.stderr,
        )
        groups, offset = [], 1
        for size in sizes:
            group = run_group(hub, names[offset : offset + size], cells)
            offset += size
            groups.append(group)
            print(f"group of {size} done", file=sys.stderr)
        report(alone, groups)
        return 0
    finally:
        hub.stop()
        for name in names:
            try:
                users.remove_user(name)
            except Exception as exc:  # noqa: BLE001 - say what is left behind, remove the rest
                print(f"could not remove account {name}: {exc}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
