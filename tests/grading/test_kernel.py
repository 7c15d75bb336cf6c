"""The runner inside the submission's process: its output budget and what a test's callees can see."""

import json

import pytest

from autograder.grading import sandbox
from autograder.grading.executor import Deadlines, Executor, JobSpec
from autograder.grading.kernel import MAX_ITEMS_PER_CELL, OUTPUT_CEILING, CellOutputs, OutputBudget, _public_view


def outputs(limit=10_000):
    return CellOutputs(OutputBudget(limit))


def reply_size(items):
    return len(json.dumps(items))  # ASCII JSON, as the child writes it


def test_the_budget_counts_what_the_reply_carries_not_characters():
    o = outputs(6_000)
    o.stream("stdout", "\0" * 5_000)  # each one is "\u0000" in the reply: six bytes
    assert o.budget.used <= 6_000 and reply_size(o.items) < 6_600
    assert o.budget.truncated and "output truncated" in o.items[-1]["text"]


def test_errors_are_charged_and_past_the_budget_kept_as_one_short_stand_in_per_cell():
    o = outputs(20_000)
    o.error("ValueError", "x" * 8_000, ["line " * 100] * 10)
    assert o.items[0]["ename"] == "ValueError" and o.budget.used > 4_000 + 5_000  # charged, traceback too
    for _ in range(1_000):
        o.error("ValueError", "y" * 8_000_000, ["line " * 1000] * 500)
    errors = [i for i in o.items if i["output_type"] == "error"]
    assert len(errors) <= 3 and errors[-1]["ename"] == "ValueError"  # never dropped
    assert reply_size(o.items) < 20_000 + 2_000
    o.reset()
    o.error("CheckFailed", "the test's own message", ["tb"])
    assert [i["ename"] for i in o.items if i["output_type"] == "error"] == ["CheckFailed"]


def test_a_cell_keeps_a_bounded_number_of_outputs():
    o = outputs(10_000_000)
    for n in range(10_000):
        o.display({}, None)  # costs no characters, still an output
        o.stream("stderr" if n % 2 else "stdout", "x")
    assert len(o.items) <= MAX_ITEMS_PER_CELL + 2
    o.error("E", "raised last", [])
    assert o.items[-1]["evalue"] == "raised last"


def test_a_test_cell_shows_only_its_public_lines():
    view = _public_view('assert a, "shown"\n### BEGIN HIDDEN TESTS\nsecret = 1\n### END HIDDEN TESTS\nprint(a)')
    assert view == ['assert a, "shown"\n'] + ["# (hidden test)\n"] * 3 + ["print(a)\n"]


# --- through the forked runner

READER = '''
import gc, inspect, linecache, sys
def peek():
    """What code a test calls can find of the test's source."""
    found = []
    for key, entry in list(linecache.cache.items()):
        found.append(f"linecache {key}: " + "".join(entry[2]))
    frame = sys._getframe(1)
    while frame is not None:
        try:
            found.append("source " + inspect.getsource(frame))
        except (OSError, TypeError):
            pass
        for name, value in frame.f_locals.items():
            for v in (value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple))
                      else [value]):
                if isinstance(v, (str, bytes)):
                    found.append(f"{frame.f_code.co_name}.{name}: {v[:3000]!r}")
        frame = frame.f_back
    return found
'''
TEST = """found = peek()
### BEGIN HIDDEN TESTS
_g_kept = "a literal of the hidden test"  # the_hidden_marker_line
print("\\n".join(f for f in found if "the_hidden_marker_line" in f) or "nothing found")
### END HIDDEN TESTS
"""


@pytest.fixture(scope="module")
def executor():
    Executor.warm_up()
    return Executor()


def execute(executor, tmp_path, cells, graded=frozenset(), output_limit=1_000_000, cell=10.0, notebook=60.0):
    workdir = tmp_path / "job"
    sandbox.prepare_workdir(workdir, 0)
    job = JobSpec(
        env={},
        sandbox=sandbox.SandboxSpec(workdir=workdir, isolate=False),
        graded_cells=graded,
        output_limit=output_limit,
        deadlines=Deadlines(cell=cell, notebook=notebook, grace=2.0),
    )
    return executor.execute(list(enumerate(cells)), job)


def printed(result, index):
    return "".join(o.get("text", "") for o in result.cells[index]["outputs"] if o["output_type"] == "stream")


def test_code_a_test_calls_finds_no_hidden_line_in_linecache_or_in_the_runner_s_frames(executor, tmp_path):
    r = execute(executor, tmp_path, [READER, TEST], graded=frozenset({1}))
    assert r.ended == "completed", r.detail
    assert printed(r, 1) == "nothing found\n", printed(r, 1)


def test_a_failing_test_s_traceback_shows_its_public_lines_only(executor, tmp_path):
    test = (
        'x = 1\n### BEGIN HIDDEN TESTS\nassert x == 2, "hidden_assertion_here"  # the_hidden_marker_line\n'
        "### END HIDDEN TESTS\n"
    )
    r = execute(executor, tmp_path, [test], graded=frozenset({0}))
    error = next(o for o in r.cells[0]["outputs"] if o["output_type"] == "error")
    assert error["ename"] == "AssertionError"
    assert "the_hidden_marker_line" not in json.dumps(error)
    shown = "".join(error["traceback"])
    assert "<ipython-input-1-test>:3" in shown and "1 x = 1" in shown and "3 # (hidden test)" in shown


def test_a_flood_of_huge_exceptions_is_bounded_and_every_cell_keeps_its_error(executor, tmp_path):
    flood = (
        "ip = get_ipython()\nfor _ in range(200):\n    try:\n        raise ValueError('x' * 8_000_000)\n"
        "    except ValueError:\n        ip.showtraceback()\nraise KeyError('y' * 8_000_000)"
    )
    r = execute(executor, tmp_path, [flood] * 12, output_limit=300_000)
    assert r.ended == "completed", r.detail
    total = sum(len(json.dumps(c["outputs"])) for c in r.cells.values())
    assert total < 300_000 + 12 * 3_000
    for cell in r.cells.values():
        assert [o for o in cell["outputs"] if o["output_type"] == "error"][-1]["ename"] == "KeyError"


def test_the_budget_never_exceeds_the_ceiling_a_reply_fits_in():
    from autograder.grading.executor import MAX_MESSAGE_BYTES

    assert OUTPUT_CEILING + (MAX_ITEMS_PER_CELL + 2) * 1_000 < MAX_MESSAGE_BYTES


def test_the_runner_leaves_no_test_source_in_linecache(executor, tmp_path):
    r = execute(
        executor,
        tmp_path,
        [
            TEST.replace("found = peek()", "found = []"),
            (
                "import linecache\nprint(sum('the_hidden_' + 'marker_line' in ''.join(e[2]) "
                "for e in linecache.cache.values()))"
            ),
        ],
        graded=frozenset({0}),
    )
    assert printed(r, 1) == "0\n"
