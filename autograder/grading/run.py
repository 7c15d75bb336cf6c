"""Grade a class: nbgrader's layout in, gradebook + exports out, submissions in parallel.

Per submission the pipeline is:

    prepare   (main thread)  nbgrader sanitize: record the submission, restore test cells
    database  (main thread)  a fresh database and role, cloned from the lesson's template
    execute   (worker)       a forked, sandboxed process runs the cells
    finish    (main thread)  nbgrader scoring writes the gradebook; results and exports written
    cleanup   (main thread)  the database and role are dropped

Only the main thread writes the gradebook and the result files, and only one
run grades a course at a time (a lock file the kernel releases if the run dies).
Everything for one submission is staged and then moved into place, and its
result file is written last, with the submission's checksum: a re-run skips
what is already graded (unless forced), and an interrupted run (Ctrl-C, a
crash) leaves either the complete old result or the complete new one, never
half of either; the next run clears what a killed one left (its staging folder,
a temporary file, databases, see `GradingDatabases.sweep_stale`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import fcntl
import json
import logging
import os
import queue
import shutil
import signal
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from sqlalchemy.engine import make_url

from autograder.course.api import course_api
from autograder.course.layout import lessons as course_lessons
from autograder.db import url as urls
from autograder.db.embedded import pid_alive
from autograder.db.url import project_root
from autograder.errors import SetupError
from autograder.grading import exporters, sandbox
from autograder.grading.autograde import SplitAutograde, SubmissionProblem, sanitized_code_cells
from autograder.grading.databases import GradingDatabases
from autograder.grading.dbproxy import SubmissionProxy, Upstream
from autograder.grading.executor import Deadlines, Execution, Executor, JobSpec
from autograder.grading.nbgrader_speedups import faster_nbgrader
from autograder.grading.results import SubmissionResult, TestResult, checksum, tests_from, write_json_atomically

log = logging.getLogger(__name__)

EXPORTS_DIR = "exports"
STAGING_DIR = ".course/grading-staging"
LOCK_FILE = ".course/grading.lock"
RELEASE_FOR_GRADEBOOK = ".course/grading-release"


@dataclass
class GradeOptions:
    lessons: list[str] | None = None
    students: list[str] | None = None
    workers: int = field(default_factory=lambda: os.cpu_count() or 2)
    force: bool = False
    feedback: bool = False
    isolate: bool = True
    deadlines: Deadlines = field(default_factory=Deadlines)
    output_limit: int = 1_000_000
    limits: sandbox.Limits = field(default_factory=sandbox.Limits)


@dataclass
class Submission:
    student: str
    lesson: str
    folder: Path
    checksum: str = ""


@dataclass
class RunReport:
    results: list[SubmissionResult] = field(default_factory=list)
    skipped: list[Submission] = field(default_factory=list)
    protections_off: dict[str, str] = field(default_factory=dict)
    database_note: str = ""
    interrupted: bool = False
    seconds: float = 0.0
    phase_seconds: dict[str, float] = field(default_factory=dict)


def find_submissions(root: Path, options: GradeOptions) -> list[Submission]:
    known = set(course_lessons(project_root()))
    wanted_lessons = set(options.lessons) if options.lessons else None
    wanted_students = set(options.students) if options.students else None
    found = []
    base = root / "submitted"
    if not base.is_dir():
        return found
    for student_dir in sorted(p for p in base.iterdir() if p.is_dir()):
        if wanted_students is not None and student_dir.name not in wanted_students:
            continue
        for lesson_dir in sorted(p for p in student_dir.iterdir() if p.is_dir()):
            if lesson_dir.name not in known:
                continue
            if wanted_lessons is not None and lesson_dir.name not in wanted_lessons:
                continue
            found.append(Submission(student_dir.name, lesson_dir.name, lesson_dir))
    return found


class _Loop:
    """An event loop in a thread of its own, for the async database administration."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="grading-db", daemon=True)
        self.thread.start()

    def run(self, coro, timeout: float = 60):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def submit(self, coro) -> concurrent.futures.Future:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def close(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        self.loop.close()


class Interrupted(Exception):
    pass


class GradeRun:
    def __init__(self, root: Path, options: GradeOptions, on_progress: Callable[[SubmissionResult], None] | None = None):
        self.root = Path(root).absolute()
        self.options = options
        self.on_progress = on_progress or (lambda result: None)
        self.report = RunReport()
        self._stop = threading.Event()
        self._drops: list[concurrent.futures.Future] = []
        self._timing_lock = threading.Lock()
        self.staging = self.root / STAGING_DIR / str(os.getpid())
        self._lock_fd: int | None = None
        self._warming: threading.Thread | None = None
        self._attempts: dict[tuple[str, str], int] = {}
        self._proxy_seq = 0

    # ------------------------------------------------------------------ setup
    def _api(self):
        return course_api(
            root=self.root,
            release_directory=RELEASE_FOR_GRADEBOOK,
            autograded_directory=os.path.relpath(self.staging / "autograded", self.root),
        )

    def _ensure_assignments(self, api, lessons: set[str]) -> None:
        """The gradebook must know each lesson's cells; (re)build them when the source changed."""
        state_file = self.root / ".course" / "grading-assignments.json"
        state = json.loads(state_file.read_text()) if state_file.exists() else {}
        from autograder.course.api import checked

        for lesson in sorted(lessons):
            source = project_root() / "solutions" / lesson / f"{lesson}.ipynb"
            digest = checksum(source.parent)
            if state.get(lesson) == digest and (self.root / RELEASE_FOR_GRADEBOOK / lesson).exists():
                continue
            if self.root != project_root():
                target = self.root / "solutions" / lesson
                shutil.rmtree(target, ignore_errors=True)
                shutil.copytree(source.parent, target)
            checked(api.generate_assignment(lesson, force=True, create=True), f"generate_assignment {lesson}")
            state[lesson] = digest
        write_json_atomically(state_file, state)

    def _result_path(self, sub: Submission) -> Path:
        return self.root / EXPORTS_DIR / sub.lesson / sub.student / "result.json"

    def _already_graded(self, sub: Submission) -> bool:
        path = self._result_path(sub)
        if self.options.force or not path.exists():
            return False
        try:
            return json.loads(path.read_text()).get("checksum") == sub.checksum
        except (OSError, ValueError):
            return False

    # ------------------------------------------------------------------ the run
    def run(self) -> RunReport:
        with self.locked():
            self._clear_leftovers()
            with faster_nbgrader():  # nbgrader's per-submission costs, paid once per run
                return self._run()

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the course's grading lock (SetupError if another run holds it). `run()` takes
        it too; a caller may take it first, e.g. to refuse before drawing a progress bar."""
        if self._lock_fd is not None:
            yield
            return
        self._lock_fd = self._lock_course()
        try:
            yield
        finally:
            os.close(self._lock_fd)  # releases the lock
            self._lock_fd = None

    def _lock_course(self) -> int:
        """One run per course: two would write one SQLite gradebook from two processes and
        sweep each other's staging. flock is released by the kernel if this process dies."""
        path = self.root / LOCK_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise SetupError(f"Another `autograder grade` (pid {holder}) is grading {self.root}; "
                             "wait for it to finish, or stop it (Ctrl-C) and run this again.") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return fd

    def _clear_leftovers(self) -> None:
        """What a run killed outright (kill -9, a power cut) left behind. Under the lock, every
        other staging folder is a dead run's."""
        staging_root = self.root / STAGING_DIR
        if staging_root.is_dir():
            for folder in staging_root.iterdir():
                if folder != self.staging:
                    shutil.rmtree(folder, ignore_errors=True)
        # Database sockets of runs that are gone (the lock says no run of this course is alive;
        # a folder whose pid still runs belongs to another course's run).
        for folder in _proxy_root().parent.glob("autograder-proxy-*"):
            pid = folder.name.rsplit("-", 1)[-1]
            if pid.isdigit() and not pid_alive(int(pid)):
                shutil.rmtree(folder, ignore_errors=True)
        # Half-written result files (write_json_atomically's temporaries): never read, removed.
        for tmp in (self.root / EXPORTS_DIR).glob("*/*/.*"):
            if tmp.is_file():
                tmp.unlink(missing_ok=True)
        # A graded notebook being replaced: the old one is put back if the new one never arrived
        # (its result.json is still the old one's), else it is removed.
        for old in (self.root / "autograded").glob("*/.*.old"):
            final = old.with_name(old.name[1:-len(".old")])
            if final.exists():
                shutil.rmtree(old, ignore_errors=True)
            else:
                old.rename(final)

    def _run(self) -> RunReport:
        started = time.monotonic()
        previous_handler = None
        if threading.current_thread() is threading.main_thread():
            previous_handler = signal.signal(signal.SIGINT, self._on_sigint)
        submissions = find_submissions(self.root, self.options)
        todo = []
        for sub in submissions:
            sub.checksum = checksum(sub.folder)
            (self.report.skipped if self._already_graded(sub) else todo).append(sub)
        loop = _Loop()
        dbs: GradingDatabases | None = None
        cluster = None
        cwd = os.getcwd()
        try:
            if not todo:
                return self.report
            # The fork server imports the heavy modules (~1 s) while nbgrader gets ready.
            warm = Executor.warm_up_in_background()  # (at once if the CLI started it already)
            os.chdir(self.root)  # nbgrader resolves course paths relative to the root
            api = self._api()
            self._ensure_assignments(api, {s.lesson for s in todo})
            dbs, cluster = GradingDatabases.open_for_run()
            loop.run(dbs.connect())
            loop.run(dbs.sweep_stale())
            notes = list(dbs.notes)
            if not dbs.isolated_server:
                notes.insert(0, "GRADING_DATABASE_URL is an external server: each submission reaches it only through "
                                "a socket of its own that admits its own role to its own database (created closed, "
                                "PUBLIC revoked)")
            self.report.database_note = "; ".join(notes)
            self._timed("setup", time.monotonic() - started)
            # Not joined here: the first submissions are prepared while the fork server
            # finishes its imports; each worker waits for it before its first fork.
            self._warming = warm
            self._pipeline(api, dbs, loop, todo)
            if self.options.feedback and not self._stop.is_set():
                self._feedback()
            self._write_csv()
        finally:
            ending = time.monotonic()
            if dbs is not None:
                try:
                    concurrent.futures.wait(self._drops, timeout=120)
                    loop.run(dbs.drop_all_of_this_run())
                    loop.run(dbs.close())
                except Exception:  # noqa: BLE001 - the next run sweeps whatever is left
                    pass
            loop.close()
            if cluster is not None:
                cluster.release()
            shutil.rmtree(self.staging, ignore_errors=True)
            shutil.rmtree(_proxy_root(), ignore_errors=True)
            os.chdir(cwd)
            if previous_handler is not None:
                signal.signal(signal.SIGINT, previous_handler)
            self._timed("teardown", time.monotonic() - ending)
            self.report.seconds = time.monotonic() - started
        return self.report

    def _on_sigint(self, signum, frame):
        if self._stop.is_set():
            raise KeyboardInterrupt  # a second Ctrl-C: stop now
        self._stop.set()
        self.report.interrupted = True

    def _timed(self, phase: str, seconds: float) -> None:
        with self._timing_lock:  # workers add their waits too
            self.report.phase_seconds[phase] = self.report.phase_seconds.get(phase, 0.0) + seconds

    def _keep_paths(self, dbs: GradingDatabases) -> list[Path]:
        """What the sandbox binds into its root: Python, the package, and — for our own grading
        cluster, which asks every role for its password and lets it into its own database only —
        the cluster's socket folder. An external server's is never bound (see dbproxy)."""
        keep = _kept_paths()
        host = dict(dbs.admin_url.query).get("host") or dbs.admin_url.host or ""
        if dbs.isolated_server and host.startswith("/"):
            keep.append(Path(host))
        return keep

    def _proxy(self, dbs: GradingDatabases, database, slot: int) -> SubmissionProxy:
        query = dict(dbs.admin_url.query)
        host = query.get("host") or dbs.admin_url.host or "localhost"
        port = dbs.admin_url.port or int(query.get("port", 5432))
        self._proxy_seq += 1
        # Short: a unix socket's path has at most 107 bytes.
        folder = _proxy_root() / f"{slot}-{self._proxy_seq}"
        return SubmissionProxy(folder, Upstream(host, port), role=database.role, database=database.name)

    def _pipeline(self, api, dbs: GradingDatabases, loop: _Loop, todo: list[Submission]) -> None:
        executor = Executor(self.options.deadlines)
        slots: queue.Queue[int] = queue.Queue()
        for slot in range(self.options.workers):
            slots.put(slot)
        pending: dict[concurrent.futures.Future, dict] = {}
        waiting = list(todo)
        with concurrent.futures.ThreadPoolExecutor(self.options.workers, thread_name_prefix="grade") as pool:
            while (waiting or pending) and not self._stop.is_set():
                # Keep more submissions prepared than there are workers: the main thread's
                # nbgrader steps then overlap with execution instead of idling the workers.
                while waiting and len(pending) < 2 * self.options.workers and not self._stop.is_set():
                    sub = waiting.pop(0)
                    try:
                        started = self._start(api, dbs, loop, sub, executor, slots, pool)
                    except Exception as exc:  # noqa: BLE001 - one submission never stops the run
                        self._grader_failed(sub, exc, waiting)
                        continue
                    if started is not None:
                        pending[started[0]] = started[1]
                if not pending:
                    continue
                done, _ = concurrent.futures.wait(pending, timeout=0.5,
                                                  return_when=concurrent.futures.FIRST_COMPLETED)
                for future in done:
                    context = pending.pop(future)
                    try:
                        self._finish(api, dbs, loop, context, future)
                    except Exception as exc:  # noqa: BLE001 - the grader's failure, not the submission's
                        self._drop_later(loop, dbs, context)
                        self._grader_failed(context["sub"], exc, waiting)
            if self._stop.is_set():
                executor.kill_all()
                for future, context in pending.items():
                    future.cancel()
                    self._drop_later(loop, dbs, context)

    def _start(self, api, dbs, loop, sub: Submission, executor, slots, pool):
        t0 = time.monotonic()
        grader = SplitAutograde(coursedir=api.coursedir, parent=api)
        try:
            sanitized = grader.prepare(sub.lesson, sub.student)
        except SubmissionProblem as problem:
            self._not_graded(api, grader, sub, str(problem))
            return None
        except Exception as exc:  # noqa: BLE001 - nbgrader refuses (e.g. no notebook matched)
            self._not_graded(api, grader, sub, f"nbgrader could not read the submission ({exc})")
            return None
        if len(sanitized) != 1:
            self._not_graded(api, grader, sub, "the submission has no notebook of this lesson")
            return None
        self._timed("prepare", time.monotonic() - t0)
        # The database is made on the admin loop while this thread prepares the next one.
        database_future = loop.submit(dbs.create(sub.lesson))
        cells, graded = sanitized_code_cells(sanitized[0])

        def work():
            t0 = time.monotonic()
            if self._warming is not None and self._warming.is_alive():
                self._warming.join()
            t1 = time.monotonic()
            self._timed("fork server wait", t1 - t0)  # at the start only, while it imports
            database = database_future.result(timeout=120)
            self._timed("database", time.monotonic() - t1)
            context["database"] = database
            slot = slots.get()
            proxy = None
            try:
                workdir = self.staging / "work" / f"{sub.student}-{sub.lesson}"
                shutil.rmtree(workdir, ignore_errors=True)
                sandbox.prepare_workdir(workdir, slot)
                keep, url = self._keep_paths(dbs), database.url
                if not dbs.isolated_server:
                    # Not the external server's socket: one of its own, that reaches its own
                    # database as its own role only (see dbproxy).
                    proxy = self._proxy(dbs, database, slot)
                    loop.run(proxy.start(sandbox.SANDBOX_UID_BASE + slot if os.geteuid() == 0 else None))
                    keep.append(proxy.folder)
                    url = urls.render(make_url(database.url).set(host=None, port=None,
                                                                 query={"host": str(proxy.folder)}))
                spec = sandbox.SandboxSpec(workdir=workdir, slot=slot, isolate=self.options.isolate,
                                           keep=keep, limits=self.options.limits)
                env = {"COURSE_DB_URL": url, "DATABASE_URL": url,
                       "NBGRADER_EXECUTION": "autograde", "PYTHONHASHSEED": "0",
                       "MPLBACKEND": "Agg"}
                job = JobSpec(env=env, sandbox=spec, output_limit=self.options.output_limit,
                              deadlines=self.options.deadlines, graded_cells=graded)
                execution = executor.execute(cells, job)
                # Its process is gone: end what it left running on the server now, not at the drop.
                try:
                    loop.run(dbs.end_submission(database.name), timeout=15)
                except Exception as exc:  # noqa: BLE001 - the drop ends them too; the run goes on
                    log.warning("could not end %s's backends: %s", database.name, exc)
                return execution
            finally:
                if proxy is not None:
                    loop.run(proxy.close())
                slots.put(slot)

        context = {"sub": sub, "grader": grader, "database": None, "database_future": database_future,
                   "sanitized": sanitized[0]}
        return pool.submit(work), context

    def _grader_failed(self, sub: Submission, exc: BaseException, waiting: list[Submission]) -> None:
        """The grader failed on this submission (its database could not be made, nbgrader could not
        write the result...): that is no grade. It is tried once more at the end of this run; if it
        fails again it is recorded as not graded, with no checksum, so the next run tries again."""
        why = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]
        log.warning("grading %s/%s failed: %s", sub.student, sub.lesson, why, exc_info=exc)
        self._attempts[(sub.student, sub.lesson)] = attempts = self._attempts.get((sub.student, sub.lesson), 0) + 1
        if attempts < 2:
            waiting.append(sub)
            return
        result = SubmissionResult(sub.student, sub.lesson, "error",
                                  f"not graded: the grader failed ({why}); the next run will try again",
                                  checksum="")
        out = self.root / EXPORTS_DIR / sub.lesson / sub.student
        write_json_atomically(out / "result.json", result.to_json())
        self.report.results.append(result)
        self.on_progress(result)

    def _finish(self, api, dbs, loop, context, future) -> None:
        sub, grader, sanitized = context["sub"], context["grader"], context["sanitized"]
        t0 = time.monotonic()
        # An exception from the worker is the grader's (the submission's own failures are an
        # Execution): it propagates to _pipeline, which retries instead of recording a zero.
        execution: Execution = future.result()
        self._timed("execute", execution.seconds)
        grader.finish(sanitized, execution)
        self._drop_later(loop, dbs, context)
        grades = self._grades(api, sub)
        tests = tests_from(sanitized, grades)
        database = context["database"]
        # What the database watchdog ended (a lifted timeout, a memory hog...) is part of the verdict.
        notes = [*getattr(grader, "notes", []), *(dbs.watchdog_events(database.name) if database else [])]
        result = SubmissionResult(
            student=sub.student, lesson=sub.lesson, status="graded",
            verdict=_verdict(execution, tests, notes),
            score=sum(t.score for t in tests), max_score=sum(t.max_score for t in tests),
            tests=tests, checksum=sub.checksum, execution_time=execution.seconds,
            timings={"startup": round(execution.startup_seconds, 3), "execute": round(execution.seconds, 3)},
            protections_off=execution.protections.off,
        )
        self.report.protections_off.update(execution.protections.off)
        self._record(sub, result, grader)
        self._timed("finish", time.monotonic() - t0)

    def _drop_later(self, loop, dbs, context) -> None:
        """Drop the submission's database in the background (it waits for a checkpoint)."""
        async def drop_when_made():
            try:
                database = await asyncio.wrap_future(context["database_future"])
            except Exception:  # noqa: BLE001 - never made: nothing to drop
                return
            await dbs.drop(database.name)

        self._drops.append(loop.submit(drop_when_made()))

    def _not_graded(self, api, grader: SplitAutograde, sub: Submission, why: str) -> None:
        """Every test scores zero, with the reason; the gradebook says the same."""
        from nbgrader.api import Gradebook, MissingEntry

        grader.record_zero(sub.lesson, sub.student)
        tests = []
        with Gradebook(api.coursedir.db_url, api.coursedir.course_id) as gb:
            try:
                cells = gb.find_notebook(sub.lesson, sub.lesson).grade_cells
            except MissingEntry:
                cells = []
            for cell in sorted(cells, key=lambda c: c.name):
                tests.append(TestResult(cell.name, 0.0, float(cell.max_score), "error", f"not graded: {why}"))
        self._record(sub, SubmissionResult(sub.student, sub.lesson, "error", f"not graded: {why}",
                                           max_score=sum(t.max_score for t in tests), tests=tests,
                                           checksum=sub.checksum), grader)

    def _grades(self, api, sub: Submission) -> dict[str, tuple[float, float]]:
        from nbgrader.api import Gradebook

        with Gradebook(api.coursedir.db_url, api.coursedir.course_id) as gb:
            nb = gb.find_submission_notebook(sub.lesson, sub.lesson, sub.student)
            return {g.name: (float(g.score or 0.0), float(g.max_score)) for g in nb.grades}

    def _record(self, sub: Submission, result: SubmissionResult, grader: SplitAutograde) -> None:
        """Move the staged autograded notebook into place, then write the results (last)."""
        staged = self.staging / "autograded" / sub.student / sub.lesson
        final = self.root / "autograded" / sub.student / sub.lesson
        if staged.exists():
            final.parent.mkdir(parents=True, exist_ok=True)
            old = final.with_name(f".{final.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            if final.exists():
                final.rename(old)
            shutil.move(str(staged), str(final))
            shutil.rmtree(old, ignore_errors=True)
        out = self.root / EXPORTS_DIR / sub.lesson / sub.student
        write_json_atomically(out / "results.gradescope.json", exporters.gradescope(result))
        write_json_atomically(out / "results.exercism.json", exporters.exercism(result))
        write_json_atomically(out / "result.json", result.to_json())  # last: marks it graded
        self.report.results.append(result)
        self.on_progress(result)

    def _feedback(self) -> None:
        api = course_api(root=self.root, release_directory=RELEASE_FOR_GRADEBOOK)
        for result in self.report.results:
            if result.status == "graded":
                try:
                    api.generate_feedback(result.lesson, result.student, force=True)
                except Exception as exc:  # noqa: BLE001 - one notebook's feedback never stops the others'
                    log.warning("no feedback for %s/%s: %s", result.student, result.lesson, exc)

    def _write_csv(self) -> None:
        """All results on disk (this run's and earlier ones'), one row each."""
        rows = []
        for path in sorted((self.root / EXPORTS_DIR).glob("*/*/result.json")):
            try:
                rows.append(SubmissionResult.from_json(json.loads(path.read_text())))
            except (OSError, ValueError, TypeError):
                continue
        target = self.root / EXPORTS_DIR / "scores.csv"
        tmp = target.with_name(".scores.csv.tmp")
        tmp.write_text(exporters.scores_csv(rows))
        os.replace(tmp, target)


def _verdict(execution: Execution, tests, notes: list[str]) -> str:
    passed = sum(1 for t in tests if t.status == "pass")
    parts = [f"graded: {passed} of {len(tests)} tests passed"]
    if execution.ended != "completed":
        parts.append(f"{execution.ended}: {execution.detail}")
    parts += notes
    return "; ".join(parts)


def _proxy_root(pid: int | None = None) -> Path:
    """Where this run's database sockets for submissions live (outside the course folder)."""
    base = Path("/run") if os.geteuid() == 0 else Path(tempfile.gettempdir())
    return base / f"autograder-proxy-{pid or os.getpid()}"


def _kept_paths() -> list[Path]:
    import sys

    keep = {Path(sys.prefix), project_root() / "autograder", Path(os.path.realpath(sys.base_prefix))}
    return sorted(keep)
