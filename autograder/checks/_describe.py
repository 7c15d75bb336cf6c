"""Short phrases shared by the checks' messages."""

from __future__ import annotations

from autograder.checks.probe import Exchange
from autograder.driver import describe


def outcome(ex: Exchange) -> str:
    """"POST /users -> 409", with the exception if the app raised one."""
    text = f"{ex.call} -> {ex.status}"
    if ex.errors:
        text += f" ({describe(ex.errors[0])})"
    return text


def trace(kinds: list[str]) -> str:
    return ", ".join(kinds) if kinds else "(no transaction)"


def rows(n: int) -> str:
    return f"{n} row{'' if n == 1 else 's'}"
