"""What a learner reads when their app raised: the error, where it was raised, and which lesson explains it.

A probed request that ends in a 5xx because the app raised used to reach the learner as
`got 500: Internal Server Error`, although the driver had kept the exception. This module is
the one place that turns such an exception into text; the driver writes it into the 500's
body (so a visible assert that prints `ex.response.text` shows it), and `outcome()` puts it in
every check's verdict.

    explain(NameError("name 'SessionLcoal' is not defined")).text
    -> "NameError: name 'SessionLcoal' is not defined (raised at cell In[21], line 3, in get_db)"

An unsolved exercise (the release stub `raise NotImplementedError()`) reads as "not implemented
yet", and the errors this course teaches end with the lesson that explains them.
"""

from __future__ import annotations

import os
import re
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from autograder.errors import describe, first_line

__all__ = ["Place", "LessonHint", "LESSON_HINTS", "AppError", "explain", "app_error", "in_learner_code"]


# --------------------------------------------------------------------------- which lesson explains it


@dataclass(frozen=True)
class LessonHint:
    """`says` applies to an exception named `kind` (anywhere in its cause chain) whose message contains
    `fragment` ("" matches any message); it names the lesson that explains the error, if one does."""

    kind: str
    fragment: str
    says: str

    def matches(self, error: BaseException) -> bool:
        return type(error).__name__ == self.kind and self.fragment in str(error)


# First match wins, so a specific fragment comes before a catch-all of the same kind. Each lesson was
# checked against the lesson's own text (solutions/NN_*/NN_*.ipynb) where that error is shown failing.
LESSON_HINTS: tuple[LessonHint, ...] = (
    # Short, the fix first: a visible assert may print only the first 200-300 characters of the body.
    LessonHint(
        "InvalidRequestError",
        "unique() method must be invoked",
        "see lesson 06 (joinedload): call .unique() on the result, or load the collection with selectinload",
    ),
    LessonHint(
        "InvalidRequestError",
        "concurrent operations are not permitted",
        "see lesson 07 (concurrency): give each concurrent task its own session",
    ),
    LessonHint(
        "MissingGreenlet",
        "",
        "see lesson 06 (lazy loading): load the relationship in the query (selectinload); "
        "lesson 00 if a commit expired it (expire_on_commit=False)",
    ),
    LessonHint(
        "DetachedInstanceError",
        "",
        "see lesson 00 (expire_on_commit): the object was read after its session closed; "
        "use expire_on_commit=False or read it inside the session",
    ),
    LessonHint(
        "PendingRollbackError",
        "",
        "see lesson 05 (savepoints): a failed flush rolled the transaction back; wrap each risky step in "
        "begin_nested() (lesson 08: answering the error)",
    ),
    LessonHint(
        "TimeoutError",
        "QueuePool limit",
        "see lesson 07 (the pool): connections were held past pool_timeout; close every session (async with) "
        "and hold none across slow calls",
    ),
    LessonHint(
        "InterfaceError",
        "another operation is in progress",
        "see lesson 09 (testing): a connection reused on another event loop or by two tasks at once; "
        "create the engine on the loop that uses it",
    ),
    LessonHint(
        "RuntimeError",
        "attached to a different loop",
        "see lesson 03 (lifespan): an engine made at import time holds another loop's connections; "
        "create it in the lifespan (lesson 09: in test fixtures)",
    ),
    # Not a lesson's error, but the commonest 500 of an unfinished notebook: a typo, or a name whose
    # exercise cell still holds its stub (lesson 11's cells are `raise NotImplementedError()` alone).
    LessonHint(
        "NameError",
        "",
        "check the spelling, and that the cell defining it ran without error "
        "(an exercise cell still raising NotImplementedError defines nothing)",
    ),
)


def _chain(error: BaseException) -> list[BaseException]:
    """`error`, what it wraps (`.orig`, a driver's exception) and its causes, each once, outermost first."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [error]
    while todo:
        item = todo.pop(0)
        if item is None or any(item is s for s in seen):
            continue
        seen.append(item)
        orig = getattr(item, "orig", None)
        todo += [orig if isinstance(orig, BaseException) else None, item.__cause__, item.__context__]
    return seen


def lesson_hint(error: BaseException) -> str:
    """The hint of the first row of `LESSON_HINTS` that matches `error` or anything in its chain."""
    chain = _chain(error)
    for row in LESSON_HINTS:
        if any(row.matches(item) for item in chain):
            return row.says
    return ""


# --------------------------------------------------------------------------- where it was raised


@dataclass(frozen=True)
class Place:
    """A line of the learner's code: `where` is "cell In[5]" for a notebook cell, else the file."""

    where: str
    line: int
    function: str

    def __str__(self) -> str:
        return f"{self.where}, line {self.line}, in {self.function}"


def _library_roots() -> tuple[str, ...]:
    """Folders whose code is not the learner's: the standard library, installed packages, the grader."""
    paths = sysconfig.get_paths()
    roots = {paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib") if key in paths}
    roots.add(str(Path(__file__).resolve().parent))  # the autograder package (its demos build the apps)
    return tuple(sorted(os.path.join(os.path.realpath(r), "") for r in roots))


_LIBRARY = _library_roots()
_IPYTHON_INPUT = re.compile(r"^<ipython-input-(\d+)-[^>]*>$")  # IPython's name for a cell's code
# The grader compiles a test cell as "<ipython-input-N-test>" (grading/kernel.py): its code is the
# grader's, and naming its lines would point the learner into a hidden test.
_GRADER_TEST_CELL = re.compile(r"^<ipython-input-\d+-test>$")


def _ipython_cell(filename: str) -> str | None:
    """ "cell In[5]" when the running IPython compiled `filename` (what its own tracebacks say)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    compiler = getattr(shell, "compile", None)
    # format_code_name (IPython 8+) is what IPython's own tracebacks call: ("Cell", "In[5]")
    name_of = getattr(compiler, "format_code_name", None)
    if name_of is None or filename not in getattr(compiler, "_filename_map", {}):
        return None
    named = name_of(filename)
    return f"cell {named[1]}" if named else None


def in_learner_code(filename: str) -> bool:
    """Code the learner wrote: a notebook cell or a file of theirs, never a library or the grader."""
    if _GRADER_TEST_CELL.match(filename):
        return False
    if _IPYTHON_INPUT.match(filename) or _ipython_cell(filename) is not None:
        return True
    # "<frozen ...>", "<string>": no source the learner can open; a relative name is a compiled
    # extension's build path (SQLAlchemy's "lib/sqlalchemy/engine/_result_cy.py"), never a learner's file.
    if filename.startswith("<") or not os.path.isabs(filename):
        return False
    return not os.path.realpath(filename).startswith(_LIBRARY)


def _place_name(filename: str) -> str:
    cell = _ipython_cell(filename)
    if cell is not None:
        return cell
    numbered = _IPYTHON_INPUT.match(filename)
    if numbered:
        return f"cell In[{numbered.group(1)}]"
    try:
        return os.path.relpath(filename)
    except ValueError:  # another drive (Windows): the full name will do
        return filename


def raised_at(error: BaseException) -> Place | None:
    """The deepest line of the learner's code in `error`'s traceback, or in its causes'."""
    for item in _chain(error):
        place = _deepest_learner_frame(item.__traceback__)
        if place is not None:
            return place
    return None


def _deepest_learner_frame(tb: TracebackType | None) -> Place | None:
    found = None
    while tb is not None:
        code = tb.tb_frame.f_code
        if in_learner_code(code.co_filename):
            found = Place(_place_name(code.co_filename), tb.tb_lineno, code.co_name)
        tb = tb.tb_next
    return found


# --------------------------------------------------------------------------- the report


def _leaf(error: BaseException) -> BaseException:
    """The first real exception inside (possibly nested) exception groups (anyio task groups wrap)."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return error


@dataclass(frozen=True)
class AppError:
    """An exception the learner's app raised, as the learner should read it."""

    kind: str  # the exception's class name
    message: str  # the first line of its message
    place: Place | None
    hint: str  # "see lesson NN (...)" (or what to check, for a NameError); "" for other errors

    @property
    def not_implemented(self) -> bool:
        """An exercise still holding its release stub (`raise NotImplementedError()`)."""
        return self.kind == "NotImplementedError"

    @property
    def summary(self) -> str:
        return f"{self.kind}: {self.message}" if self.message else self.kind

    @property
    def text(self) -> str:
        """One line: the error, where it was raised and, for an error the course teaches, the lesson."""
        if self.not_implemented:
            who = f"{self.place.function} raises NotImplementedError" if self.place else "NotImplementedError"
            at = f" ({self.place.where}, line {self.place.line})" if self.place else ""
            return f"not implemented yet: {who} — write your solution in the cell marked YOUR CODE HERE{at}"
        text = self.summary + (f" (raised at {self.place})" if self.place else "")
        return text + (f" — {self.hint}" if self.hint else "")

    def __str__(self) -> str:
        return self.text


def explain(error: BaseException) -> AppError:
    """`error` (raised by the learner's app) as type, first line, the learner's line, and the lesson."""
    error = _leaf(error)
    summary = describe(error)
    kind = type(error).__name__
    message = summary[len(kind) + 2 :] if summary.startswith(kind + ": ") else first_line(str(error))
    return AppError(kind=kind, message=message, place=raised_at(error), hint=lesson_hint(error))


def app_error(error: BaseException) -> str:
    """The one-line report of `explain(error)`; never raises.

    The driver calls it while the learner's exception is on its way out: an exception class of
    theirs whose `__str__` fails must not replace their error by ours, so it falls back to the name.
    """
    try:
        return explain(error).text
    except Exception:  # noqa: BLE001 - see above: the class name is still worth showing
        return type(_leaf(error)).__name__
