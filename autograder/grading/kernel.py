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
* while a test cell runs, its hidden part is not reachable from the code it calls:
  only its public lines are in linecache, and no frame of the runner keeps the
  source once it is compiled (redact.py removes whatever still gets out);
* every output a cell makes (errors and tracebacks too) is charged, at its size in
  the reply, to a per-notebook output budget and cut beyond it, and a cell keeps at
  most MAX_ITEMS_PER_CELL outputs (a 50 MB print or a flood of exceptions cannot
  fill the grader's memory or the feedback);
* each cell has a deadline (SIGALRM raises `CellTimeout`, a BaseException, so a
  bare `except Exception:` cannot swallow it); the parent also kills the process
  if a cell overruns, in case the signal is blocked or ignored;
* a test cell (`graded`) is checked against the integrity baseline before and
  after it runs (see integrity.py), and run by the runner itself rather than by
  IPython's `run_cell`: none of the hooks a submission can register on the shell
  (input and AST transformers, event callbacks, trait observers) sees it, and
  whether it raised is a variable of the run, not an attribute or an output the
  submission could clear; a test that raised always comes back with an error.
"""

from __future__ import annotations

import ast
import inspect
import io
import json
import os
import signal
import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from autograder.grading.integrity import Baseline


class CellTimeout(BaseException):
    """The cell ran past its deadline."""


# What one cell may add to its reply besides the budget: at most this many outputs (an empty
# display costs no characters but still a dict here and a few hundred bytes in the grader).
MAX_ITEMS_PER_CELL = 100
# The most a notebook's budget may be, whatever the grader is asked for: one reply must fit
# executor.MAX_MESSAGE_BYTES (2 MiB) with the cell's notes and stand-ins.
OUTPUT_CEILING = 1_500_000
ITEM_COST = 64  # characters charged per output for its keys and punctuation
_ascii_json = json.encoder.encode_basestring_ascii  # the C encoder: taken before any submission code


def _size(text: str) -> int:
    """Bytes `text` takes in the reply, which is ASCII JSON: a control or non-ASCII character
    costs up to 12 (a 50 MB print of "\\0" would otherwise be 300 MB on the pipe)."""
    return len(_ascii_json(text)) - 2


class OutputBudget:
    """Bytes of output (as sent to the grader) a notebook may still produce before it is cut.

    Everything is charged: streams, displays, results and errors with their tracebacks."""

    def __init__(self, limit: int):
        self.limit = limit
        self.used = 0
        self.truncated = False

    def room(self) -> int:
        return self.limit - self.used

    def take(self, text: str) -> str:
        """The part of `text` that fits, charged."""
        room = self.room()
        if room <= 0:
            self.truncated = True
            return ""
        if len(text) > room:  # sliced first: never measure (copy) 50 MB to keep 1
            self.truncated = True
            text = text[:room]
        size = _size(text)
        while size > room:  # escapes made it longer than it looked: shrink in proportion
            self.truncated = True
            text = text[: len(text) * room // size]
            size = _size(text)
        self.used += size
        return text

    def charge(self, size: int) -> bool:
        """Charge `size` if it fits; False (and nothing charged) if not."""
        if size > self.room():
            self.truncated = True
            return False
        self.used += size
        return True


class CellOutputs:
    """The outputs of the cell being run, in nbformat form.

    One object for the runner's whole life, emptied before each cell (`reset`): the
    grader checks it is still the one outputs are written to. Everything kept is a
    plain JSON value, made now, while the cell runs: a learner's object is never
    converted later, when the reply is written (its `__str__` would run then).

    Bounded whatever the cell does: every output is charged to the notebook's budget and
    a cell keeps at most MAX_ITEMS_PER_CELL of them. An error past either limit is still
    kept — nbgrader scores a test on the presence of an error — as one short stand-in
    per cell (a later one replaces it)."""

    def __init__(self, budget: OutputBudget):
        self.budget = budget
        self.items: list[dict[str, Any]] = []
        self.cut_noted = False
        self.stand_in: dict[str, Any] | None = None

    def reset(self) -> None:
        self.items.clear()
        self.cut_noted = False
        self.stand_in = None

    def _has_room(self) -> bool:
        if len(self.items) < MAX_ITEMS_PER_CELL:
            return True
        self.budget.truncated = True
        self._note_cut()
        return False

    def stream(self, name: str, text: str) -> None:
        last = self.items[-1] if self.items else None
        merge = last is not None and last.get("output_type") == "stream" and last.get("name") == name
        if merge or self._has_room():
            kept = self.budget.take(text) if merge or self.budget.charge(ITEM_COST) else ""
            if kept and merge and last is not None:
                last["text"] += kept
            elif kept:
                self.items.append({"output_type": "stream", "name": name, "text": kept})
        if self.budget.truncated:
            self._note_cut()

    def _note_cut(self) -> None:
        if not self.cut_noted:
            self.cut_noted = True
            self.items.append(
                {
                    "output_type": "stream",
                    "name": "stderr",
                    "text": f"\n[output truncated: more than {self.budget.limit} characters]\n",
                }
            )

    def _sized(self, data: dict[str, Any]) -> dict[str, Any] | None:
        """The bundle as plain JSON if it fits the budget and the cell's item cap, else None."""
        if not self._has_room():
            return None
        plain = {str(key): _plain(value) for key, value in data.items()}
        size = ITEM_COST + sum(
            _size(k) + (_size(v) if isinstance(v, str) else len(json.dumps(v))) for k, v in plain.items()
        )
        if not self.budget.charge(size):
            self._note_cut()
            return None
        return plain

    def display(self, data: dict[str, Any], metadata: dict[str, Any] | None) -> None:
        sized = self._sized(dict(data))
        if sized is not None:
            self.items.append({"output_type": "display_data", "data": sized, "metadata": _plain(metadata or {})})

    def result(self, data: dict[str, Any], metadata: dict[str, Any] | None, count: int) -> None:
        sized = self._sized(dict(data))
        if sized is not None:
            self.items.append(
                {
                    "output_type": "execute_result",
                    "data": sized,
                    "metadata": _plain(metadata or {}),
                    "execution_count": count,
                }
            )

    def error(self, ename: str, evalue: str, traceback: list[str]) -> None:
        ename, evalue = _text(ename)[:200], _text(evalue)[:4000]
        traceback = [_text(line)[:2000] for line in traceback[-60:]]
        size = ITEM_COST + sum(_size(part) for part in (ename, evalue, *traceback))
        if len(self.items) < MAX_ITEMS_PER_CELL and self.budget.charge(size):
            self.items.append({"output_type": "error", "ename": ename, "evalue": evalue, "traceback": traceback})
            return
        self._note_cut()
        if self.stand_in is not None:
            self.items[:] = [item for item in self.items if item is not self.stand_in]
        short = f"{ename[:100]}: {evalue[:500]}"
        self.stand_in = {
            "output_type": "error",
            "ename": ename[:100],
            "evalue": evalue[:500],
            "traceback": [short, "[traceback cut: the notebook's output budget is spent]"],
        }
        self.items.append(self.stand_in)


def _text(value: Any) -> str:
    """A plain str (a str subclass could answer slicing or encoding with code of its own)."""
    return str.__str__(value) if isinstance(value, str) else str(value)


def _plain(value: Any) -> Any:
    """`value` as plain JSON types (str, numbers, lists, dicts), converted now."""
    if type(value) is str:
        return value
    try:
        return json.loads(json.dumps(value, default=str))
    except (TypeError, ValueError, RecursionError):
        return str(value)


class _Stream(io.TextIOBase):
    def __init__(self, runner: CellRunner, name: str):
        self.runner = runner
        self.name = name

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        text = _text(text)
        self.runner.current.stream(self.name, text)
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


from IPython.core.async_helpers import _pseudo_sync_runner  # noqa: E402 - after the light helpers above
from IPython.core.displayhook import DisplayHook  # noqa: E402 - as above
from IPython.core.displaypub import DisplayPublisher  # noqa: E402 - as above
from IPython.core.inputtransformer2 import TransformerManager  # noqa: E402 - as above
from IPython.core.interactiveshell import InteractiveShell  # noqa: E402 - as above

# Module-level classes (not made inside a function) so that the integrity baseline,
# taken in the fork server, covers them: replacing one of their methods is tampering.
# `runner` exists (as None) before the baseline: a watched class must not grow later.


class Publisher(DisplayPublisher):
    runner: CellRunner = None  # type: ignore[assignment]  # set by _make_shell before any cell runs

    def publish(
        self,
        data: dict[str, Any],
        metadata: dict[str, Any] | None = None,
        source: Any = None,
        *,
        transient: Any = None,
        update: bool = False,
        **kw: Any,
    ) -> None:
        self.runner.current.display(data, metadata)

    def clear_output(self, wait: bool = False) -> None:
        self.runner.current.items.clear()


class Hook(DisplayHook):
    runner: CellRunner = None  # type: ignore[assignment]  # set by _make_shell before any cell runs

    def write_output_prompt(self) -> None:
        pass

    def write_format_data(self, format_dict: dict[str, Any], md_dict: dict[str, Any] | None = None) -> None:
        self.runner.current.result(format_dict, md_dict, self.runner.execution_count)

    def finish_displayhook(self) -> None:
        self._is_active = False

    def log_output(self, format_dict: dict[str, Any]) -> None:
        pass


class Shell(InteractiveShell):
    runner: CellRunner = None  # type: ignore[assignment]  # set by _make_shell before any cell runs

    def _showtraceback(self, etype: type[BaseException] | None, evalue: BaseException, stb: list[str]) -> None:
        # Where the error goes is settled before str(evalue) runs a learner's __str__.
        record = self.runner.current.error
        record(getattr(etype, "__name__", "Exception"), str(evalue), list(stb))

    def init_history(self) -> None:
        super().init_history()
        assert self.history_manager is not None  # init_history made it
        self.history_manager.enabled = False


def _new_shell(ipython_dir: str | None = None) -> Shell:
    from traitlets.config import Config

    # No history database from the start: an enabled HistoryManager opens a SQLite file in
    # the profile, records a session in it and starts a thread that writes to it.
    config = Config({"HistoryManager": {"enabled": False, "hist_file": ":memory:"}})
    shell = Shell(ipython_dir=ipython_dir, colors="nocolor", history_length=0, cache_size=0, config=config)
    shell.display_pub = Publisher(shell=shell, parent=shell)
    shell.displayhook = Hook(shell=shell, cache_size=0, parent=shell)
    shell.display_trap.hook = shell.displayhook  # the trap installs it as sys.displayhook per cell
    return shell


_PREPARED: Shell | None = None


def prepare_shell() -> None:
    """Make the shell in the fork server, once: every forked submission gets its own copy.

    Making an InteractiveShell (traits, magics, formatters) costs 25-30 ms in a freshly
    forked child — a tenth of grading a lesson. It holds no process state a fork breaks:
    no thread, no open file (no history database), no event loop (the first cell makes
    it). Its profile folder is a throwaway one, removed at once: nothing is written to
    the grader's ~/.ipython, and each submission gets a profile in its own folder."""
    import shutil
    import tempfile

    global _PREPARED
    scratch = tempfile.mkdtemp(prefix="autograder-ipython-")
    try:
        _PREPARED = _new_shell(scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _make_shell(runner: CellRunner) -> Shell:
    global _PREPARED
    Shell.runner = Publisher.runner = Hook.runner = runner
    shell, _PREPARED = _PREPARED, None
    if shell is None:
        return _new_shell(os.environ.get("IPYTHONDIR"))
    # Made in the server's folder and profile; this process has its own (see sandbox.apply).
    from IPython.core.profiledir import ProfileDir

    ipython_dir = os.environ.get("IPYTHONDIR") or os.path.join(os.getcwd(), ".ipython")
    shell.ipython_dir = ipython_dir
    shell.profile_dir = ProfileDir.create_profile_dir_by_name(ipython_dir, "default")
    shell.user_ns["_dh"] = [os.getcwd()]
    return shell


# What a test cell runs through on the shell (see `_compile_test`, `_run_test`): replacing one
# (get_ipython().compile = ...) is tampering. The rest of the shell (its transformers, event
# callbacks, custom exception handlers) only ever sees the notebook's other cells.
_SHELL_PINNED = ("compile", "display_pub", "displayhook", "InteractiveTB", "SyntaxTB", "user_module", "_trait_values")
_SHELL_TRAITS = ("loop_runner", "display_trap", "builtin_trap")


class CellRunner:
    """Runs cells in one shell; call `run(source)` per cell, in notebook order."""

    def __init__(self, output_limit: int, cell_timeout: float):
        self.budget = OutputBudget(min(output_limit, OUTPUT_CEILING))
        self.cell_timeout = cell_timeout
        self.current = CellOutputs(self.budget)
        self.execution_count = 0
        self.shell = _make_shell(self)
        sys.stdout = _Stream(self, "stdout")
        sys.stderr = _Stream(self, "stderr")
        signal.signal(signal.SIGALRM, self._on_alarm)

    def guarded(self, baseline: Baseline) -> tuple[Any, ...]:
        """What `run` checks a test cell with: the baseline, extended to this runner's live
        objects. Call it before any submission code runs, and pass the tuple to every `run`."""
        shell = self.shell
        for name in _SHELL_TRAITS:
            getattr(shell, name)  # a trait's value is stored on first read: store it now, so it is kept
        watching = baseline.watching(
            instances=[
                (self, "runner", ("shell", "budget", "current")),
                (self.current, "runner's outputs", ("items", "budget")),
                (shell, "shell", _SHELL_PINNED, ("runner",)),
                (shell.display_pub, "display publisher", (), ("runner",)),
                (shell.displayhook, "display hook", (), ("runner",)),
                (shell.compile, "shell's compiler"),
                (shell.user_module, "notebook's namespace"),
            ],
            entries=[
                (Shell.__dict__, "runner", "Shell.runner"),
                (Publisher.__dict__, "runner", "Publisher.runner"),
                (Hook.__dict__, "runner", "Hook.runner"),
                *[(shell._trait_values, name, f"the shell's {name}") for name in _SHELL_TRAITS],
            ],
        )
        namespace = shell.user_ns
        return (*watching.guard(), namespace, watching.bindings(namespace))

    def _forget_sources(self) -> None:
        """No history of inputs: a later cell must not be able to print this one's source
        (IPython keeps it for tracebacks in its input history and in linecache)."""
        import linecache

        for name in ("_ih", "In"):
            history = self.shell.user_ns.get(name)
            if isinstance(history, list):
                history.clear()
        keys: list[object] = list(linecache.cache)  # a submission may have put any key there
        for key in [k for k in keys if isinstance(k, str) and k.startswith("<ipython-input-")]:
            linecache.cache.pop(key, None)
        # The last result keeps the cell's raw source; the last traceback keeps its frames
        # (and so the compiled hidden test code).
        self.shell.last_execution_result = None
        for name in ("last_type", "last_value", "last_traceback", "last_exc"):
            if hasattr(sys, name):
                setattr(sys, name, None)

    def _on_alarm(self, signum: int, frame: types.FrameType | None) -> None:
        raise CellTimeout(f"this cell ran longer than {self.cell_timeout:g} s")

    def run(self, source: str, graded: bool = False, guard: tuple[Any, ...] | None = None) -> dict[str, Any]:
        """Run one cell; a test cell (`graded`) is checked with `guard` before and after.

        The grader calls this as `CellRunner.run(runner, ...)`, with what it needs in its
        arguments, and compares this function's code before each call; this function
        compares the integrity check's code before each call of it. So rebinding a module
        global, a class attribute or an attribute of the runner switches no check off, and
        between the check and the test only code the check has just covered runs.
        """
        if graded and guard is None:
            raise ValueError("a test cell is checked for tampering: pass the guard from CellRunner.guarded()")
        self.execution_count += 1
        count = self.execution_count
        shell = self.shell
        shell.execution_count = count  # a trait: observers a cell registered run now, before the check
        if guard is not None:
            unchanged, unchanged_code, remember, remember_code, state, describe, namespace, bindings = guard
        if graded:

            def check(names: tuple[str, ...], whole: bool) -> bool:  # made anew each call, from run's own code
                try:
                    return (
                        unchanged.__code__ is unchanged_code
                        and unchanged(state, namespace, names, bindings, whole) is True
                    )
                except:  # noqa: E722 - no name is looked up to catch it
                    return False

            def refused(when: str, names: tuple[str, ...]) -> dict[str, Any]:
                try:
                    detail = "; ".join(describe(namespace, names, bindings)) or "the grader's state was changed"
                except:  # noqa: E722 - the description is a courtesy; the refusal stands
                    detail = "the grader's state was changed"
                return {
                    "execution_count": count,
                    "status": "tampered",
                    "outputs": [
                        {
                            "output_type": "error",
                            "ename": "Tampering",
                            "evalue": f"the submission changed the grader {when}: {detail}. "
                            "This test and every later one score zero.",
                            "traceback": [f"Tampering: {detail}"],
                        }
                    ],
                }

            if not check((), True):
                return refused("before this test ran", ())
        current = self.current
        current.reset()
        error = None
        raised: list[BaseException] = []
        if graded:
            names_before = set(shell.user_ns)
            steps, names = _compile_test(shell, source, count, raised)
            # compiled: code the test calls must not find it in this frame's locals
            source = None  # type: ignore[assignment]
            # The test finds what it does not get from the notebook in the real built-ins
            # (a private `__builtins__` dict in the namespace would serve it anything), and a
            # built-in the notebook shadows with a callable of its own (`from rich import
            # print`) is set aside while the test runs: the test calls the built-in, and
            # the learner keeps their name.
            namespace["__builtins__"] = _BUILTINS
            aside = _set_aside_shadowed_builtins(namespace, names, bindings)
            if not check(names, False):  # the names the test uses must still mean what they meant
                _put_back(namespace, aside)
                return refused("before this test ran", names)
        signal.setitimer(signal.ITIMER_REAL, self.cell_timeout)
        try:
            if graded:
                _run_test(shell, steps, raised)
            else:
                result = shell.run_cell(source, store_history=False, silent=False)
                error = result.error_before_exec or result.error_in_exec
        except CellTimeout as exc:  # raised outside IPython's own handler (or ours)
            error = exc
            current.error("CellTimeout", str(exc), [f"CellTimeout: {exc}"])
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        if error is None and raised:
            error = raised[0]
        timed_out = isinstance(error, CellTimeout)
        self._forget_sources()
        if graded:
            # Hidden tests' private helpers (`_g01_...`) must not outlive their cell:
            # a later cell could otherwise disassemble them and print the test.
            for name in set(shell.user_ns) - names_before:
                if name.startswith("_"):
                    shell.user_ns.pop(name, None)
        outputs = [dict(item) for item in current.items if type(item) is dict]
        if error is not None and not [
            item for item in outputs if type(item.get("output_type")) is str and item["output_type"] == "error"
        ]:
            # It raised but shows no error (IPython shows none for a BdbQuit; code the
            # submission left running could have removed it): it failed all the same.
            outputs.append(
                {
                    "output_type": "error",
                    "ename": "Error",
                    "evalue": "this cell raised an exception",
                    "traceback": ["this cell raised an exception"],
                }
            )
        if guard is not None and remember.__code__ is remember_code:
            remember(state, namespace, bindings)
        if graded:
            # Checked before the set-aside names come back: one put back in the notebook
            # while the test ran would be seen as the shadowing it is.
            tampered = not check(names, True)
            _put_back(namespace, aside)
            if tampered:
                return refused("while this test ran", names)
        return {
            "execution_count": count,
            "outputs": outputs,
            "status": "timeout" if timed_out else ("error" if error is not None else "ok"),
        }


import builtins as _builtins_module  # noqa: E402 - beside the one name bound from it

_BUILTINS = _builtins_module  # taken in the fork server, before any submission code


def _set_aside_shadowed_builtins(
    namespace: dict[str, Any], names: tuple[str, ...], bindings: tuple[Any, ...]
) -> dict[str, Any]:
    """Remove from the notebook's namespace the callables that shadow a built-in the test
    uses (not the grader's own names), and return them to be put back after the test."""
    grader_names, builtin_names, _, _ = bindings
    aside = {}
    for name in names:
        if name in grader_names or name not in builtin_names or name not in namespace:
            continue
        value = namespace[name]
        if value is not builtin_names[name] and callable(value):
            aside[name] = namespace.pop(name)
    return aside


def _put_back(namespace: dict[str, Any], aside: dict[str, Any]) -> None:
    for name, value in aside.items():
        if name not in namespace:  # the test may have bound the name itself: that stays
            namespace[name] = value


def _public_view(source: str) -> list[str]:
    """The cell's lines with its hidden tests blanked out, line numbers kept."""
    lines, inside = [], False
    for line in source.splitlines():
        if "BEGIN HIDDEN TESTS" in line:
            inside = True
        elif "END HIDDEN TESTS" in line:
            inside = False
        lines.append("# (hidden test)\n" if inside or "HIDDEN TESTS" in line else line + "\n")
    return lines


def _register_public_view(shell: Shell, transformed: str, count: int) -> str:
    """A filename for a test cell, with only its public lines in linecache under it.

    IPython's `compile.cache` would put the whole source there, where anything the test
    calls can read it (`linecache.cache`, `inspect.getsource` of a frame). Tracebacks still
    show the visible lines and say "Cell In[n]"; `_forget_sources` removes the entry after."""
    import linecache

    name = f"<ipython-input-{count}-test>"
    shell.compile._filename_map[name] = count
    view = _public_view(transformed)
    linecache.cache[name] = (sum(map(len, view)), None, view, name)
    return name


def _compile_test(
    shell: Shell, source: str, count: int, raised: list[BaseException]
) -> tuple[list[tuple[types.CodeType, bool]], tuple[str, ...]]:
    """A test cell as IPython would compile it, as (code, awaits) steps, and the names it uses.

    Through a fresh TransformerManager (not the shell's, which a submission can add
    to), the shell's compiler flags, and the last expression in "single" mode (so its
    value is displayed). A cell that does not compile is shown as IPython shows it, and
    recorded in `raised`. The source is not cached (see `_register_public_view`).
    """
    try:
        transformed = TransformerManager().transform_cell(source)
        name = _register_public_view(shell, transformed, count)
        # ast_parse parses in "exec" mode: a Module (typed as any AST)
        tree: ast.Module = shell.compile.ast_parse(transformed, filename=name)  # type: ignore[assignment]
        flags = shell.compile.flags | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
        body = tree.body
        parts: list[tuple[ast.Module | ast.Interactive, str]]
        if body and isinstance(body[-1], ast.Expr):
            parts = [(ast.Module(body[:-1], []), "exec"), (ast.Interactive(body[-1:]), "single")]
        else:
            parts = [(tree, "exec")]
        codes = [compile(part, name, mode, flags, True) for part, mode in parts if part.body]
    except BaseException as exc:  # noqa: BLE001 - a SyntaxError, or anything the transformers raise
        raised.append(exc)
        try:
            if isinstance(exc, SyntaxError):
                shell.showsyntaxerror()
            else:
                shell.showtraceback()
        except BaseException:  # noqa: BLE001 - showing the error may run the submission's code: it is recorded
            pass
        return [], ()
    names: set[str] = set()
    todo = list(codes)
    while todo:
        code = todo.pop()
        names.update(code.co_names)  # attribute names too: a superset is harmless
        todo += [const for const in code.co_consts if isinstance(const, types.CodeType)]
    return [(code, bool(code.co_flags & inspect.CO_COROUTINE)) for code in codes], tuple(sorted(names))


def _run_test(shell: Shell, steps: list[tuple[types.CodeType, bool]], raised: list[BaseException]) -> None:
    """Run a compiled test cell in the notebook's namespace, as IPython's run_code would.

    Any exception is appended to `raised` (the caller's list) before it is shown: the
    showing may run a submission's code (an exception's `__str__`), the recording not."""
    coroutine = _steps(shell, steps, shell.user_ns, raised, exec, eval, sys.exc_info)  # made now
    with shell.builtin_trap, shell.display_trap:
        if any(awaits for _, awaits in steps):
            shell.loop_runner(coroutine)
        else:
            _pseudo_sync_runner(coroutine)


async def _steps(
    shell: Shell,
    steps: list[tuple[types.CodeType, bool]],
    namespace: dict[str, Any],
    raised: list[BaseException],
    exec_: Any,
    eval_: Any,
    exc_info: Any,
) -> None:
    # The builtins it needs come in as arguments, taken before the test's first line ran.
    try:
        for code, awaits in steps:
            if awaits:
                await eval_(code, namespace)
            else:
                exec_(code, namespace)
    except:  # noqa: E722 - anything raised failed the test (a CellTimeout too); no name looked up
        raised.append(exc_info()[1])
        try:
            shell.showtraceback(running_compiled_code=True)
        except:  # noqa: E722 - showing it may raise anything (a learner's __str__): it is recorded already
            pass
