"""Where a grading run reads and writes, all of it under the course root (or /run, /tmp for sockets).

Every path here is absolute: the run never changes the process's working directory,
and nbgrader resolves its own folders from `CourseDirectory.root` (see gradebook.py).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

EXPORTS_DIR = "exports"
STAGING_DIR = ".course/grading-staging"
LOCK_FILE = ".course/grading.lock"
RELEASE_FOR_GRADEBOOK = ".course/grading-release"
ASSIGNMENTS_STATE = ".course/grading-assignments.json"


@dataclass(frozen=True)
class RunPaths:
    """The folders of one run (`pid`: the grading process) on one course."""

    root: Path
    pid: int

    @classmethod
    def for_this_process(cls, root: Path) -> RunPaths:
        return cls(Path(root).absolute(), os.getpid())

    @property
    def staging(self) -> Path:
        """Everything of this run before it is moved into place; removed when the run ends."""
        return self.root / STAGING_DIR / str(self.pid)

    @property
    def staged_autograded(self) -> Path:
        return self.staging / "autograded"

    @property
    def exports(self) -> Path:
        return self.root / EXPORTS_DIR

    def export_folder(self, lesson: str, student: str) -> Path:
        return self.exports / lesson / student

    def result_file(self, lesson: str, student: str) -> Path:
        return self.export_folder(lesson, student) / "result.json"

    def autograded(self, lesson: str, student: str) -> Path:
        return self.root / "autograded" / student / lesson

    def workdir(self, lesson: str, student: str) -> Path:
        """The submission's own folder inside the sandbox."""
        return self.staging / "work" / f"{student}-{lesson}"

    @property
    def proxy_sockets(self) -> Path:
        return proxy_root(self.pid)


def proxy_root(pid: int | None = None) -> Path:
    """Where a run's database sockets for submissions live (outside the course folder)."""
    base = Path("/run") if os.geteuid() == 0 else Path(tempfile.gettempdir())
    return base / f"autograder-proxy-{pid or os.getpid()}"
