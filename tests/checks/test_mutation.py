"""suite_kills_mutants: a good suite kills every mutant; weak, false-alarm and broken suites are named;
a suite that reads what the app *is* (test id, environment, names, source, closures) catches nothing."""

import json
from pathlib import Path

import pytest

from autograder.checks.mutation import _split_id, run_suite, suite_kills_mutants, suite_passes
from autograder.demos.testing import HINTS, MUTANTS, VARIANTS
from tests.apps.testing import BROKEN, FALSE_ALARM, GOOD, WEAK, write_suite

PLUGIN = "autograder.demos.testing"
LESSON = Path(__file__).resolve().parents[2] / "solutions" / "09_testing" / "09_testing.ipynb"


@pytest.fixture
def suite(tmp_path, fresh_database):
    env = {"DATABASE_URL": fresh_database("mut")}

    async def run(source, mutants=MUTANTS):
        folder = write_suite(tmp_path / "suite", source)
        return await suite_kills_mutants(folder, mutants, plugin=PLUGIN, hints=HINTS, env=env, variants=VARIANTS)

    return run


async def test_good_suite_kills_every_mutant(suite):
    verdict = await suite(GOOD)
    assert verdict.passed, str(verdict)
    for mutant in MUTANTS:
        assert mutant in verdict.actual


async def test_weak_suite_names_every_survivor_with_a_hint(suite):
    verdict = await suite(WEAK)
    assert not verdict.passed
    for mutant, what in MUTANTS.items():
        assert f"{mutant} survived" in verdict.actual and what in verdict.actual
    assert "count the SQL statements" in verdict.hint and "checkedout() == 0" in verdict.hint


async def test_one_mutant_at_a_time(suite):
    verdict = await suite(WEAK, {"n_plus_one": MUTANTS["n_plus_one"]})
    assert not verdict.passed
    assert "n_plus_one survived" in verdict.actual and "wrong_status" not in verdict.actual
    assert "before_cursor_execute" in verdict.hint


async def test_false_alarm_on_the_correct_app_catches_nothing(suite):
    verdict = await suite(FALSE_ALARM)
    assert not verdict.passed
    assert "failed against the correct app" in verdict.actual and "201 == 200" in verdict.actual
    assert "false alarm" in verdict.hint


async def test_a_suite_that_cannot_be_collected(suite):
    verdict = await suite(BROKEN)
    assert not verdict.passed
    assert "did not run" in verdict.actual and "SyntaxError" in verdict.actual


async def test_runs_are_cached_by_content(tmp_path, fresh_database):
    env = {"DATABASE_URL": fresh_database("mut")}
    folder = write_suite(tmp_path / "s", WEAK)
    first = await run_suite(folder, ["correct"], plugin=PLUGIN, env=env)
    assert await run_suite(folder, ["correct"], plugin=PLUGIN, env=env) is first
    (folder / "test_library.py").write_text(FALSE_ALARM)
    second = await run_suite(folder, ["correct"], plugin=PLUGIN, env=env)
    assert second is not first and not suite_passes(second).passed


# --- the variants are told apart by behaviour only ----------------------------------------------
# A suite that reads what the app *is* instead of what it does: every channel a test can read
# without exercising the app. Each run appends what it saw to LOG; the first run against the
# correct app alone writes SNAPSHOT, and every later run fails where anything differs from it (what
# a learner would hard-code), or where any mutant's name shows up anywhere.
SPY = '''\
import gc
import inspect
import json
import linecache
import os
import re
import sys
from pathlib import Path

from autograder.demos import testing as library

NAMES = [v for v in library.VARIANTS if v != "correct"]
SNAPSHOT = Path(SNAPSHOT_PATH)
LOG = Path(LOG_PATH)


def neutral(text):
    return re.sub(r"suite-report-[^/]+", "suite-report-*", text)  # random in every run, by design


def read(path):
    try:
        return neutral(Path(path).read_bytes().decode(errors="replace"))
    except OSError as error:
        return type(error).__name__


def source(function):
    try:
        return inspect.getsource(function)
    except (OSError, TypeError) as error:
        return type(error).__name__


def form(function):
    code = function.__code__
    cells = []
    for cell in function.__closure__ or ():
        value = cell.cell_contents
        cells.append(value if isinstance(value, (str, int, float, bool, type(None))) else type(value).__name__)
    return [function.__name__, function.__qualname__, function.__module__, code.co_filename,
            code.co_firstlineno, code.co_qualname, cells, source(function), sorted(function.__globals__)]


def names_held(objects):
    """Which mutant names are held by any of these containers (besides the module's own tables)."""
    tables = [library.VARIANTS, library.MUTANTS, library.HINTS, getattr(library, "_SLOTS", None), NAMES]
    found = set()
    for obj in objects:
        if isinstance(obj, (dict, list, tuple, set)) and not any(obj is t for t in tables):
            values = [*obj, *obj.values()] if isinstance(obj, dict) else obj
            found.update(v for v in values if type(v) is str and v in NAMES)
    return sorted(found)


def code(app):
    routes = [r for r in app.routes if r.path in ("/authors", "/books", "/authors/{author_id}")]
    return [(r.endpoint.__code__.co_code, r.endpoint.__code__.co_names, r.status_code) for r in routes] + [
        app.state.get_db.__code__.co_code, app.state.get_db.__code__.co_names]


def channels(request, app):
    routes = [r for r in app.routes if hasattr(r, "endpoint")]
    lifespan = app.router.lifespan_context
    functions = [r.endpoint for r in routes] + [app.state.get_db, lifespan, getattr(lifespan, "__wrapped__", lifespan)]
    frames, frame = [], sys._getframe()
    while frame is not None:
        frames.append(frame.f_locals)
        frame = frame.f_back
    callspec = getattr(request.node, "callspec", None)
    return {
        "node": [request.node.name, request.node.nodeid, sorted(request.node.keywords)],
        "callspec": callspec and [callspec.id, repr(callspec.params)],
        "argv": [neutral(a) for a in sys.argv], "cmdline": read("/proc/self/cmdline"),
        "environ": {k: neutral(v) for k, v in os.environ.items()}, "proc_environ": read("/proc/self/environ"),
        "stdin": repr(os.read(0, 100)),
        "app": [app.title, app.description, app.version, sorted(vars(app)), sorted(app.state._state)],
        "routes": [[r.path, r.name, sorted(r.methods)] + form(r.endpoint) for r in routes],
        "functions": [form(f) for f in functions],
        "linecache": sorted(k for k in linecache.cache if k.startswith("<")),
        "modules": sorted(sys.modules),
        "plugin": sorted(k for k, v in vars(library).items() if isinstance(v, (str, int))),
        "held": names_held(frames) + names_held(gc.get_objects()),
        # a reference built next to it is the same variant: no code to compare with
        "same_code_as_make_app": code(app) == code(library.make_app("correct", url=os.environ["DATABASE_URL"])),
    }


def test_reads_what_the_app_is(request, app):
    seen = channels(request, app)
    text = json.dumps(seen, sort_keys=True, default=repr)
    with LOG.open("a") as log:
        log.write(text + "\\n")
    if not SNAPSHOT.exists():
        SNAPSHOT.write_text(text)
    assert text == SNAPSHOT.read_text(), "not the app the snapshot was taken from"
    assert not [name for name in NAMES if name in text], "a mutant's name shows"
'''


async def test_a_suite_reading_what_the_app_is_catches_no_mutant(tmp_path, fresh_database):
    env = {"DATABASE_URL": fresh_database("mut")}
    snapshot, log = tmp_path / "snapshot.json", tmp_path / "seen.jsonl"
    spy = SPY.replace("SNAPSHOT_PATH", repr(str(snapshot))).replace("LOG_PATH", repr(str(log)))
    folder = write_suite(tmp_path / "suite", spy)
    alone = await run_suite(folder, ["correct"], plugin=PLUGIN, env=env, cache=False)  # the snapshot
    assert suite_passes(alone).passed, alone.output[-3000:]
    verdict = await suite_kills_mutants(folder, MUTANTS, plugin=PLUGIN, env=env, cache=False)
    assert not verdict.passed
    for mutant in MUTANTS:
        assert f"{mutant} survived" in verdict.actual, verdict.actual
    seen = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(seen) == 1 + len(VARIANTS) and all(s == seen[0] for s in seen)
    # and the channels were really read: no source, no names, no variant anywhere
    own = [f for f in seen[0]["functions"] if f[3] == "<library app>"]  # FastAPI's docs routes aside
    assert len(own) == 6 and {f[7] for f in own} == {"OSError"}, seen[0]["functions"]
    assert seen[0]["node"][0] == "test_reads_what_the_app_is[app]"
    assert seen[0]["held"] == [] and "<library app>" not in seen[0]["linecache"] and seen[0]["stdin"] == "b''"
    assert seen[0]["same_code_as_make_app"] is True


def _solution_suite(folder: Path, drop: str | None = None) -> Path:
    """The lesson's own solution suite (its conftest and tests cells), optionally without one test."""
    notebook = json.loads(LESSON.read_text())
    cells = {c["metadata"].get("nbgrader", {}).get("grade_id"): "".join(c["source"]) for c in notebook["cells"]}
    conftest, tests = (cells[name].split("\n", 1)[1] for name in ("ex_conftest", "ex_tests"))  # no %%writefile
    if drop is not None:
        head, rest = tests.split(f"async def {drop}(", 1)
        tests = head + rest.split("\n\n\n", 1)[1] if "\n\n\n" in rest else head
    return write_suite(folder, tests, conftest=conftest)


async def test_the_lessons_solution_suite_catches_every_mutant(tmp_path, fresh_database):
    env = {"DATABASE_URL": fresh_database("mut")}
    folder = _solution_suite(tmp_path / "suite")
    verdict = await suite_kills_mutants(folder, MUTANTS, plugin=PLUGIN, hints=HINTS, env=env, variants=VARIANTS)
    assert verdict.passed, str(verdict)
    for mutant in MUTANTS:
        assert mutant in verdict.actual


async def test_an_honest_weak_suite_loses_exactly_what_it_misses(tmp_path, fresh_database):
    env = {"DATABASE_URL": fresh_database("mut")}
    folder = _solution_suite(tmp_path / "suite", drop="test_reads_give_their_connections_back")
    assert "LifespanManager(app)" not in (folder / "test_library.py").read_text()
    run = await run_suite(folder, VARIANTS, plugin=PLUGIN, env=env)
    assert [m for m in MUTANTS if not run.failing(m)] == ["leak"], run.table()
    graded = {("wrong_status",): True, ("no_rollback", "no_commit"): True, ("n_plus_one",): True, ("leak",): False}
    for mutants, earned in graded.items():  # the lesson's four graded cells, from the cached run
        verdict = await suite_kills_mutants(
            folder, {m: MUTANTS[m] for m in mutants}, plugin=PLUGIN, hints=HINTS, env=env, variants=VARIANTS
        )
        assert verdict.passed is earned, str(verdict)
    assert "leak survived" in verdict.actual and "checkedout() == 0" in verdict.hint


def test_test_ids_carry_the_neutral_app_parameter_only():
    assert _split_id("test_x[app]") == ("test_x", True)
    assert _split_id("test_x[app-3]") == ("test_x[3]", True)
    assert _split_id("test_x[3]") == ("test_x[3]", False) and _split_id("test_x") == ("test_x", False)
