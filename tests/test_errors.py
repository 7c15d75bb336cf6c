"""One-line reports carry no terminal colour codes (a feedback page would show them as "[31m" noise)."""

import subprocess
import sys

from autograder.errors import describe, first_line, strip_ansi


def coloured_pytest_failure(tmp_path) -> str:
    """What a real pytest run with colours prints for a failing test."""
    (tmp_path / "test_red.py").write_text("def test_red():\n    assert 1 == 2, 'the app answered 500'\n")
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--color=yes", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert "\x1b[" in run.stdout, "pytest was expected to colour its output"
    return run.stdout


def test_first_line_and_describe_drop_colour_codes(tmp_path):
    output = coloured_pytest_failure(tmp_path)
    failed = next(line for line in output.splitlines() if "the app answered 500" in line and "\x1b[" in line)
    assert "\x1b" not in first_line(failed)
    assert "the app answered 500" in first_line(failed)
    reported = describe(AssertionError(failed))
    assert reported.startswith("AssertionError: ") and "\x1b" not in reported and "[0m" not in reported


def test_strip_ansi_keeps_plain_text():
    assert strip_ansi("\x1b[31mE   assert 1 == 2\x1b[0m") == "E   assert 1 == 2"
    assert strip_ansi("[brackets] stay") == "[brackets] stay"
