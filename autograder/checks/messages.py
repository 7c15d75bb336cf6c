"""How a check says what it saw: its verdict, its hint, and the phrases checks share.

Every check ends the same way. It is decorated with `@check`, which names the
verdicts it returns after the check itself, and it returns `verdict(...)`:

    @check
    def max_queries(exchange, n) -> Verdict:
        ran = len(exchange.statements)
        return verdict(
            ran <= n, f"at most {n} statements", f"{ran} statements", exchange.sql,
            hint=first_hint(
                Hint(repeated(exchange.sql), "N+1: ..."),
                Hint(ran > n, "some of these statements can be merged or avoided."),
                default="fewer statements ran than the task needs",
            ),
        )

`first_hint` is the if/elif hint ladder written as data: the first `Hint` whose
condition holds gives the hint (a callable is called only then, for a text that can only
be computed in that case). A check that collects several problems uses
`Findings`: each problem goes with the hint that would fix it, and the first
hint found is the one shown.

The phrases (`outcome`, `app_error`, `trace`, `rows`, `plural`, `side_by_side`) are the same
words in every check's message, so a learner reads one vocabulary.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar, cast

from autograder import app_errors
from autograder.checks.verdict import Verdict

if TYPE_CHECKING:
    from autograder.checks.probe import Exchange

__all__ = [
    "check",
    "verdict",
    "Hint",
    "first_hint",
    "Findings",
    "outcome",
    "app_error",
    "trace",
    "rows",
    "plural",
    "side_by_side",
]

F = TypeVar("F", bound=Callable[..., Any])
R = TypeVar("R")
Say = str | Callable[[], str]


# --------------------------------------------------------------------------- verdicts


def check(fn: F) -> F:
    """Name every verdict `fn` returns after `fn` (unless it already carries a name).

    Works for plain and `async def` checks; the signature and docstring stay `fn`'s.
    """
    name = fn.__name__

    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def run_async(*args: Any, **kwargs: Any) -> Any:
            return _named(await fn(*args, **kwargs), name)

        return cast(F, run_async)

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        return _named(fn(*args, **kwargs), name)

    return cast(F, run)


def _named(result: R, name: str) -> R:
    """`result`, named after the check if it is a Verdict without a name (anything else passes through)."""
    if isinstance(result, Verdict) and not result.check:
        result.check = name
    return result


def verdict(passed: Any, expected: str, actual: str, sql: list[str] | None = None, hint: str = "") -> Verdict:
    """The verdict of the running check (`@check` gives it the check's name).

    A passed verdict carries no hint: there is nothing to fix.
    """
    passed = bool(passed)
    return Verdict(
        check="", passed=passed, expected=expected, actual=actual, sql=list(sql or []), hint="" if passed else hint
    )


# --------------------------------------------------------------------------- hints


def _say(say: Say) -> str:
    return say() if callable(say) else say


class Hint(NamedTuple):
    """One rule of a hint ladder: `say` is the hint when `when` is true.

    `say` may be a callable (e.g. a lambda), called only when its rule is chosen.
    """

    when: Any
    say: Say


def first_hint(*rules: Hint, default: Say = "") -> str:
    """The hint of the first rule whose condition is true, else `default`."""
    for when, say in rules:
        if when:
            return _say(say)
    return _say(default)


class Findings:
    """The problems a check found, in order, and the hint for the first one that has a hint.

    found = Findings()
    if crashed:
        found.add(f"{crashed} request(s) failed with a 5xx", hint="answer 409, not 500.")
    if total_changed:
        found.add("the total changed")        # a problem with no hint of its own
    return verdict(not found, expected, f"{actual}; {found.text()}", hint=found.hint)
    """

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.hint = ""

    def add(self, problem: str, hint: Say = "") -> None:
        self.problems.append(problem)
        self.suggest(hint)

    def suggest(self, hint: Say) -> None:
        """Offer a hint without a problem: kept only if no earlier hint was."""
        if not self.hint and hint:
            self.hint = _say(hint)

    def __bool__(self) -> bool:
        return bool(self.problems)

    def text(self, sep: str = "; ") -> str:
        return sep.join(self.problems)


# --------------------------------------------------------------------------- shared phrases


def outcome(ex: Exchange) -> str:
    """ "POST /users -> 409"; if the app raised, what it raised, where in the learner's code, and the
    lesson that explains it: "POST /users -> 500 (NameError: ... (raised at cell In[4], line 3, in add))"."""
    text = f"{ex.call} -> {ex.status}"
    if ex.errors:
        text += f" ({ex.crash})"
    return text


def app_error(error: BaseException) -> str:
    """An exception the learner's app raised, in the words every message uses (see autograder.app_errors)."""
    return app_errors.app_error(error)


def trace(kinds: list[str]) -> str:
    """Transaction events as "BEGIN, SAVEPOINT, RELEASE, COMMIT"."""
    return ", ".join(kinds) if kinds else "(no transaction)"


def plural(n: int, word: str) -> str:
    """ "1 row", "2 rows"."""
    return f"{n} {word}{'' if n == 1 else 's'}"


def rows(n: int) -> str:
    return plural(n, "row")


def side_by_side(expected: list[str], got: list[str]) -> str:
    """Two aligned columns, `!` marking the rows that differ."""
    width = max([len("expected")] + [len(k) for k in expected])
    lines = [f"      {'expected':<{width}}   got"]
    for i in range(max(len(expected), len(got))):
        e = expected[i] if i < len(expected) else "-"
        g = got[i] if i < len(got) else "-"
        mark = " " if e == g else "!"
        lines.append(f"  {mark}{i + 1:>2} {e:<{width}}   {g}")
    return "\n".join(lines)
