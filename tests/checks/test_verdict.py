import pytest

from autograder.checks import CheckFailed, Verdict


def test_a_passed_verdict_is_truthy_and_quiet():
    v = Verdict("max_queries", True, "at most 2", "2 statements", sql=["SELECT 1"], hint="unused")
    assert v
    assert v.require() is v
    text = str(v)
    assert text.startswith("max_queries: PASSED")
    assert "Hint" not in text


def test_a_failed_verdict_reads_expected_got_sql_hint():
    sqls = [f"SELECT {i}   FROM   t" for i in range(40)] + ["SELECT " + "x, " * 200 + "y FROM t"]
    v = Verdict("max_queries", False, "at most 2 statements", "41 statements", sql=sqls, hint="use selectinload")
    assert not v
    lines = str(v).splitlines()
    assert lines[0] == "max_queries: FAILED"
    assert lines[1] == "Expected: at most 2 statements"
    assert lines[2] == "Got:      41 statements"
    assert lines[3] == "SQL that ran (41 statements):"
    assert lines[4] == "  1. SELECT 0 FROM t"  # whitespace collapsed
    assert "... and 11 more" in str(v)  # long listings are cut
    assert lines[-1] == "Hint: use selectinload"


def test_long_statements_are_shortened():
    v = Verdict("c", False, "e", "a", sql=["SELECT " + "x, " * 200 + "y FROM t"])
    line = str(v).splitlines()[-1]
    assert line.endswith("...") and len(line) < 260


def test_require_raises_check_failed_showing_only_the_message():
    v = Verdict("rolled_back", False, "no new row", "1 new row", hint="commit after yield")
    with pytest.raises(CheckFailed) as info:
        v.require()
    assert isinstance(info.value, AssertionError)
    assert str(info.value) == str(v)
    assert info.value._render_traceback_() == str(v).splitlines()
