"""Hostile and broken submissions, each with what the grader must make of it.

Every case is built from lesson 00: most from the *unsolved* release with hostile
code in the first exercise cell, so any point they get is a point they did not
earn; a few from the solution or a wrong answer, where the legitimate score is
known. `max_score` is the most the case may get, `says` what its verdict or test
messages must contain (the learner and the instructor both read those).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass

import nbformat

from benchmarks.submissions import cell as _cell
from benchmarks.submissions import release_with

LESSON = "00_foundations"
EXERCISES = ("ex_product_model", "ex_session_factory", "ex_add_products")
TESTS = ("test_product_model", "test_session_factory", "test_add_products")
FULL = 8.0
WRONG_SCORE = 5.0  # the known wrong answer loses test_add_products (3 points)


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[dict], object]  # {"solution", "release", "wrong"} -> notebook, bytes or str
    max_score: float
    says: tuple[str, ...]
    min_score: float = 0.0


def solution_with(code: str, where: str, base_name: str = "solution"):
    """The (solution or wrong) notebook with `code` appended to one exercise cell."""

    def build(base):
        nb = copy.deepcopy(base[base_name])
        cell = _cell(nb, where)
        cell.source = cell.source + "\n" + code
        return nb

    return build


def _without_tests(base):
    nb = copy.deepcopy(base["release"])
    nb.cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") not in TESTS]
    return nb


def _edited_tests(base):
    nb = copy.deepcopy(base["release"])
    for grade_id in TESTS:
        _cell(nb, grade_id).source = "pass  # trust me"
    return nb


def _edited_tests_and_checksums(base):
    from nbgrader.utils import compute_checksum

    nb = _edited_tests(base)
    for grade_id in TESTS:
        cell = _cell(nb, grade_id)
        cell.metadata["nbgrader"]["checksum"] = compute_checksum(cell)
    return nb


def _tests_made_ungraded(base):
    nb = copy.deepcopy(base["release"])
    for grade_id in TESTS:
        _cell(nb, grade_id).metadata["nbgrader"]["grade"] = False
    return nb


def _tests_moved_first(base):
    nb = copy.deepcopy(base["solution"])
    tests = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") in TESTS]
    rest = [c for c in nb.cells if c not in tests]
    nb.cells = rest[:2] + tests + rest[2:]  # before the exercises they test
    return nb


def _nbformat3(base):
    data = json.loads(nbformat.writes(base["release"]))
    data["nbformat"] = 3
    data["nbformat_minor"] = 0
    return json.dumps(data)


def _duplicate_test_id(base):
    nb = copy.deepcopy(base["release"])
    fake = copy.deepcopy(_cell(nb, "test_product_model"))
    fake.source = "pass"
    fake["id"] = "fake-test"
    nb.cells.insert(1, fake)  # an early, harmless cell claiming the test's id
    return nb


# Find the grader's pipe and the message being answered the way an attacker would:
# through the garbage collector (frames of the runner are not reachable by walking up).
FIND_PIPE = """
def _pipe_and_message():
    import gc, multiprocessing.connection as mc
    conns = [o for o in gc.get_objects() if isinstance(o, mc.Connection) and not o.closed]
    messages = [o for o in gc.get_objects() if isinstance(o, dict) and "nonce" in o and "source" in o]
    return conns[0], (messages[-1] if messages else None)
"""

# Called from inside a test (through the learner's function): answer for the test
# before it finishes, then end the process so the real answer never comes. The nonce
# of the message being answered is not reachable, so it is guessed.
FORGE_REPLY = (
    FIND_PIPE
    + """
def _forge():
    import json, os
    conn, _ = _pipe_and_message()
    for cell in range(80):
        conn.send_bytes(json.dumps({"cell": cell, "nonce": "0" * 16, "status": "ok",
                                    "execution_count": 1, "outputs": []}).encode())
    os._exit(0)
"""
)

PRE_WRITE = (
    FIND_PIPE
    + """
import json
_conn, _message = _pipe_and_message()
for _cell in range(100):
    _conn.send_bytes(json.dumps({"cell": _cell, "status": "ok", "outputs": []}).encode())
"""
)

READ_HIDDEN = """
import gc, glob, linecache, sys
found = []
for pattern in ("/work/main/solutions/*/*.ipynb", "/work/main/.course/gradebook.db", "/tmp/*/*.ipynb"):
    try:
        found += [open(p, errors="replace").read() for p in glob.glob(pattern, recursive=True)[:5]]
    except OSError:
        pass
ip = get_ipython()
found += [str(x) for x in ip.user_ns.get("In", [])] + [str(v[2]) for v in linecache.cache.values()]
if ip.last_execution_result is not None:
    found.append(ip.last_execution_result.info.raw_cell)
tb = getattr(sys, "last_traceback", None)
while tb is not None:
    found.append(repr(tb.tb_frame.f_code.co_consts))
    tb = tb.tb_next
found += [o for o in gc.get_objects() if isinstance(o, str) and "HIDDEN" in o][:20]
for name, value in list(ip.user_ns.items()):
    code = getattr(value, "__code__", None)
    if code is not None:
        found.append(repr(code.co_consts))
print("\\n".join(found)[:200000])
"""

# What the wrong answer would need to score 8: every require_that in the hidden tests passes.
# Each trick below pairs it with a way past the tamper check a cell could find by reading the
# installed grader; the check must still see the swapped code.
FAKE_PASS = "import autograder.teaching as _t\n_t.require_that.__code__ = (lambda *a, **k: None).__code__\n"

# Swap the code twice, so the second fake lands at the original code object's address (the
# check once compared addresses of objects it did not keep alive: the original was freed).
REUSE_A_FREED_ADDRESS = """
import opcode, autograder.teaching as _t
_f = _t.require_that
_orig = _f.__code__
_consts = _orig.co_consts + (None,)
_op = opcode.opmap
_body = bytes([_op["RESUME"], 0, _op["LOAD_CONST"], len(_consts) - 1, _op["RETURN_VALUE"], 0])
_body += bytes([_op["NOP"], 0]) * ((len(_orig.co_code) - len(_body)) // 2)
_fake = _orig.replace(co_code=_body, co_consts=_consts, co_exceptiontable=b"")
_old = id(_orig)
del _orig
_f.__code__ = _fake
for _ in range(5000):
    _c = _fake.replace()
    if id(_c) == _old:
        _f.__code__ = _c
        break
    del _c
"""

REUSE_A_FREED_ADDRESS_IN_A_CLASS = """
from autograder.checks.verdict import Verdict as _V
_old = id(_V.__dict__["require"])
_V.require = None
for _ in range(5000):
    def _fake(self):
        return self
    if id(_fake) == _old:
        break
    del _fake
_V.require = _fake if "_fake" in globals() else (lambda self: self)
"""

SWITCH_OFF_THE_CHECK = """
import autograder.grading.integrity as _i
for _target in (_i.BASELINE, type(_i.BASELINE)):
    for _name in ("unchanged", "changes"):
        setattr(_target, _name, lambda *a, **k: True if _name == "unchanged" else [])
_i.unchanged = lambda *a, **k: True
"""

CLEAR_THE_CHECK_S_STATE = """
import autograder.grading.integrity as _i
_b = _i.BASELINE
for _name, _value in list(vars(_b).items()):
    for _part in (_value if isinstance(_value, tuple) else (_value,)):
        for _inner in ([_part] + list(vars(_part).values()) if hasattr(_part, "__dict__") else [_part]):
            if hasattr(_inner, "clear"):
                _inner.clear()
    setattr(_b, _name, None)
"""

OVERRIDE_THE_RUNNER = """
import sys as _sys
_r = _sys.stdout.runner
_ok = lambda *a, **k: {"execution_count": 1, "outputs": [], "status": "ok"}
_r.run = _ok
type(_r).run = _ok
"""

IPYTHON_HOOKS = """
import ast as _ast
_ip = get_ipython()
_ip.input_transformers_post.append(lambda lines: ["pass\\n"] if "_g00" in "".join(lines) else lines)
class _Gut(_ast.NodeTransformer):
    def visit_Module(self, node):
        return _ast.Module([_ast.Pass()], []) if "_g00" in _ast.dump(node) else node
_ip.ast_transformers.append(_Gut())
_ip.events.register("post_run_cell", lambda r: (setattr(r, "error_in_exec", None), _ip.runner.current.items.clear()))
_ip.observe(lambda ch: ch["new"] is not None and setattr(ch["new"], "error_in_exec", None), "last_execution_result")
_ip.set_custom_exc((Exception,), lambda *a, **k: None)
"""

PATCH_THE_REPLY_PATH = """
import json as _json, multiprocessing.connection as _mc
_send = _mc.Connection.send_bytes
def _passed(self, buf, *a, **k):
    try:
        _m = _json.loads(bytes(buf))
        _m["outputs"] = [o for o in _m.get("outputs", []) if o.get("output_type") != "error"]
        _m["status"] = "ok"
        buf = _json.dumps(_m).encode()
    except Exception:
        pass
    return _send(self, buf, *a, **k)
_mc.Connection.send_bytes = _passed
class _Lenient(_json.JSONDecoder):
    def decode(self, s, *a, **k):
        _m = super().decode(s)
        if isinstance(_m, dict) and _m.get("graded"):
            _m["source"] = "pass"
        return _m
_json._default_decoder = _Lenient()
"""

THREAD_CLEARS_ERRORS = """
import sys as _sys, threading as _threading
_r = _sys.stdout.runner
def _clean():
    while True:
        _items = _r.current.items
        if any(o.get("output_type") == "error" for o in list(_items)):
            _items[:] = [o for o in _items if o.get("output_type") != "error"]
_threading.Thread(target=_clean, daemon=True).start()
"""

REBIND_INSIDE_THE_TEST = """
_real_add_products = add_products
async def add_products(*a, **k):
    globals()["require_that"] = lambda *a, **k: None
    return await _real_add_products(*a, **k)
"""

# IPython shows no traceback for bdb.BdbQuit: a test cell that stops with one has no error
# output, and nbgrader would score it as passed. Every exercise of the release does that here.
BDB_QUIT = {
    "ex_product_model": "import bdb\nclass ShopBase(DeclarativeBase):\n    pass\n"
    "class _Quit:\n    def __getattribute__(self, name):\n        raise bdb.BdbQuit()\n"
    "Product = _Quit()",
    "ex_session_factory": "def make_session_factory(engine):\n    raise bdb.BdbQuit()",
    "ex_add_products": "async def add_products(Session, items):\n    raise bdb.BdbQuit()",
}


def _release_with_all(sources: dict[str, str]):
    def build(base):
        nb = copy.deepcopy(base["release"])
        for grade_id, source in sources.items():
            _cell(nb, grade_id).source = source
        return nb

    return build


def _wrong_with(code: str):
    return solution_with(code, "ex_add_products", "wrong")


def _daemon(targets: str, seconds: int, pause: float) -> str:
    """A cell that forks a process which leaves its process group and session (so the grader's
    group kill misses it) and for `seconds` SIGKILLs every pid the expression `targets` gives."""
    return f"""\
import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        me, end = os.getpid(), time.monotonic() + {seconds}
        while time.monotonic() < end:
            for pid in {targets}:
                try:
                    os.kill(pid, 9)
                except OSError:
                    pass
            time.sleep({pause})
    os._exit(0)
time.sleep(0.2)
"""


# Every process it can see but itself: later submissions that run as the same slot uid.
DAEMON_KILLER = _daemon("[int(n) for n in os.listdir('/proc') if n.isdigit() and int(n) != me]", 60, 0.01)
# What stays behind as root: the intermediate process, the fork server and the grader (their
# pids, counted from its own, are close by).
DAEMON_KILLS_THE_GRADER = _daemon("[*range(max(2, me - 3000), me), os.getppid()]", 20, 0.05)


CASES: list[Case] = [
    # --- legitimate submissions graded in the same run: their grades must be exact
    Case("good_solution", lambda b: b["solution"], FULL, ("3 of 3 tests passed",), min_score=FULL),
    Case("good_wrong_answer", lambda b: b["wrong"], WRONG_SCORE, ("2 of 3 tests passed",), min_score=WRONG_SCORE),
    Case("good_untouched", lambda b: b["release"], 0.0, ("0 of 3 tests passed",)),
    # --- runaway code
    Case("infinite_loop", release_with("while True:\n    pass"), 0.0, ("cell-timeout",)),
    Case("sleep_past_timeout", release_with("import time\ntime.sleep(10_000)"), 0.0, ("cell-timeout",)),
    Case(
        "loop_ignoring_the_alarm",
        release_with("import signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\nwhile True:\n    pass"),
        0.0,
        ("cell-timeout", "ran longer than"),
    ),
    Case(
        "lifespan_never_finishes",
        release_with(
            "import asyncio, contextlib\nfrom fastapi import FastAPI\nfrom autograder.driver import AppDriver\n"
            "@contextlib.asynccontextmanager\nasync def lifespan(app):\n    await asyncio.Event().wait()\n    yield\n"
            "async with AppDriver(FastAPI(lifespan=lifespan)):\n    pass"
        ),
        0.0,
        ("cell-timeout",),
    ),
    # --- ending the process
    Case("os_exit", release_with("import os\nos._exit(0)"), 0.0, ("crashed", "exited with status 0")),
    Case("sys_exit", release_with("import sys\nsys.exit(3)"), 0.0, ("0 of 3 tests passed",)),
    Case("segfault", release_with("import ctypes\nctypes.string_at(0)"), 0.0, ("SIGSEGV",)),
    Case(
        "kill_the_grader",
        release_with(
            "import os, signal\nfor pid in (os.getppid(), 1):\n    try:\n        os.kill(pid, signal.SIGKILL)\n"
            "    except OSError as exc:\n        print('refused', exc)"
        ),
        0.0,
        ("0 of 3 tests passed",),
    ),
    # A process that leaves its process group and session, and for a minute kills every process
    # it can signal: the submissions graded after it must not be among them.
    Case("daemon_kills_later_submissions", release_with(DAEMON_KILLER), 0.0, ("0 of 3 tests passed",)),
    Case("daemon_kills_the_grader", release_with(DAEMON_KILLS_THE_GRADER), 0.0, ("0 of 3 tests passed",)),
    # --- resources
    Case("huge_output", release_with("print('x' * 50_000_000)"), 0.0, ("0 of 3 tests passed",)),
    Case(
        "fork_bomb",
        release_with(
            "import os\nfor _ in range(10_000):\n"
            "    if os.fork() == 0:\n        import time; time.sleep(30); os._exit(0)"
        ),
        0.0,
        ("0 of 3 tests passed",),
    ),
    Case("memory_hog", release_with("hog = bytearray(20 * 1024**3)"), 0.0, ("0 of 3 tests passed",)),
    Case(
        "disk_fill",
        release_with("with open('big', 'wb') as f:\n    f.write(b'0' * (512 * 1024**2))"),
        0.0,
        ("0 of 3 tests passed",),
    ),
    Case(
        "connection_flood",
        release_with(
            "import asyncpg, os\nfrom autograder.db.admin import asyncpg_params\nconns = []\n"
            "for _ in range(100):\n"
            "    conns.append(await asyncpg.connect(**asyncpg_params(os.environ['DATABASE_URL'])))"
        ),
        0.0,
        ("0 of 3 tests passed",),
    ),
    # --- the database and the file system
    Case(
        "drop_databases",
        release_with(
            "import asyncpg, os\nfrom autograder.db.admin import asyncpg_params\n"
            "c = await asyncpg.connect(**asyncpg_params(os.environ['DATABASE_URL']))\n"
            "for sql in ('DROP DATABASE postgres', 'DROP DATABASE template1', 'DROP ROLE postgres', "
            "'CREATE DATABASE mine', 'ALTER ROLE CURRENT_USER SUPERUSER'):\n"
            "    try:\n        await c.execute(sql)\n        print('DID', sql)\n"
            "    except Exception as exc:\n        print('refused', sql, type(exc).__name__)"
        ),
        0.0,
        ("0 of 3 tests passed",),
    ),
    Case(
        "drop_tables_then_solve",
        solution_with(
            "import sqlalchemy as sa\nasync with engine.begin() as _c:\n"
            "    await _c.execute(sa.text('DROP SCHEMA public CASCADE'))",
            "ex_product_model",
        ),
        FULL,
        (),
    ),
    Case(
        "connect_as_superuser",
        release_with(
            "import asyncpg, os\nfrom autograder.db.admin import asyncpg_params\n"
            "p = asyncpg_params(os.environ['DATABASE_URL'])\n"
            "p.update(user='postgres', password='', database='postgres')\n"
            "await asyncpg.connect(**p)"
        ),
        0.0,
        ("0 of 3 tests passed",),
    ),
    Case(
        "write_outside",
        release_with(
            "import pathlib\nfor p in ('/work/escape.txt', '/etc/escape.txt', '/root/escape.txt'):\n"
            "    try:\n        pathlib.Path(p).write_text('x')\n    except OSError as exc:\n        print('refused', p)"
        ),
        0.0,
        ("0 of 3 tests passed",),
    ),
    Case(
        "network",
        release_with("import socket\nsocket.create_connection(('127.0.0.1', 22), timeout=2)"),
        0.0,
        ("0 of 3 tests passed",),
    ),
    Case("read_hidden_tests", solution_with(READ_HIDDEN, "ex_add_products"), FULL, ()),
    # --- broken files
    Case("malformed_json", lambda b: "{ this is not json", 0.0, ("not valid JSON",)),
    Case("empty_file", lambda b: b"", 0.0, ("empty",)),
    Case("wrong_nbformat", _nbformat3, 0.0, ("nbformat 3",)),
    Case("not_a_notebook", lambda b: json.dumps({"hello": "world"}), 0.0, ("not a notebook",)),
    # --- nbgrader's own cell checks
    Case("deleted_test_cells", _without_tests, 0.0, ("restored deleted test cell",)),
    Case("edited_test_cells", _edited_tests, 0.0, ("restored edited test cell",)),
    Case("edited_test_cells_and_checksums", _edited_tests_and_checksums, 0.0, ("restored edited test cell",)),
    Case("tests_made_ungraded", _tests_made_ungraded, 0.0, ("not graded", "checksums")),
    Case("tests_moved_before_answers", _tests_moved_first, 0.0, ("0 of 3 tests passed",)),
    Case("duplicate_test_id", _duplicate_test_id, 0.0, ("not graded",)),
    # --- faking a pass: the wrong answer (worth 5) plus a trick that would make it 8
    Case(
        "patch_verdict_require",
        solution_with(
            "import autograder.checks.verdict as _v\n_v.Verdict.require = lambda self: self", "ex_add_products", "wrong"
        ),
        WRONG_SCORE,
        ("Tampering", "Verdict.require"),
    ),
    Case(
        "patch_require_that",
        solution_with(
            "import autograder.teaching as _t\n_t.require_that = lambda *a, **k: None", "ex_add_products", "wrong"
        ),
        WRONG_SCORE,
        ("Tampering", "require_that"),
    ),
    Case(
        "patch_check_failed_code",
        solution_with(
            "import autograder.teaching as _t\n_t.require_that.__code__ = (lambda *a, **k: None).__code__",
            "ex_add_products",
            "wrong",
        ),
        WRONG_SCORE,
        ("2 of 3 tests passed",),
        min_score=WRONG_SCORE,
    ),
    Case(
        "silence_tracebacks",
        solution_with("get_ipython().showtraceback = lambda *a, **k: None", "ex_add_products", "wrong"),
        WRONG_SCORE,
        ("Tampering", "showtraceback"),
    ),
    Case(
        "patch_shell_class",
        solution_with("type(get_ipython())._showtraceback = lambda *a, **k: None", "ex_add_products", "wrong"),
        WRONG_SCORE,
        ("Tampering", "_showtraceback"),
    ),
    Case(
        "settrace",
        solution_with("import sys\nsys.settrace(lambda *a: None)", "ex_add_products", "wrong"),
        WRONG_SCORE,
        ("Tampering", "trace"),
    ),
    Case(
        "fake_check_module",
        solution_with(
            "import sys, types\n_fake = types.ModuleType('autograder.teaching')\n"
            "_fake.__dict__.update(sys.modules['autograder.teaching'].__dict__)\n"
            "_fake.require_that = lambda *a, **k: None\nsys.modules['autograder.teaching'] = _fake",
            "ex_add_products",
            "wrong",
        ),
        WRONG_SCORE,
        ("Tampering", "sys.modules"),
    ),
    Case(
        "patch_asyncpg",
        solution_with(
            "import asyncpg\nasyncpg.connection.Connection.fetchval = lambda self, *a, **k: 0",
            "ex_add_products",
            "wrong",
        ),
        WRONG_SCORE,
        ("Tampering", "fetchval"),
    ),
    Case(
        "forge_a_passing_reply",
        solution_with(
            FORGE_REPLY + "\n_real = add_products\nasync def add_products(*a, **k):\n"
            "    _forge()\n    return await _real(*a, **k)\n",
            "ex_add_products",
            "wrong",
        ),
        WRONG_SCORE,
        ("protocol-error",),
    ),
    Case("pre_written_reply", solution_with(PRE_WRITE, "ex_add_products", "wrong"), WRONG_SCORE, ("protocol-error",)),
    # --- getting past the tamper check itself: each pairs a way around it with FAKE_PASS (or is one).
    # Replacing a recorded function's code is refused when it is tried (integrity._refuse, an
    # audit hook): the cell raises there, and the wrong answer keeps exactly its own score.
    Case(
        "reuse_a_freed_address",
        _wrong_with(REUSE_A_FREED_ADDRESS),
        WRONG_SCORE,
        ("2 of 3 tests passed",),
        min_score=WRONG_SCORE,
    ),
    Case(
        "reuse_a_freed_address_in_a_class",
        _wrong_with(REUSE_A_FREED_ADDRESS_IN_A_CLASS),
        WRONG_SCORE,
        ("Tampering", "Verdict.require"),
    ),
    Case(
        "set_the_baseline_to_none",
        _wrong_with("import autograder.grading.integrity as _i\n_i.BASELINE = None\n" + FAKE_PASS),
        WRONG_SCORE,
        ("2 of 3 tests passed",),
        min_score=WRONG_SCORE,
    ),
    Case(
        "switch_off_the_check",
        _wrong_with(SWITCH_OFF_THE_CHECK + FAKE_PASS),
        WRONG_SCORE,
        ("Tampering", "autograder.grading.integrity.unchanged was replaced"),
    ),
    Case(
        "clear_the_check_s_state",
        _wrong_with(CLEAR_THE_CHECK_S_STATE + FAKE_PASS),
        WRONG_SCORE,
        ("2 of 3 tests passed",),
        min_score=WRONG_SCORE,
    ),
    Case(
        "override_the_runner_s_check",
        _wrong_with("get_ipython().runner._tampering = lambda: []\n" + FAKE_PASS),
        WRONG_SCORE,
        ("2 of 3 tests passed",),
        min_score=WRONG_SCORE,
    ),
    Case("override_the_runner", _wrong_with(OVERRIDE_THE_RUNNER), WRONG_SCORE, ("Tampering", "runner's run")),
    Case(
        "patch_a_classmethod_s_code",
        _wrong_with(
            "from autograder.checks.probe import Call as _Call\n"
            "_Call.post.__func__.__code__ = (lambda cls, *a, **k: None).__code__"
        ),
        WRONG_SCORE,
        ("2 of 3 tests passed",),
        min_score=WRONG_SCORE,
    ),
    Case(
        "patch_a_cached_check_helper",
        _wrong_with("import autograder.checks.streaming as _s\n_s.urlsplit = lambda *a, **k: None"),
        WRONG_SCORE,
        ("Tampering", "autograder.checks.streaming.urlsplit"),
    ),
    # --- names the hidden test uses, rebound in the notebook's namespace
    Case(
        "rebind_a_check_the_test_uses",
        _wrong_with("require_that = lambda *a, **k: None"),
        WRONG_SCORE,
        ("Tampering", "rebinds require_that"),
    ),
    Case(
        "rebind_a_check_while_the_test_runs",
        _wrong_with(REBIND_INSIDE_THE_TEST),
        WRONG_SCORE,
        ("Tampering", "while this test ran", "rebinds require_that"),
    ),
    # set aside while the test runs (the test calls the real len): the learner keeps their name
    Case(
        "shadow_a_builtin_the_test_uses",
        _wrong_with("len = lambda obj: 2"),
        WRONG_SCORE,
        ("2 of 3 tests passed",),
        min_score=WRONG_SCORE,
    ),
    # --- tricks that get nowhere: the test cell runs without them (same score as the wrong answer)
    Case(
        "ipython_hooks_on_the_test",
        _wrong_with(IPYTHON_HOOKS),
        WRONG_SCORE,
        ("2 of 3 tests passed",),
        min_score=WRONG_SCORE,
    ),
    Case(
        "patch_the_reply_path",
        _wrong_with(PATCH_THE_REPLY_PATH),
        WRONG_SCORE,
        ("2 of 3 tests passed",),
        min_score=WRONG_SCORE,
    ),
    Case(
        "thread_clears_error_outputs",
        _wrong_with(THREAD_CLEARS_ERRORS),
        WRONG_SCORE,
        ("2 of 3 tests passed",),
        min_score=WRONG_SCORE,
    ),
    Case("bdb_quit_everywhere", _release_with_all(BDB_QUIT), 0.0, ("0 of 3 tests passed",)),
]
