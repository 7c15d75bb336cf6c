"""The outcome of one check, written for the student who will read it.

A `Verdict` says what was expected, what was observed, the SQL that actually
ran, and a hint. `require()` turns a failed verdict into `CheckFailed`, whose
IPython hook shows only that message: a hidden nbgrader test then reports the
problem without revealing the test's own code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from autograder.observe.sql import numbered

MAX_SQL_LINES = 30
MAX_SQL_CHARS = 240


class CheckFailed(AssertionError):
    """A check failed; the message is the whole story."""

    def _render_traceback_(self) -> list[str]:  # IPython hook: no traceback, no test code
        return str(self).splitlines()


@dataclass
class Verdict:
    check: str
    passed: bool
    expected: str
    actual: str
    sql: list[str] = field(default_factory=list)
    hint: str = ""

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        lines = [f"{self.check}: {'PASSED' if self.passed else 'FAILED'}"]
        lines.append(f"Expected: {self.expected}")
        lines.append(f"Got:      {self.actual}")
        if self.sql:
            n = len(self.sql)
            lines.append(f"SQL that ran ({n} statement{'' if n == 1 else 's'}):")
            lines.append(numbered(self.sql, limit=MAX_SQL_CHARS, max_lines=MAX_SQL_LINES))
        if self.hint and not self.passed:
            lines.append(f"Hint: {self.hint}")
        return "\n".join(lines)

    def require(self) -> Verdict:
        if not self.passed:
            raise CheckFailed(str(self))
        return self
