"""suite_kills_mutants: a good suite kills every mutant; weak, false-alarm and broken suites are named."""

import pytest

from autograder.checks.mutation import run_suite, suite_kills_mutants, suite_passes
from autograder.demos.testing import HINTS, MUTANTS, VARIANTS
from tests.apps.testing import BROKEN, FALSE_ALARM, GOOD, WEAK, write_suite

PLUGIN = "autograder.demos.testing"


@pytest.fixture
def suite(tmp_path, fresh_database):
    env = {"DATABASE_URL": fresh_database("mut")}

    async def run(source, mutants=MUTANTS):
        folder = write_suite(tmp_path / "suite", source)
        return await suite_kills_mutants(folder, mutants, plugin=PLUGIN, hints=HINTS, env=env,
                                         variants=VARIANTS)

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
