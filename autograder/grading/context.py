"""What the stages of one run share: the course, the options, nbgrader, the databases, the sandbox slots."""

from __future__ import annotations

import concurrent.futures
import itertools
import queue
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from autograder.grading.admin_loop import AdminLoop
from autograder.grading.layout import RunPaths
from autograder.grading.options import GradeOptions

if TYPE_CHECKING:
    from nbgrader.apps import NbGraderAPI

    from autograder.grading.databases import GradingDatabases
    from autograder.grading.executor import Executor


class Timings:
    """Seconds per phase, summed over submissions; the workers add theirs too."""

    def __init__(self, into: dict[str, float]):
        self.seconds = into
        self._lock = threading.Lock()

    def add(self, phase: str, seconds: float) -> None:
        with self._lock:
            self.seconds[phase] = self.seconds.get(phase, 0.0) + seconds

    @contextmanager
    def timed(self, phase: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            self.add(phase, time.monotonic() - started)


@dataclass
class RunContext:
    paths: RunPaths
    options: GradeOptions
    api: NbGraderAPI
    dbs: GradingDatabases
    loop: AdminLoop
    executor: Executor
    timings: Timings
    warming: threading.Thread | None = None  # the fork server's imports, joined before the first fork
    slots: queue.Queue[int] = field(default_factory=queue.Queue)  # sandbox slots (uid, cgroup) free now
    drops: list[concurrent.futures.Future[None]] = field(default_factory=list)  # databases being dropped
    proxy_numbers: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        for slot in range(self.options.workers):
            self.slots.put(slot)
