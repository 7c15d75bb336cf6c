import asyncio
import inspect

import pytest
from sqlalchemy.exc import IntegrityError

import autograder.checks as checks
from autograder.checks import Verdict
from autograder.checks.health import unreachable_url
from autograder.checks.messages import Findings, Hint, check, first_hint, plural, side_by_side, verdict
from autograder.demos.lifespan import unreachable_url as lesson_03_unreachable_url
from autograder.errors import describe, first_line

# ------------------------------------------------------------------ @check and verdict()


@check
def doubles(n: int) -> Verdict:
    """Doubles, or says why not."""
    return verdict(n * 2 == 42, "21 × 2 == 42", f"{n} × 2 == {n * 2}", hint="use 21")


@check
async def doubles_later(n: int) -> Verdict:
    return verdict(n * 2 == 42, "21 × 2 == 42", f"{n} × 2 == {n * 2}", ["SELECT 1"], hint="use 21")


def test_a_check_names_its_verdicts_after_itself():
    v = doubles(20)
    assert v.check == "doubles"
    assert str(v).splitlines() == [
        "doubles: FAILED",
        "Expected: 21 × 2 == 42",
        "Got:      20 × 2 == 40",
        "Hint: use 21",
    ]


def test_an_async_check_stays_async_and_names_its_verdicts():
    assert inspect.iscoroutinefunction(doubles_later)
    v = asyncio.run(doubles_later(21))
    assert v.check == "doubles_later" and v.passed and v.sql == ["SELECT 1"]


def test_a_check_keeps_its_signature_and_docstring():
    assert list(inspect.signature(doubles).parameters) == ["n"]
    assert doubles.__doc__ == "Doubles, or says why not."
    assert doubles.__name__ == "doubles"


def test_a_verdict_that_already_has_a_name_keeps_it():
    @check
    def outer() -> Verdict:
        return doubles(20)  # a check that returns another check's verdict

    assert outer().check == "doubles"


def test_a_passed_verdict_carries_no_hint():
    v = doubles(21)
    assert v.passed is True and v.hint == ""
    assert str(v) == "doubles: PASSED\nExpected: 21 × 2 == 42\nGot:      21 × 2 == 42"


def test_passed_is_a_real_bool():
    assert verdict([1], "e", "a").passed is True
    assert verdict([], "e", "a").passed is False


def test_every_public_check_is_decorated():
    """A check that builds `verdict(...)` without `@check` would print ": FAILED"."""
    names = [
        n
        for n in checks.__all__
        if inspect.isfunction(getattr(checks, n))
        and inspect.signature(getattr(checks, n)).return_annotation in (Verdict, "Verdict")
    ]
    assert len(names) >= 30
    undecorated = [n for n in names if not hasattr(getattr(checks, n), "__wrapped__")]
    assert undecorated == []


# ------------------------------------------------------------------ hints


def test_first_hint_takes_the_first_rule_that_holds():
    assert first_hint(Hint(False, "a"), Hint(True, "b"), Hint(True, "c")) == "b"
    assert first_hint(Hint(0, "a"), Hint([], "b"), default="d") == "d"
    assert first_hint(Hint(None, "a")) == ""


def test_first_hint_computes_a_callable_hint_only_when_chosen():
    def boom() -> str:
        raise AssertionError("computed although not chosen")

    assert first_hint(Hint(True, "a"), Hint(True, boom), default=boom) == "a"
    assert first_hint(Hint(False, boom), Hint(True, lambda: "late")) == "late"
    assert first_hint(default=lambda: "fallback") == "fallback"


def test_findings_keep_every_problem_and_the_first_hint():
    found = Findings()
    assert not found and found.hint == "" and found.text() == ""
    found.add("the total changed")  # no hint of its own
    found.add("a 5xx", "answer 409")
    found.add("a lost update", "lock the row")
    found.suggest("ignored: a hint was already chosen")
    assert found
    assert found.text() == "the total changed; a 5xx; a lost update"
    assert found.hint == "answer 409"


def test_findings_suggest_fills_an_empty_hint():
    found = Findings()
    found.add("rows listed twice")
    found.suggest(lambda: "use a keyset cursor")
    assert found.hint == "use a keyset cursor"


# ------------------------------------------------------------------ phrases


def test_plural():
    assert [plural(n, "row") for n in (0, 1, 2)] == ["0 rows", "1 row", "2 rows"]


def test_side_by_side_marks_the_rows_that_differ():
    lines = side_by_side(["BEGIN", "COMMIT"], ["BEGIN", "ROLLBACK", "COMMIT"]).splitlines()
    assert lines[0].split() == ["expected", "got"]
    assert lines[1].startswith("   ") and lines[1].split() == ["1", "BEGIN", "BEGIN"]
    assert lines[2].lstrip().startswith("!") and lines[2].split()[-1] == "ROLLBACK"
    assert lines[3].split() == ["!", "3", "-", "COMMIT"]


# ------------------------------------------------------------------ one-line errors


def test_describe_gives_type_and_first_line():
    assert describe(ValueError("first\nsecond")) == "ValueError: first"
    assert describe(KeyError()) == "KeyError"
    assert describe(RuntimeError("  \n  ")) == "RuntimeError"


def test_describe_drops_sqlalchemy_links_and_addresses_and_cuts_to_a_limit():
    text = "Instance <A at 0x7f00ab> is detached (Background on this error at: https://sqlalche.me/e/20/bhk3)"
    assert describe(RuntimeError(text)) == "RuntimeError: Instance <A> is detached"
    long = describe(RuntimeError("x" * 500), limit=50)
    assert long.endswith("...") and len(long) == len("RuntimeError: ") + 50
    assert describe(RuntimeError("x" * 500)).endswith("x")  # no limit unless asked


class _DriverError(Exception):
    pass


def test_describe_driver_reports_the_wrapped_driver_error():
    orig = _DriverError('(ignored.prefix) column "cents" contains null values\nDETAIL: row 3')
    wrapped = IntegrityError("INSERT ...", {}, orig)
    assert describe(wrapped).startswith("IntegrityError: (tests.checks.test_messages._DriverError)")
    assert describe(wrapped, driver=True) == '_DriverError: column "cents" contains null values'
    assert describe(ValueError("(x) plain"), driver=True) == "ValueError: plain"


def test_first_line():
    assert first_line("\n  one  \ntwo") == "one"
    assert first_line("") == ""
    assert first_line("abcdef", 5) == "ab..."


# ------------------------------------------------------------------ unreachable_url


URL = "postgresql+asyncpg://u:pw@db:5432/lesson_x?host=/tmp&port=5433&ssl=disable"


def test_unreachable_url_by_socket_keeps_credentials_database_and_options():
    down = unreachable_url(URL)
    assert down.startswith("postgresql+asyncpg://u:pw@/lesson_x?")
    assert "host=%2Fnonexistent%2Fcourse-db-is-down" in down and "ssl=disable" in down
    assert "5433" not in down and "/tmp" not in down


def test_unreachable_url_by_port_and_with_another_password():
    down = unreachable_url(URL, password="hunter2", via="port")
    assert down == "postgresql+asyncpg://u:hunter2@127.0.0.1:1/lesson_x?ssl=disable"
    with pytest.raises(ValueError, match="via must be"):
        unreachable_url(URL, via="carrier pigeon")


def test_lesson_03_unreachable_url_is_the_same_function_by_port():
    assert lesson_03_unreachable_url(URL) == unreachable_url(URL, via="port")
    assert lesson_03_unreachable_url(URL, password="s3cret") == unreachable_url(URL, "s3cret", via="port")
