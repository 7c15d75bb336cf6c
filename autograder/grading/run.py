"""Grade a class: nbgrader's layout in, gradebook + exports out, submissions in parallel.

`GradeRun` is the scheduler only: it holds the course's lock, clears what a killed run
left (course_lock.py), sets the run up, and walks every submission through the stages
of `stages.PIPELINE` (one module each) — the main-thread stages here, the worker stage
in a thread pool — retrying once a submission the grader (not the submission) failed
on, and stopping cleanly on Ctrl-C.

Everything for one submission is staged and then moved into place, and its result file
is written last, with the submission's checksum: a re-run skips what is already graded
(unless forced), and an interrupted run (Ctrl-C, a crash) leaves either the complete
old result or the complete new one, never half of either; the next run clears what a
killed one left (its staging folder, a temporary file, databases, see
`GradingDatabases.sweep_stale`). The process's working directory is never changed.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from autograder.course.layout import lessons as course_lessons
from autograder.db.embedded import EmbeddedPostgres
from autograder.grading import gradebook, speedups
from autograder.grading.admin_loop import AdminLoop
from autograder.grading.context import RunContext, Timings
from autograder.grading.course_lock import CourseLock, clear_leftovers, remove_tree
from autograder.grading.databases import GradingDatabases
from autograder.grading.executor import Executor
from autograder.grading.job import SubmissionJob
from autograder.grading.layout import EXPORTS_DIR, RunPaths
from autograder.grading.options import GradeOptions
from autograder.grading.results import SubmissionResult, checksum, write_json_atomically
from autograder.grading.scores import write_scores_csv
from autograder.grading.stages import PIPELINE
from autograder.grading.stages.feedback import write_feedback
from autograder.grading.stages.provision import release
from autograder.paths import project_root

__all__ = ["EXPORTS_DIR", "GradeOptions", "GradeRun", "RunReport", "find_submissions"]

log = logging.getLogger(__name__)

# A worker stage's future -> its job and the index of the stage that comes after it.
Pending = dict["concurrent.futures.Future[SubmissionJob]", tuple[SubmissionJob, int]]

DROPS_WAIT = 120  # seconds the end of a run waits for the databases being dropped


@dataclass
class RunReport:
    results: list[SubmissionResult] = field(default_factory=list)
    skipped: list[SubmissionJob] = field(default_factory=list)  # already graded, same files
    protections_off: dict[str, str] = field(default_factory=dict)
    database_note: str = ""
    interrupted: bool = False
    seconds: float = 0.0
    phase_seconds: dict[str, float] = field(default_factory=dict)


def find_submissions(root: Path, options: GradeOptions) -> list[SubmissionJob]:
    known = set(course_lessons(project_root()))
    wanted_lessons = set(options.lessons) if options.lessons else None
    wanted_students = set(options.students) if options.students else None
    found: list[SubmissionJob] = []
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
            found.append(SubmissionJob(student_dir.name, lesson_dir.name, lesson_dir))
    return found


class GradeRun:
    def __init__(
        self,
        root: Path,
        options: GradeOptions,
        on_progress: Callable[[SubmissionResult], None] | None = None,
        on_start: Callable[[int], None] | None = None,
    ):
        self.paths = RunPaths.for_this_process(root)
        self.root = self.paths.root
        self.options = options
        self.on_progress = on_progress or (lambda result: None)
        self.on_start = on_start or (lambda to_grade: None)  # under the lock, before grading starts
        self.report = RunReport()
        self.timings = Timings(self.report.phase_seconds)
        self._stop = threading.Event()
        self._lock = CourseLock(self.root)
        self._attempts: dict[tuple[str, str], int] = {}

    # ------------------------------------------------------------------ lock and recovery
    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the course's grading lock (SetupError if another run holds it). `run()` takes
        it too; a caller may take it first, e.g. to refuse before drawing a progress bar."""
        if self._lock.held:
            yield
            return
        self._lock.acquire()
        try:
            yield
        finally:
            self._lock.release()

    def run(self) -> RunReport:
        with self.locked():
            clear_leftovers(self.paths)
            with speedups.faster_nbgrader(), gradebook.converters_stay_put():
                return self._run()

    # ------------------------------------------------------------------ the run
    def _run(self) -> RunReport:
        started = time.monotonic()
        previous_handler = None
        if threading.current_thread() is threading.main_thread():
            previous_handler = signal.signal(signal.SIGINT, self._on_sigint)
        todo: list[SubmissionJob] = []
        for job in find_submissions(self.root, self.options):
            job.checksum = checksum(job.folder)
            (self.report.skipped if self._already_graded(job) else todo).append(job)
        self.on_start(len(todo))
        loop = AdminLoop()
        dbs: GradingDatabases | None = None
        cluster = None
        run: RunContext | None = None
        try:
            if not todo:
                return self.report
            # The fork server imports the heavy modules (~1 s) while nbgrader gets ready.
            warm = Executor.warm_up_in_background()  # (at once if the CLI started it already)
            api = gradebook.api_for_run(self.paths)
            gradebook.ensure_assignments(api, self.root, {job.lesson for job in todo})
            dbs, cluster = GradingDatabases.open_for_run()
            loop.run(dbs.connect())
            loop.run(dbs.sweep_stale())
            self.report.database_note = _database_note(dbs)
            self.timings.add("setup", time.monotonic() - started)
            # Not joined here: the first submissions are prepared while the fork server
            # finishes its imports; each worker waits for it before its first fork.
            run = RunContext(
                paths=self.paths,
                options=self.options,
                api=api,
                dbs=dbs,
                loop=loop,
                executor=Executor(self.options.deadlines),
                timings=self.timings,
                warming=warm,
            )
            self._schedule(run, todo)
            if self.options.feedback and not self._stop.is_set():
                with self.timings.timed("feedback"):
                    write_feedback(self.root, self.report.results)
            write_scores_csv(self.root)
        finally:
            ending = time.monotonic()
            self._tear_down(loop, dbs, cluster, run)
            if previous_handler is not None:
                signal.signal(signal.SIGINT, previous_handler)
            self.timings.add("teardown", time.monotonic() - ending)
            self.report.seconds = time.monotonic() - started
        return self.report

    def _tear_down(
        self, loop: AdminLoop, dbs: GradingDatabases | None, cluster: EmbeddedPostgres | None, run: RunContext | None
    ) -> None:
        """Every database of the run dropped, the admin loop and cluster released, staging removed.
        Whatever fails here is logged and left for the next run, which sweeps it."""
        if dbs is not None:
            drops = run.drops if run is not None else []
            _, not_done = concurrent.futures.wait(drops, timeout=DROPS_WAIT)
            if not_done:
                log.warning(
                    "%d database drop(s) did not finish within %d s; dropping what is left", len(not_done), DROPS_WAIT
                )
            for step, what in (
                (dbs.drop_all_of_this_run, "drop this run's databases"),
                (dbs.close, "close the admin connection"),
            ):
                try:
                    loop.run(step())
                except Exception as exc:  # noqa: BLE001 - the next run sweeps whatever is left
                    log.warning("could not %s: %s (the next run sweeps what is left)", what, exc)
        loop.close()
        if cluster is not None:
            cluster.release()
        remove_tree(self.paths.staging)
        remove_tree(self.paths.proxy_sockets)

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        if self._stop.is_set():
            raise KeyboardInterrupt  # a second Ctrl-C: stop now
        log.info("Ctrl-C: finishing what runs, starting nothing new")
        self._stop.set()
        self.report.interrupted = True

    def _already_graded(self, job: SubmissionJob) -> bool:
        path = self.paths.result_file(job.lesson, job.student)
        if self.options.force or not path.exists():
            return False
        try:
            return bool(json.loads(path.read_text()).get("checksum") == job.checksum)
        except (OSError, ValueError):
            return False

    # ------------------------------------------------------------------ scheduling
    def _schedule(self, run: RunContext, todo: list[SubmissionJob]) -> None:
        """Every job through PIPELINE: main-thread stages here, the worker stage in the pool."""
        workers = self.options.workers
        pending: Pending = {}
        waiting = list(todo)
        with concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="grade") as pool:
            while (waiting or pending) and not self._stop.is_set():
                # Keep more submissions prepared than there are workers: the main thread's
                # nbgrader steps then overlap with execution instead of idling the workers.
                while waiting and len(pending) < 2 * workers and not self._stop.is_set():
                    job = waiting.pop(0)
                    self._advance(run, pool, job, 0, pending, waiting)
                if not pending:
                    continue
                done, _ = concurrent.futures.wait(pending, timeout=0.5, return_when=concurrent.futures.FIRST_COMPLETED)
                for future in done:
                    job, next_stage = pending.pop(future)
                    try:
                        # An exception from the worker is the grader's (the submission's own
                        # failures are an Execution): retried, never recorded as a zero.
                        future.result()
                    except Exception as exc:  # noqa: BLE001
                        self._grader_failed(run, job, PIPELINE[next_stage - 1].name, exc, waiting)
                        continue
                    self._advance(run, pool, job, next_stage, pending, waiting)
            if self._stop.is_set():
                run.executor.kill_all()
                for future, (job, _) in pending.items():
                    future.cancel()
                    release(job, run)

    def _advance(
        self,
        run: RunContext,
        pool: concurrent.futures.ThreadPoolExecutor,
        job: SubmissionJob,
        first: int,
        pending: Pending,
        waiting: list[SubmissionJob],
    ) -> None:
        """Run the job's stages from `first` on: main-thread ones now; a worker stage is handed to
        the pool (and the job continues when it is done). A finished job is reported."""
        for index in range(first, len(PIPELINE)):
            stage = PIPELINE[index]
            if job.result is not None and not stage.after_verdict:
                continue
            if stage.in_worker:
                pending[pool.submit(stage.run, job, run)] = (job, index + 1)
                return
            log.debug("%s: %s", job.name, stage.name)
            try:
                with self.timings.timed(stage.name):
                    stage.run(job, run)
            except Exception as exc:  # noqa: BLE001 - one submission never stops the run
                self._grader_failed(run, job, stage.name, exc, waiting)
                return
        assert job.result is not None
        if job.execution is not None:
            self.report.protections_off.update(job.execution.protections.off)
        self.report.results.append(job.result)
        self.on_progress(job.result)

    def _grader_failed(
        self, run: RunContext, job: SubmissionJob, stage: str, exc: BaseException, waiting: list[SubmissionJob]
    ) -> None:
        """The grader failed on this submission (its database could not be made, nbgrader could not
        write the result...): that is no grade. It is tried once more at the end of this run; if it
        fails again it is recorded as not graded, with no checksum, so the next run tries again."""
        release(job, run)
        why = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]
        log.warning("grading %s failed in stage %s: %s", job.name, stage, why, exc_info=exc)
        key = (job.student, job.lesson)
        self._attempts[key] = attempts = self._attempts.get(key, 0) + 1
        if attempts < 2:
            log.info("%s will be tried again at the end of this run", job.name)
            waiting.append(SubmissionJob(job.student, job.lesson, job.folder, job.checksum))
            return
        result = SubmissionResult(
            job.student,
            job.lesson,
            "error",
            f"not graded: the grader failed ({why}); the next run will try again",
            checksum="",
        )
        write_json_atomically(self.paths.result_file(job.lesson, job.student), result.to_json())
        self.report.results.append(result)
        self.on_progress(result)


def _database_note(dbs: GradingDatabases) -> str:
    notes = list(dbs.notes)
    if not dbs.isolated_server:
        notes.insert(
            0,
            "GRADING_DATABASE_URL is an external server: each submission reaches it only through "
            "a socket of its own that admits its own role to its own database (created closed, "
            "PUBLIC revoked)",
        )
    return "; ".join(notes)
