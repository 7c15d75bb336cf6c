"""The check worker: a grading process the lab keeps warm, one check at a time.

    python -m autograder.labcheck.worker

Reads one JSON request per line on stdin — `{"notebook": "/abs/path.ipynb", "shown": "01_x/01_x.ipynb"}` —
and answers each with one JSON line on the file descriptor it was given as its first argument
(default: stdout), `{"ok": true, "report": {...}}` or `{"ok": false, "error": "one sentence"}`.
Everything else it prints (nbgrader's logging, warnings) goes to stderr, so nothing a library
prints can break an answer.

Why a process of its own, kept alive: grading forks a sandboxed fork server and installs
speed-ups that patch nbgrader; that belongs in a grading process, not in the Jupyter server.
Kept alive, the second check skips ~2 s of imports and the fork server's start.
Grading goes through `grade_notebook`: the same path as `autograder grade`, so the learner
sees exactly the verdicts the instructor will.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from autograder.grading import sandbox, startup

if TYPE_CHECKING:
    from autograder.grading.options import GradeOptions

log = logging.getLogger("autograder.labcheck.worker")


def answer(request: dict[str, Any]) -> dict[str, Any]:
    from autograder.errors import SetupError
    from autograder.grading.api import grade_notebook
    from autograder.labcheck.report import lesson_of, report_for

    notebook = Path(str(request.get("notebook", "")))
    shown = str(request.get("shown") or notebook.name)
    lesson = lesson_of(notebook)
    if lesson is None:
        return {
            "ok": False,
            "error": (
                f"{shown} is not one of the course's lessons, so there are no checks for it; "
                "open the lesson's own notebook (e.g. 01_session_dependency/01_session_dependency.ipynb)."
            ),
        }
    started = time.monotonic()
    try:
        result = grade_notebook(notebook, lesson, check_options())
    except SetupError as exc:
        return {"ok": False, "error": str(exc)}
    report = report_for(result, notebook, shown, time.monotonic() - started)
    return {"ok": True, "report": report.to_json()}


ENV_CELL_TIMEOUT = "COURSE_CHECK_CELL_TIMEOUT"  # seconds a cell may run in a check (default: the grader's)
# "1": run the lesson's demonstration cells too (benchmarks/check_latency.py measures the difference)
ENV_RUN_DEMONSTRATIONS = "COURSE_CHECK_RUN_DEMONSTRATIONS"


def check_options() -> GradeOptions:
    """The grader's options; a check may get a shorter cell deadline (an endless loop answers sooner)."""
    from autograder.grading.executor import Deadlines
    from autograder.grading.options import GradeOptions

    options = GradeOptions(run_demonstrations=os.environ.get(ENV_RUN_DEMONSTRATIONS) == "1")
    seconds = os.environ.get(ENV_CELL_TIMEOUT, "").strip()
    if seconds:
        options.deadlines = Deadlines(cell=float(seconds), notebook=max(float(seconds) * 10, 30.0))
    return options


def serve(requests: IO[str], answers: IO[str]) -> None:
    for line in requests:
        if not line.strip():
            continue
        try:
            request = json.loads(line)
            reply = answer(request if isinstance(request, dict) else {})
        except Exception as exc:
            log.exception("check failed")
            reply = {"ok": False, "error": f"The checker failed ({type(exc).__name__}: {exc}); please try again."}
        answers.write(json.dumps(reply) + "\n")
        answers.flush()


def warm_up() -> None:
    """Pay the imports and nbgrader's gradebook version now, not on the learner's first click."""
    from autograder.grading import api  # noqa: F401 - imported for its cost
    from autograder.grading.speedups import alembic_head

    alembic_head()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="[check worker] %(levelname)s %(message)s")
    answer_fd = int(argv[0]) if argv else os.dup(sys.stdout.fileno())
    answers = os.fdopen(answer_fd, "w", encoding="utf-8")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # whatever prints to stdout goes to the log
    # The lab's server is our parent: if it dies (kill -9 included), so do we, and the
    # grader's own chain ends the fork server and any sandboxed notebook with us.
    sandbox.die_with_parent(os.getppid())
    startup.begin()
    warm_up()
    answers.write(json.dumps({"ready": True}) + "\n")
    answers.flush()
    serve(sys.stdin, answers)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
