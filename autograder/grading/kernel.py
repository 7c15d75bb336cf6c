"""A minimal notebook kernel that runs inside a sandboxed, forked process.

Starting a Jupyter kernel costs ~2.5 s per submission (process start, ZeroMQ,
imports); this costs a fork. The process has IPython, FastAPI, SQLAlchemy and
asyncpg imported already (see `preload.py`); here one IPython `InteractiveShell`
runs the cells — top-level `await` included, on one persistent event loop, as in
a kernel — and turns what they print, display and raise into nbformat outputs.

Safety properties this module provides (the sandbox provides the rest):

* cells arrive one at a time over the pipe, so code in one cell never sees the
  source (hidden tests) of a cell that has not run yet; IPython's input history
  is not kept, so it cannot print earlier ones either;
* everything a cell prints is counted against a per-notebook output budget and
  cut beyond it (a 50 MB print cannot fill the grader's memory or the feedback);
* each cell has a deadline (SIGALRM raises `CellTimeout`, a BaseException, so a
  bare `except Exception:` cannot swallow it); the parent also kills the process
  if a cell overruns, in case the signal is blocked or ignored.
"""

from __future__ import annotations

import io
import json
import signal
import sys
from typing import Any


class CellTimeout(BaseException):
    """The cell ran past its deadline."""


class OutputBudget:
    """Characters of output a notebook may still produce before it is cut."""

    def __init__(self, limit: int):
        self.limit = limit
        self.used = 0
        self.truncated = False

    def take(self, text: str) -> str:
        room = self.limit - self.used
        if room <= 0:
            self.truncated = True
            return ""
        if len(text) > room:
            self.truncated = True
            text = text[:room]
        self.used += len(text)
        return text


class CellOutputs:
    """The outputs of the cell being run, in nbformat form."""

    def __init__(self, budget: OutputBudget):
        self.budget = budget
        self.items: list[dict[str, Any]] = []
        self.cut_noted = False

    def stream(self, name: str, text: str) -> None:
        kept = self.budget.take(text)
        if kept:
            last = self.items[-1] if self.items else None
            if last and last.get("output_type") == "stream" and last["name"] == name:
                last["text"] += kept
            else:
                self.items.append({"output_type": "stream", "name": name, "text": kept})
        if self.budget.truncated:
            self._note_cut()

    def _note_cut(self) -> None:
        if not self.cut_noted:
            self.cut_noted = True
            self.items.append({"output_type": "stream", "name": "stderr",
                               "text": f"\n[output truncated: more than {self.budget.limit} characters]\n"})

    def _sized(self, data: dict[str, Any]) -> dict[str, Any] | None:
        """The bundle if it fits the budget, else a short plain-text stand-in."""
        size = sum(len(v) if isinstance(v, str) else len(json.dumps(v, default=str)) for v in data.values())
        if self.budget.used + size > self.budget.limit:
            self.budget.truncated = True
            self._note_cut()
            plain = str(data.get("text/plain", ""))[:200]
            return {"text/plain": plain} if plain else None
        self.budget.used += size
        return data

    def display(self, data: dict[str, Any], metadata: dict[str, Any] | None) -> None:
        data = self._sized(dict(data))
        if data is not None:
            self.items.append({"output_type": "display_data", "data": data, "metadata": metadata or {}})

    def result(self, data: dict[str, Any], metadata: dict[str, Any] | None, count: int) -> None:
        data = self._sized(dict(data))
        if data is not None:
            self.items.append({"output_type": "execute_result", "data": data,
                               "metadata": metadata or {}, "execution_count": count})

    def error(self, ename: str, evalue: str, traceback: list[str]) -> None:
        # Error outputs are what nbgrader scores on: never drop them for size.
        traceback = [line[:2000] for line in traceback[-60:]]
        self.items.append({"output_type": "error", "ename": ename[:200], "evalue": evalue[:4000],
                           "traceback": traceback})


class _Stream(io.TextIOBase):
    def __init__(self, runner: "CellRunner", name: str):
        self.runner = runner
        self.name = name

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            text = str(text)
        self.runner.current.stream(self.name, text)
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


from IPython.core.displayhook import DisplayHook  # noqa: E402 - after the light helpers above
from IPython.core.displaypub import DisplayPublisher  # noqa: E402
from IPython.core.interactiveshell import InteractiveShell  # noqa: E402

# Module-level classes (not made inside a function) so that the integrity baseline,
# taken in the fork server, covers them: replacing one of their methods is tampering.


class Publisher(DisplayPublisher):
    runner: "CellRunner"

    def publish(self, data, metadata=None, source=None, *, transient=None, update=False, **kw):
        self.runner.current.display(data, metadata)

    def clear_output(self, wait=False):
        self.runner.current.items.clear()


class Hook(DisplayHook):
    runner: "CellRunner"

    def write_output_prompt(self):
        pass

    def write_format_data(self, format_dict, md_dict=None):
        self.runner.current.result(format_dict, md_dict, self.runner.execution_count)

    def finish_displayhook(self):
        self._is_active = False

    def log_output(self, format_dict):
        pass


class Shell(InteractiveShell):
    runner: "CellRunner"

    def _showtraceback(self, etype, evalue, stb):
        name = getattr(etype, "__name__", str(etype))
        self.runner.current.error(name, str(evalue), list(stb))

    def init_history(self):
        super().init_history()
        self.history_manager.enabled = False


def _make_shell(runner: "CellRunner") -> Shell:
    Shell.runner = Publisher.runner = Hook.runner = runner
    shell = Shell(colors="nocolor", history_length=0, cache_size=0)
    shell.display_pub = Publisher(shell=shell, parent=shell)
    shell.displayhook = Hook(shell=shell, cache_size=0, parent=shell)
    shell.display_trap.hook = shell.displayhook  # the trap installs it as sys.displayhook per cell
    return shell


class CellRunner:
    """Runs cells in one shell; call `run(source)` per cell, in notebook order."""

    def __init__(self, output_limit: int, cell_timeout: float):
        self.budget = OutputBudget(output_limit)
        self.cell_timeout = cell_timeout
        self.current = CellOutputs(self.budget)
        self.execution_count = 0
        self.shell = _make_shell(self)
        sys.stdout = _Stream(self, "stdout")
        sys.stderr = _Stream(self, "stderr")
        signal.signal(signal.SIGALRM, self._on_alarm)

    def _forget_sources(self) -> None:
        """No history of inputs: a later cell must not be able to print this one's source
        (IPython keeps it for tracebacks in its input history and in linecache)."""
        import linecache

        for name in ("_ih", "In"):
            history = self.shell.user_ns.get(name)
            if isinstance(history, list):
                history.clear()
        for key in [k for k in linecache.cache if isinstance(k, str) and k.startswith("<ipython-input-")]:
            linecache.cache.pop(key, None)
        # The last result keeps the cell's raw source; the last traceback keeps its frames
        # (and so the compiled hidden test code).
        self.shell.last_execution_result = None
        for name in ("last_type", "last_value", "last_traceback", "last_exc"):
            if hasattr(sys, name):
                setattr(sys, name, None)

    def _on_alarm(self, signum, frame):
        raise CellTimeout(f"this cell ran longer than {self.cell_timeout:g} s")

    def _tampering(self) -> list[str]:
        from autograder.grading import integrity

        return integrity.BASELINE.changes(self.shell) if integrity.BASELINE is not None else []

    def _refuse(self, changes: list[str], when: str) -> dict[str, Any]:
        detail = "; ".join(changes)
        self.current.error("Tampering", f"the submission changed the grader {when}: {detail}. "
                           "This test and every later one score zero.", [f"Tampering: {detail}"])
        return {"execution_count": self.execution_count, "outputs": self.current.items, "status": "tampered"}

    def run(self, source: str, graded: bool = False) -> dict[str, Any]:
        self.execution_count += 1
        self.current = CellOutputs(self.budget)
        self.shell.execution_count = self.execution_count
        if graded:
            changes = self._tampering()
            if changes:
                return self._refuse(changes, "before this test ran")
            names_before = set(self.shell.user_ns)
        timed_out = False
        signal.setitimer(signal.ITIMER_REAL, self.cell_timeout)
        try:
            result = self.shell.run_cell(source, store_history=False, silent=False)
            error = result.error_before_exec or result.error_in_exec
        except CellTimeout as exc:  # raised outside IPython's own handler
            timed_out = True
            error = exc
            self.current.error("CellTimeout", str(exc), [f"CellTimeout: {exc}"])
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        if isinstance(error, CellTimeout):
            timed_out = True
        self._forget_sources()
        if graded:
            changes = self._tampering()
            if changes:
                self.current.items.clear()
                return self._refuse(changes, "while this test ran")
            # Hidden tests' private helpers (`_g01_...`) must not outlive their cell:
            # a later cell could otherwise disassemble them and print the test.
            for name in set(self.shell.user_ns) - names_before:
                if name.startswith("_"):
                    self.shell.user_ns.pop(name, None)
        return {
            "execution_count": self.execution_count,
            "outputs": self.current.items,
            "status": "timeout" if timed_out else ("error" if error is not None else "ok"),
        }
