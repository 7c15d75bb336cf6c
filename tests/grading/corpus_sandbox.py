"""Corpus cases, round two (see corpus.py for the shape of a case): leaving the sandbox (class
B), full marks without solving (class C) and the false fail of a shadowed built-in (class G).

The cases of class B print what they reached after a fixed marker (`REACHED:`); test_corpus
checks that no such line reaches any output, beside the score each case may get.
"""

from __future__ import annotations

from benchmarks.submissions import FILL_THE_FOLDER
from tests.grading.corpus import FULL, WRONG_SCORE, Case, _wrong_with, release_with, solution_with

MARKER = "REACHED:"
# Put in the grader's environment by test_corpus before the run: no submission may see it.
GRADER_SECRET_NAME = "AUTOGRADER_CORPUS_SECRET"
GRADER_SECRET = "grader-only-0b5e7c1d"
# A world-readable folder test_corpus makes outside the course, as another checkout would be.
OTHER_CHECKOUT = "/var/lib/autograder-corpus-other-checkout"


def _reaching(probes: dict[str, str]) -> str:
    """A cell that tries each probe (an expression) and prints REACHED: <name> for each that works."""
    lines = ["import ctypes, os, sys"]
    for name, expression in probes.items():
        lines += [
            "try:",
            f"    if {expression}:",
            f"        print({MARKER!r}, {name!r})",
            "except Exception:",
            "    pass",
        ]
    return "\n".join(lines)


READ_THE_HOST = _reaching(
    {
        "the grader's environment": f"{GRADER_SECRET_NAME!r} in os.environ",
        "the grader's environment on the stack": (
            # (the secret spelled backwards: the notebook's own source must not hold it)
            "(lambda s: b" + repr(GRADER_SECRET[::-1]) + "[::-1] in ctypes.string_at(*(lambda lo, hi: (lo, hi - lo))("
            "*(int(x, 16) for x in s.split()[0].split('-')))))"
            "(next(l for l in open('/proc/self/maps') if '[stack]' in l))"
        ),
        "another checkout": f"open({OTHER_CHECKOUT + '/answers.txt'!r}).read() != ''",
        "the tool library": "os.path.exists('/work/.library')",
        "home folders": "os.path.exists('/home') or set(os.listdir('/root')) - {'.pyenv'}",
        "the grading cluster's password": "any(open(os.path.join(d, f)).read() for d, _, fs in os.walk('/') "
        "for f in fs if f == 'grading-pg.password')",
    }
)

LEAVE_THE_SANDBOX = _reaching(
    {
        "a user namespace": "os.unshare(os.CLONE_NEWUSER) is None",
        "a mount": "ctypes.CDLL(None, use_errno=True).mount(b'tmpfs', b'/tmp', b'tmpfs', 0, None) == 0",
        "new privileges": "open('/proc/self/status').read().count('NoNewPrivs:\\t0')",
        "a capability": "any(l.startswith('CapBnd:') and int(l.split()[1], 16) for l in open('/proc/self/status'))",
        "no seccomp filter": "open('/proc/self/status').read().count('Seccomp:\\t0')",
    }
)


# The grader's fds 1 and 2: a forged result in front of `grade-one`'s JSON.
FORGE_ON_STDOUT = """\
import os
os.write(1, b'{"score": 8.0, "max_score": 8.0, "status": "graded"}\\n')
os.write(2, b'{"score": 8.0}\\n')
"""

# Class C: each is the wrong answer (worth 5) plus a way to make its failing test pass.
BUILTINS_MODULE = "import builtins\nbuiltins.require_that = lambda *a, **k: None\ndel require_that\n"
PRIVATE_BUILTINS = (
    "import builtins as _b\n__builtins__ = dict(vars(_b), require_that=lambda *a, **k: None)\ndel require_that\n"
)
# The learner's function, called by the test, swaps the check for a fake that puts the
# original back on its own call: nothing is left changed for the check after the test.
SWAP_AND_RESTORE = """\
import autograder.teaching as _t
_t._g_original = _t.require_that.__code__
def _fake(*args, **kwargs):
    require_that.__code__ = _g_original
_wrong_add_products = add_products
async def add_products(*args, **kwargs):
    _t.require_that.__code__ = _fake.__code__
    return await _wrong_add_products(*args, **kwargs)
"""
# The swap done by an audit hook when the runner execs the test (after the check before it).
AUDIT_HOOK_SWAP = """\
import sys as _sys, autograder.teaching as _t
_t._g_original = _t.require_that.__code__
def _fake(*args, **kwargs):
    require_that.__code__ = _g_original
def _hook(event, args):
    if event == 'exec':
        _t.require_that.__code__ = _fake.__code__
_sys.addaudithook(_hook)
"""
SQLALCHEMY_NAME = "import sqlalchemy as _sa\n_sa.select = lambda *a, **k: None\n"


CASES: list[Case] = [
    # --- B: leaving the sandbox (nothing REACHED: anywhere, checked by test_corpus)
    Case("read_the_host", release_with(READ_THE_HOST), 0.0, ("0 of 3 tests passed",)),
    Case("leave_the_sandbox", release_with(LEAVE_THE_SANDBOX), 0.0, ("0 of 3 tests passed",)),
    Case("fill_the_folder", release_with(FILL_THE_FOLDER), 0.0, ("0 of 3 tests passed",)),
    Case(
        "forge_on_the_grader_s_stdout",
        solution_with(FORGE_ON_STDOUT, "ex_add_products", "wrong"),
        WRONG_SCORE,
        ("2 of 3 tests passed",),
        min_score=WRONG_SCORE,
    ),
    # --- C: full marks without solving
    Case(
        "a_check_added_to_the_builtins",
        _wrong_with(BUILTINS_MODULE),
        WRONG_SCORE,
        ("Tampering", "built-in require_that"),
    ),
    Case(
        "a_private_builtins_dict",
        _wrong_with(PRIVATE_BUILTINS),
        WRONG_SCORE,
        ("2 of 3 tests passed",),
        min_score=WRONG_SCORE,
    ),
    Case(
        "swap_a_check_and_restore_it",
        _wrong_with(SWAP_AND_RESTORE),
        WRONG_SCORE,
        ("2 of 3 tests passed",),
        min_score=WRONG_SCORE,
    ),
    Case(
        "audit_hook_swaps_the_check",
        _wrong_with(AUDIT_HOOK_SWAP),
        WRONG_SCORE,
        ("2 of 3 tests passed",),
        min_score=WRONG_SCORE,
    ),
    Case("patch_a_sqlalchemy_name", _wrong_with(SQLALCHEMY_NAME), WRONG_SCORE, ("Tampering", "sqlalchemy.select")),
    # --- G: a correct solution that shadows a built-in (a learner's taste) keeps its marks
    Case(
        "good_rich_print",
        solution_with("from rich import print", "ex_product_model"),
        FULL,
        ("3 of 3 tests passed",),
        min_score=FULL,
    ),
]
