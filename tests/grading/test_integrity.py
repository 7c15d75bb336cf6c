"""The integrity baseline: what a submission replaces in the grader's process is caught and named.

Every tampering below is undone before the test ends (monkeypatch, or a cleanup in `finally`).
"""

import atexit
import builtins
import sys
import types

import asyncpg  # noqa: F401  (watched: imported before the baseline, as in the fork server)
import httpx  # noqa: F401
import pytest
import sqlalchemy  # noqa: F401
from IPython.core.interactiveshell import InteractiveShell
from sqlalchemy.ext.asyncio import AsyncSession
from traitlets.config import Config

import autograder.checks  # noqa: F401
import autograder.teaching as teaching
from autograder.checks.verdict import Verdict
from autograder.grading.integrity import Baseline


@pytest.fixture
def shell(tmp_path, monkeypatch):
    """A real IPython shell, made without leaving traces in the test process."""
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setitem(sys.modules, "__main__", sys.modules["__main__"])  # the shell takes it over
    builtins_before = set(vars(builtins))
    shell = InteractiveShell(config=Config({"HistoryManager": {"enabled": False}}))
    yield shell
    atexit.unregister(shell.atexit_operations)
    for name in set(vars(builtins)) - builtins_before:  # __IPYTHON__, display
        delattr(builtins, name)


@pytest.fixture
def baseline(shell):
    """Taken after the shell exists, as the grader's fork server does."""
    if sys.gettrace() is not None or sys.getprofile() is not None:
        pytest.skip("a tracer (coverage, a debugger) is installed: every check would report it")
    return Baseline()


def slow_path(baseline, shell):
    """`changes()` without its fast-path shortcut: every entry compared one by one."""
    stub = pytest.MonkeyPatch()
    stub.setattr(baseline, "unchanged", lambda shell=None: False)
    try:
        return baseline.changes(shell)
    finally:
        stub.undo()


# Each tampering applies itself (undone by monkeypatch, or by the cleanup it returns) and names
# the message `changes()` must give.

def replace_a_module_function(monkeypatch, shell):
    monkeypatch.setattr(teaching, "require_that", lambda condition, message: None)
    return "autograder.teaching.require_that was replaced"


def replace_only_a_functions_code(monkeypatch, shell):
    monkeypatch.setattr(teaching.require_that, "__code__", (lambda condition, message: None).__code__)
    return "the code of autograder.teaching.require_that was replaced"


def delete_a_watched_function(monkeypatch, shell):
    monkeypatch.delattr(teaching, "require_that")
    return "autograder.teaching.require_that was deleted"


def replace_a_method_of_a_check_class(monkeypatch, shell):
    monkeypatch.setattr(Verdict, "require", lambda self: self)
    return "autograder.checks.verdict.Verdict.require was replaced"


def replace_a_method_of_a_library_class(monkeypatch, shell):
    async def commit(self):
        return None

    monkeypatch.setattr(AsyncSession, "commit", commit)
    return "sqlalchemy.ext.asyncio.session.AsyncSession.commit was replaced"


def replace_a_module_in_sys_modules(monkeypatch, shell):
    monkeypatch.setitem(sys.modules, "httpx", types.ModuleType("httpx"))
    return "the module httpx was replaced in sys.modules"


def install_a_trace_function(monkeypatch, shell):
    sys.settrace(lambda frame, event, arg: None)
    return "a trace function is installed (sys.settrace)", lambda: sys.settrace(None)


def replace_with_an_object_equal_to_the_original(monkeypatch, shell):
    original = teaching.require_that

    class EqualToEverything(type):
        def __eq__(cls, other):
            return True

        def __hash__(cls):
            return hash(original)

    impostor = EqualToEverything("require_that", (), {"__init__": lambda self, condition, message: None})
    assert impostor == original and hash(impostor) == hash(original)
    monkeypatch.setattr(teaching, "require_that", impostor)
    return "autograder.teaching.require_that was replaced"


def override_a_method_on_the_shell_instance(monkeypatch, shell):
    shell.run_cell = lambda *args, **kwargs: None
    return "the shell's run_cell was overridden", lambda: delattr(shell, "run_cell")


TAMPERING = [
    replace_a_module_function, replace_only_a_functions_code, delete_a_watched_function,
    replace_a_method_of_a_check_class, replace_a_method_of_a_library_class, replace_a_module_in_sys_modules,
    install_a_trace_function, replace_with_an_object_equal_to_the_original,
    override_a_method_on_the_shell_instance,
]


def tamper(case, monkeypatch, shell):
    """Apply `case`; return (expected message, cleanup)."""
    outcome = case(monkeypatch, shell)
    return outcome if isinstance(outcome, tuple) else (outcome, lambda: None)


def test_an_untouched_process_is_unchanged(baseline, shell):
    assert baseline.unchanged(shell) and baseline.unchanged()
    assert baseline.changes(shell) == []
    assert slow_path(baseline, shell) == []


def test_a_new_attribute_on_a_watched_module_is_allowed(baseline, shell, monkeypatch):
    monkeypatch.setattr(teaching, "a_lazily_imported_helper", lambda: None, raising=False)
    monkeypatch.setattr(Verdict, "a_new_method", lambda self: None, raising=False)
    assert baseline.unchanged(shell)
    assert slow_path(baseline, shell) == []


@pytest.mark.parametrize("case", TAMPERING, ids=lambda case: case.__name__.replace("_", " "))
def test_tampering_is_caught_and_named(case, baseline, shell, monkeypatch):
    expected, cleanup = tamper(case, monkeypatch, shell)
    try:
        unchanged, found = baseline.unchanged(shell), baseline.changes(shell)
    finally:
        cleanup()
    assert not unchanged
    assert expected in found


@pytest.mark.parametrize("case", [None, *TAMPERING],
                         ids=lambda case: "nothing" if case is None else case.__name__.replace("_", " "))
def test_the_fast_path_is_false_exactly_when_the_slow_path_finds_something(case, baseline, shell, monkeypatch):
    cleanup = tamper(case, monkeypatch, shell)[1] if case is not None else (lambda: None)
    try:
        fast, slow = baseline.unchanged(shell), slow_path(baseline, shell)
    finally:
        cleanup()
    assert fast == (slow == [])
    assert fast == (case is None)
