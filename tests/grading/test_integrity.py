"""The integrity baseline: what a submission replaces in the grader's process is caught and named,
and the check itself cannot be switched off, fooled by a reused address, or bypassed by the runner.

Every tampering below is undone before the test ends (monkeypatch, or a cleanup in `finally`).
The last tests run real notebooks through the forked runner: the hooks a cell can register on
IPython never see a test cell, and a test that raised always fails.
"""

import atexit
import builtins
import dis
import operator
import sys
import types

# The modules the baseline watches are imported before it is taken, as in the fork server:
import asyncpg  # noqa: F401 - imported for the baseline (see above)
import httpx  # noqa: F401 - imported for the baseline
import pytest
import sqlalchemy  # noqa: F401 - imported for the baseline
from IPython.core.interactiveshell import InteractiveShell
from sqlalchemy.ext.asyncio import AsyncSession
from traitlets.config import Config

import autograder.checks  # noqa: F401 - imported for the baseline
import autograder.checks.streaming as streaming
import autograder.grading.kernel as kernel
import autograder.teaching as teaching
from autograder.checks.probe import Call
from autograder.checks.verdict import Verdict
from autograder.grading import integrity, sandbox
from autograder.grading.executor import Deadlines, Executor, JobSpec
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
    """Taken after the shell exists, as the grader's fork server and child do."""
    if sys.gettrace() is not None or sys.getprofile() is not None:
        pytest.skip("a tracer (coverage, a debugger) is installed: every check would report it")
    return Baseline().watching(instances=[(shell, "shell")])


def slow_path(baseline):
    """What the describer finds, comparing every record one by one (no fast-path shortcut)."""
    return baseline._find(None, (), None)


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


def replace_the_code_of_a_classmethod(monkeypatch, shell):
    # The classmethod wrapper has no __code__ of its own: the function inside it does.
    monkeypatch.setattr(Call.post.__func__, "__code__", (lambda cls, *args, **kwargs: None).__code__)
    return "the code of autograder.checks.probe.Call.post was replaced"


def replace_a_cached_function(monkeypatch, shell):
    # urlsplit is an lru_cache wrapper, not a function: it is watched all the same.
    monkeypatch.setattr(streaming, "urlsplit", lambda *args, **kwargs: None)
    return "autograder.checks.streaming.urlsplit was replaced"


def replace_the_code_behind_a_cache(monkeypatch, shell):
    monkeypatch.setattr(
        streaming.urlsplit.__wrapped__, "__code__", (lambda url, scheme="", allow_fragments=True: None).__code__
    )
    return "the code of autograder.checks.streaming.urlsplit was replaced"


def edit_a_keyword_default_in_place(monkeypatch, shell):
    monkeypatch.setitem(teaching.bar_chart.__kwdefaults__, "ylabel", "something else")
    return "the keyword default ylabel of autograder.teaching.bar_chart was replaced"


def swap_the_function_inside_a_closure(monkeypatch, shell):
    # @contextmanager keeps the generator function in a closure cell of its wrapper.
    cell = teaching.expect_failure.__closure__[0]
    original = cell.cell_contents
    cell.cell_contents = lambda *args, **kwargs: iter([None])
    return (
        "a function autograder.teaching.expect_failure calls through its closure was replaced",
        lambda: setattr(cell, "cell_contents", original),
    )


def add_a_special_method_to_a_check_class(monkeypatch, shell):
    monkeypatch.setattr(Verdict, "__getattr__", lambda self, name: None, raising=False)
    return "autograder.checks.verdict.Verdict.__getattr__ was added"


def give_a_module_another_class(monkeypatch, shell):
    class Lenient(types.ModuleType):
        def __getattribute__(self, name):
            return object.__getattribute__(self, name)

    original = type(teaching)
    teaching.__class__ = Lenient
    return ("the module autograder.teaching was given another class", lambda: setattr(teaching, "__class__", original))


def change_the_bases_of_a_class(monkeypatch, shell):
    original = kernel.Shell.__bases__
    kernel.Shell.__bases__ = (InteractiveShell,)  # the same base: still a new MRO, and the check sees it
    return (
        "the base classes of autograder.grading.kernel.Shell were changed",
        lambda: setattr(kernel.Shell, "__bases__", original),
    )


def replace_a_builtin(monkeypatch, shell):
    monkeypatch.setattr(builtins, "all", lambda iterable: True)
    return "builtins.all was replaced"


TAMPERING = [
    replace_a_module_function,
    replace_only_a_functions_code,
    delete_a_watched_function,
    replace_a_method_of_a_check_class,
    replace_a_method_of_a_library_class,
    replace_a_module_in_sys_modules,
    install_a_trace_function,
    replace_with_an_object_equal_to_the_original,
    override_a_method_on_the_shell_instance,
    replace_the_code_of_a_classmethod,
    replace_a_cached_function,
    replace_the_code_behind_a_cache,
    edit_a_keyword_default_in_place,
    swap_the_function_inside_a_closure,
    add_a_special_method_to_a_check_class,
    give_a_module_another_class,
    change_the_bases_of_a_class,
    replace_a_builtin,
]


def tamper(case, monkeypatch, shell):
    """Apply `case`; return (expected message, cleanup)."""
    outcome = case(monkeypatch, shell)
    return outcome if isinstance(outcome, tuple) else (outcome, lambda: None)


def test_an_untouched_process_is_unchanged(baseline, shell):
    assert baseline.unchanged()
    assert baseline.changes() == []
    assert slow_path(baseline) == []


def test_a_new_attribute_on_a_watched_module_is_allowed(baseline, shell, monkeypatch):
    monkeypatch.setattr(teaching, "a_lazily_imported_helper", lambda: None, raising=False)
    assert baseline.unchanged()
    assert slow_path(baseline) == []


@pytest.mark.parametrize("case", TAMPERING, ids=lambda case: case.__name__.replace("_", " "))
def test_tampering_is_caught_and_named(case, baseline, shell, monkeypatch):
    expected, cleanup = tamper(case, monkeypatch, shell)
    try:
        unchanged, found = baseline.unchanged(), baseline.changes(limit=50)
    finally:
        cleanup()
    assert not unchanged
    assert expected in found


@pytest.mark.parametrize(
    "case", [None, *TAMPERING], ids=lambda case: "nothing" if case is None else case.__name__.replace("_", " ")
)
def test_the_fast_path_is_false_exactly_when_the_slow_path_finds_something(case, baseline, shell, monkeypatch):
    cleanup = tamper(case, monkeypatch, shell)[1] if case is not None else (lambda: None)
    try:
        fast, slow = baseline.unchanged(), slow_path(baseline)
    finally:
        cleanup()
    assert fast == (slow == [])
    assert fast == (case is None)


# --- a freed object's address cannot be handed to a fake


def test_replaced_code_is_kept_alive_so_a_fake_cannot_take_its_address(baseline, shell, monkeypatch):
    """Swap require_that's code, then make code objects until one lands where the original was
    (with only ids recorded, the original was freed and this succeeded within a few tries)."""
    function = teaching.require_that
    original_address = id(function.__code__)
    fake = (lambda condition, message: None).__code__
    monkeypatch.setattr(function, "__code__", fake)
    landed = None
    for _ in range(5000):
        candidate = fake.replace()
        if id(candidate) == original_address:
            landed = candidate
            break
        del candidate
    assert landed is None, "the original code object was freed and its address reused"
    assert not baseline.unchanged()
    assert "the code of autograder.teaching.require_that was replaced" in baseline.changes()


def test_a_replaced_class_attribute_is_kept_alive_so_a_fake_cannot_take_its_address(baseline, shell, monkeypatch):
    original_address = id(vars(AsyncSession)["commit"])
    monkeypatch.setattr(AsyncSession, "commit", None)
    for _ in range(5000):

        async def commit(self):
            return None

        if id(commit) == original_address:
            break
        del commit
    else:
        commit = None
    assert commit is None, "the original method was freed and its address reused"
    assert not baseline.unchanged()


# --- the check cannot be switched off


def test_the_state_is_tuples_all_the_way_down(baseline):
    """Nothing in the check's own state can be cleared, appended to or rebound."""
    tools, chunks = baseline.state
    assert type(baseline.state) is tuple and type(tools) is tuple and type(chunks) is tuple
    for chunk in chunks:
        assert type(chunk) is tuple and all(type(part) is tuple for part in chunk)
        *flat, attributes, instances = chunk
        for _getter, objects, expected in attributes:
            assert type(objects) is tuple and type(expected) is tuple
        for _, forbidden, names, values in instances:
            assert type(forbidden) is frozenset and type(names) is tuple and type(values) is tuple


@pytest.mark.parametrize(
    "function", [integrity.unchanged, integrity.remember, kernel._steps], ids=lambda function: function.__name__
)
def test_the_check_reads_no_global_name(function):
    """Not even a builtin: rebinding builtins.all or a module global changes nothing it computes."""
    loads = [i.argval for i in dis.get_instructions(function) if i.opname in ("LOAD_GLOBAL", "LOAD_NAME")]
    assert loads == []


def test_switching_the_check_off_from_a_cell_changes_nothing(baseline, shell, monkeypatch):
    """The grader takes the check, its code and the state before any submission code runs.
    Every switch a cell could find in the installed package is then thrown, and a check
    library patched: the check still sees it."""
    check, code, remember, remember_code, state, describe = baseline.guard()
    monkeypatch.setattr(integrity, "BASELINE", None)
    monkeypatch.setattr(integrity, "unchanged", lambda *args, **kwargs: True)
    monkeypatch.setattr(Baseline, "unchanged", lambda self: True)
    monkeypatch.setattr(baseline, "unchanged", lambda: True, raising=False)
    monkeypatch.setattr(baseline, "state", (), raising=False)
    monkeypatch.setattr(baseline, "_chunks", (), raising=False)
    monkeypatch.setattr(operator, "is_", lambda a, b: True)
    monkeypatch.setattr(Verdict, "require", lambda self: self)
    with monkeypatch.context() as patched:  # the last one: pytest itself uses these builtins
        patched.setattr(builtins, "all", lambda iterable: True)
        patched.setattr(builtins, "map", lambda function, *iterables: [])
        still_caught = check.__code__ is code and check(state) is False
    assert still_caught
    assert "autograder.checks.verdict.Verdict.require was replaced" in describe()


def test_rewriting_the_check_s_code_is_seen_before_it_is_called(baseline, monkeypatch):
    check, code, *_ = baseline.guard()
    monkeypatch.setattr(integrity.unchanged, "__code__", (lambda *args, **kwargs: True).__code__)
    assert check.__code__ is not code  # what the runner compares before every call


def test_the_state_cannot_be_edited_in_place(baseline):
    tools, chunks = baseline.state
    with pytest.raises(TypeError):
        chunks[0][2][0] = None
    with pytest.raises(AttributeError):
        chunks[0][2].clear()


def test_a_shadowed_name_or_builtin_the_test_uses_is_caught(baseline, shell):
    namespace = {"require_that": teaching.require_that, "add_products": lambda: None}
    bindings = baseline.bindings({})
    integrity.remember(baseline.state, namespace, bindings)  # after the imports cell
    uses = ("add_products", "len", "require_that")
    assert integrity.unchanged(baseline.state, namespace, uses, bindings, False)
    namespace["add_products"] = lambda: 1  # the learner's own name: theirs to rebind
    assert integrity.unchanged(baseline.state, namespace, uses, bindings, False)
    namespace["require_that"] = lambda *args, **kwargs: None
    assert not integrity.unchanged(baseline.state, namespace, uses, bindings, False)
    assert "the notebook rebinds require_that, which this test uses" in baseline.changes(namespace, uses, bindings)
    namespace["require_that"] = teaching.require_that
    namespace["len"] = lambda value: 2
    assert not integrity.unchanged(baseline.state, namespace, uses, bindings, False)
    assert "the notebook shadows the built-in len, which this test uses" in baseline.changes(namespace, uses, bindings)
    namespace["len"] = 3  # data under a builtin's name: the test fails on its own if it calls it
    assert integrity.unchanged(baseline.state, namespace, uses, bindings, False)
    assert integrity.unchanged(baseline.state, namespace, ("other",), bindings, False)


# --- through the forked runner: a failing test after the trick must still fail

SETUP = "from autograder.teaching import require_that\nfrom autograder.checks.verdict import Verdict\n"
FAILING_TEST = "require_that(len([1]) == 2, 'the test must fail')"

RUNNER_TRICKS = {
    # Switches a cell could find in the installed package.
    "baseline set to None": "import autograder.grading.integrity as i\ni.BASELINE = None\n"
    "import autograder.teaching as t\nt.require_that = lambda *a, **k: None",
    "the runner's check replaced": "get_ipython().runner._tampering = lambda: []\n"
    "import autograder.teaching as t\nt.require_that = lambda *a, **k: None",
    "the runner's run replaced": "import sys\nr = sys.stdout.runner\n"
    "r.run = lambda *a, **k: {'execution_count': 1, 'outputs': [], 'status': 'ok'}",
    # Names the test uses, rebound in the notebook.
    "a check rebound": "require_that = lambda *a, **k: None",
    "a builtin shadowed": "len = lambda value: 2",
    # The reply path: the grader answers with its own os.write and C JSON codec.
    "the pipe patched": "import multiprocessing.connection as mc\n_send = mc.Connection.send_bytes\n"
    "mc.Connection.send_bytes = lambda self, buf, *a: _send(self, bytes(buf).replace("
    "b'\"error\"', b'\"stream\"'), *a)",
    "the JSON decoder patched": "import json\nclass D(json.JSONDecoder):\n    def decode(self, s, *a, **k):\n"
    "        m = super().decode(s)\n        m['source'] = 'pass'\n        return m\n"
    "json._default_decoder = D()",
}

IGNORED_HOOKS = {
    # IPython's own extension points: a test cell is run without them.
    "an input transformer": "get_ipython().input_transformers_post.append(lambda lines: ['pass\\n'])",
    "an AST transformer": "import ast\nclass T(ast.NodeTransformer):\n    def visit_Module(self, node):\n"
    "        return ast.Module([ast.Pass()], [])\nget_ipython().ast_transformers.append(T())",
    "a post_run_cell callback": "ip = get_ipython()\nip.events.register('post_run_cell', lambda r: "
    "(setattr(r, 'error_in_exec', None), ip.runner.current.items.clear()))",
    "a trait observer": "ip = get_ipython()\nip.observe(lambda change: change['new'] is not None and "
    "setattr(change['new'], 'error_in_exec', None), 'last_execution_result')",
    # Code left running that edits the outputs: whether the test raised is not read from them.
    "a thread clearing error outputs": "import threading, sys\nr = sys.stdout.runner\ndef clean():\n"
    "    while True:\n        r.current.items[:] = [o for o in r.current.items "
    "if o.get('output_type') != 'error']\n"
    "threading.Thread(target=clean, daemon=True).start()",
    # IPython shows no traceback for BdbQuit: the test would have looked passed.
    "a BdbQuit from the learner's code": "import bdb\ndef helper():\n    raise bdb.BdbQuit()",
}


@pytest.fixture(scope="module")
def executor():
    Executor.warm_up()
    return Executor()


def run_with(executor, tmp_path, trick, test=FAILING_TEST):
    workdir = tmp_path / "job"
    sandbox.prepare_workdir(workdir, 0)
    job = JobSpec(
        env={},
        sandbox=sandbox.SandboxSpec(workdir=workdir, isolate=False),
        graded_cells=frozenset({2}),
        deadlines=Deadlines(cell=10.0, notebook=60.0, grace=2.0),
    )
    return executor.execute([(0, SETUP), (1, trick), (2, test), (3, "print('after')")], job)


def errors(result, index):
    return [o for o in result.cells[index]["outputs"] if o["output_type"] == "error"]


def test_an_honest_failing_test_fails_and_a_passing_one_passes(executor, tmp_path):
    r = run_with(executor, tmp_path, "x = 1")
    assert r.ended == "completed" and errors(r, 2)[0]["evalue"] == "the test must fail"
    r = run_with(executor, tmp_path, "x = 1", test="require_that(len([1]) == 1, 'fine')\nprint('passed')")
    assert r.ended == "completed" and not errors(r, 2)


@pytest.mark.parametrize("trick", RUNNER_TRICKS, ids=str)
def test_a_trick_on_the_runner_does_not_make_a_failing_test_pass(executor, tmp_path, trick):
    r = run_with(executor, tmp_path, RUNNER_TRICKS[trick])
    found = errors(r, 2)
    assert found, f"{trick}: the failing test passed"
    assert found[0]["ename"] in ("Tampering", "CheckFailed")


@pytest.mark.parametrize("hook", IGNORED_HOOKS, ids=str)
def test_a_hook_registered_on_ipython_does_not_make_a_failing_test_pass(executor, tmp_path, hook):
    test = "helper()\n" + FAILING_TEST if "BdbQuit" in hook else FAILING_TEST
    r = run_with(executor, tmp_path, IGNORED_HOOKS[hook], test=test)
    assert r.ended == "completed"
    assert errors(r, 2), f"{hook}: the failing test passed"


# --- round two: what the before/after check could not see, and what it got wrong

SQLALCHEMY_TEST = (
    "from sqlalchemy import inspect\nrequire_that(inspect(object(), raiseerr=False) is not None, 'the test must fail')"
)

ROUND_TWO_TRICKS = {
    # A name the test uses, gone from the notebook and added to the built-ins, where the test finds it.
    "a check added to the built-ins": (
        "import builtins\nbuiltins.require_that = lambda *a, **k: None\ndel require_that",
        FAILING_TEST,
    ),
    # A private __builtins__ in the notebook's namespace: exec would serve the test from it.
    "a private __builtins__ dict": (
        "import builtins\n__builtins__ = dict(vars(builtins), len=lambda value: 2)",
        FAILING_TEST,
    ),
    # An audit hook that swaps the check's code when the runner execs the test (after the check
    # before it), and a fake that puts the original back when called (before the check after it).
    "an audit hook": (
        (
            "import sys, autograder.teaching as t\n"
            "t._original = t.require_that.__code__\n"
            "def _fake(*args, **kwargs):\n    require_that.__code__ = _original\n"
            "def hook(event, args):\n    if event == 'exec':\n"
            "        t.require_that.__code__ = _fake.__code__\n"
            "sys.addaudithook(hook)"
        ),
        FAILING_TEST,
    ),
    # A SQLAlchemy name the checks import when they run.
    "a sqlalchemy name": ("import sqlalchemy\nsqlalchemy.inspect = lambda *a, **k: 1", SQLALCHEMY_TEST),
}


@pytest.mark.parametrize("trick", ROUND_TWO_TRICKS, ids=str)
def test_round_two_tricks_do_not_make_a_failing_test_pass(executor, tmp_path, trick):
    code, test = ROUND_TWO_TRICKS[trick]
    r = run_with(executor, tmp_path, code, test=test)
    found = errors(r, 2)
    assert found, f"{trick}: the failing test passed"
    assert found[0]["ename"] in ("Tampering", "CheckFailed"), found[0]


def test_the_sqlalchemy_test_fails_on_its_own(executor, tmp_path):
    r = run_with(executor, tmp_path, "x = 1", test=SQLALCHEMY_TEST)
    assert errors(r, 2)[0]["ename"] == "CheckFailed"


SWAP_AND_RESTORE = """\
import autograder.teaching as t
def helper():
    # Called by the test: swap the check for a fake that puts the original back after one call.
    original = t.require_that.__code__
    t.require_that.__code__ = (lambda *a, **k: None).__code__
    t.require_that.__defaults__ = None
    return original
"""


def test_a_check_s_code_swapped_and_restored_within_the_test_is_refused(executor, tmp_path):
    r = run_with(executor, tmp_path, SWAP_AND_RESTORE, test="helper()\n" + FAILING_TEST)
    found = errors(r, 2)
    assert found and found[0]["ename"] == "PermissionError", found
    assert "belongs to the grader" in found[0]["evalue"]


def test_a_learner_s_own_function_may_still_get_new_code(executor, tmp_path):
    r = run_with(
        executor,
        tmp_path,
        "def mine():\n    return 1\nmine.__code__ = (lambda: 2).__code__\nprint(mine())",
        test="require_that(len([1]) == 1, 'fine')",
    )
    assert not errors(r, 1) and not errors(r, 2)


def test_an_audit_hook_of_the_submission_is_never_installed(executor, tmp_path):
    r = run_with(
        executor,
        tmp_path,
        "import sys\nseen = []\nsys.addaudithook(lambda event, args: seen.append(event))\nexec('1')\nprint(len(seen))",
        test="require_that(len([1]) == 1, 'fine')",
    )
    assert r.cells[1]["outputs"][-1].get("text") == "0\n"


def test_a_builtin_the_notebook_shadows_is_set_aside_for_the_test_and_kept_for_the_learner(executor, tmp_path):
    # `from rich import print` is the learner's right; the test still gets the built-in.
    trick = "def print(*args, **kwargs):\n    raise RuntimeError('the learner\\'s print')"
    r = run_with(executor, tmp_path, trick, test="print('from the test')\nrequire_that(len([1]) == 1, 'fine')")
    assert not errors(r, 2), errors(r, 2)
    assert any(o.get("text") == "from the test\n" for o in r.cells[2]["outputs"])
    assert errors(r, 3) and "the learner's print" in errors(r, 3)[0]["evalue"]  # cell 3 still uses theirs
