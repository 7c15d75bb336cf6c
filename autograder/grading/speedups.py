"""Every speed-up that patches another library (or the interpreter) lives here, switchable.

Grading a class means running nbgrader's converter and preprocessors, nbformat's
validation and multiprocessing's fork server many times in one process; a few of
their costs are paid again on every submission although once would do. Each
speed-up below removes one such cost by patching the library from outside. Each is
a named unit in `SPEEDUPS`: what it patches, why the outcome is unchanged, the
versions it was checked on, its measured gain. tests/grading/test_speedups.py has,
for each one, a guard that fails (naming the speed-up) when the patched internals
or the library's version change, a test that the outcome with it equals the
outcome without it, and a test that the switch turns it off.

The switch: the environment variable `AUTOGRADER_SPEEDUPS`, read when a speed-up
is about to be applied (a grading command: at start-up; the fork server gets the
variable too). Unset or `on`: all of them. `off`: none. Otherwise a comma-separated
list read left to right, starting from all: `-name` turns one off, `+name` (or
`name`) turns one on, `on`/`off` reset. For example

    AUTOGRADER_SPEEDUPS=off autograder grade ...                 # stock behaviour throughout
    AUTOGRADER_SPEEDUPS=-gc_freeze,-schema_checked_once ...      # all but these two
    AUTOGRADER_SPEEDUPS=off,+gradebook_engines ...               # only this one

An unknown name is an error (a typo must not silently measure the wrong thing).
`benchmarks/grading.py --speedups both` times a class run with and without them.

Measured gains (each entry's `gain`; commands and figures in benchmarks/README.md): CPU
micro-measurements of exactly what each one avoids, scaled to the benchmark's class run (40
submissions, ~7 s on 2 cores), because the class-run timings of 2026-12-02 (load 8-13 on the
2-core machine, other work running) could not separate gains of a few per cent from noise.

Tried and dropped (gain under ~2 % of a class run, code removed): none. `submissions_skip_main`
gains ~1 % on a CLI class run but is kept: it is also what lets an unguarded `__main__` grade
(see its docstring).

This module must stay light to import (the CLI imports it before anything heavy):
the standard library only at top level, every patched library imported when its
speed-up is applied.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import Any

ENV = "AUTOGRADER_SPEEDUPS"


class Speedup:
    """One speed-up: `patch()` is a context manager that applies it on entry and undoes it on exit."""

    __slots__ = ("checked_on", "gain", "name", "patch", "patches")

    def __init__(
        self,
        name: str,
        patches: str,
        checked_on: str,
        gain: str,
        patch: Callable[[], contextlib.AbstractContextManager[object]],
    ):
        self.name = name
        self.patches = patches  # the other library's internals it replaces
        self.checked_on = checked_on  # versions the guard test pins
        self.gain = gain  # measured on a class run
        self.patch = patch

    def __repr__(self) -> str:
        return f"Speedup({self.name!r})"


# ----------------------------------------------------------------------------- the switch
def _parse(value: str | None) -> frozenset[str]:
    names = set(SPEEDUPS)
    if value is None or not value.strip():
        return frozenset(names)
    on: set[str] = set(names)
    for token in (t.strip() for t in value.split(",")):
        if not token:
            continue
        if token in {"on", "all"}:
            on = set(names)
        elif token in {"off", "none"}:
            on = set()
        else:
            sign, name = (token[0], token[1:]) if token[0] in "+-" else ("+", token)
            if name not in names:
                raise ValueError(
                    f"{ENV}={value!r}: no speed-up is called {name!r}; known: {', '.join(sorted(names))} (or on, off)"
                )
            (on.add if sign == "+" else on.discard)(name)
    return frozenset(on)


def enabled(name: str) -> bool:
    """Whether the switch (`AUTOGRADER_SPEEDUPS`, read now) leaves this speed-up on."""
    if name not in SPEEDUPS:
        raise KeyError(f"no speed-up is called {name!r}")
    return name in _parse(os.environ.get(ENV))


def fork_server_environment() -> dict[str, str]:
    """What the fork server's environment needs of the switch (it starts with a clean one)."""
    value = os.environ.get(ENV)
    return {} if value is None else {ENV: value}


# Speed-ups applied for the rest of the process (start-up ones), by name, so tests can undo them.
_KEPT: dict[str, contextlib.ExitStack] = {}
_KEPT_LOCK = threading.Lock()


def apply(name: str) -> bool:
    """Apply a speed-up for the rest of the process, if the switch leaves it on. Idempotent;
    True when it is applied (now or before)."""
    if not enabled(name):
        return False
    with _KEPT_LOCK:
        if name not in _KEPT:
            stack = contextlib.ExitStack()
            stack.enter_context(SPEEDUPS[name].patch())
            _KEPT[name] = stack
    return True


def revert(name: str) -> None:
    """Undo what `apply(name)` did (tests; nothing in the grader calls it)."""
    with _KEPT_LOCK:
        stack = _KEPT.pop(name, None)
    if stack is not None:
        stack.close()


# ----------------------------------------------------------------------------- nbgrader: gradebook engines
class _EngineCache:
    def __init__(self, create_engine):
        self._create_engine = create_engine
        self._engines: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def __call__(self, url, *args: Any, **kwargs: Any):
        if args:  # not how nbgrader calls it: do not guess what the arguments mean
            return self._create_engine(url, *args, **kwargs)
        key = (str(url), repr(sorted(kwargs.items())))
        with self._lock:
            engine = self._engines.get(key)
            if engine is None:
                engine = self._engines[key] = self._create_engine(url, **kwargs)
                # An instance attribute: Gradebook.close() keeps the pool; dispose_all() ends it.
                engine.dispose = _keep_pool
            return engine

    def dispose_all(self) -> None:
        with self._lock:
            for engine in self._engines.values():
                del engine.dispose
                engine.dispose()
            self._engines.clear()


def _keep_pool(close: bool = True) -> None:
    """Engine.dispose while the run lasts: the pool's connections stay open for the next Gradebook."""


@contextlib.contextmanager
def reuse_gradebook_engines() -> Iterator[_EngineCache]:
    """**gradebook_engines** — patches `nbgrader.api.create_engine` (the name nbgrader.api
    imported from SQLAlchemy).

    nbgrader opens a `Gradebook` in almost every step (about ten per submission) and each
    one calls `create_engine`. SQLAlchemy caches compiled SQL *per engine*, so every query
    nbgrader makes is compiled from scratch each time: ~5 ms of a ~7 ms `Gradebook()`.
    While active, every `Gradebook` for one URL shares one engine, and its pool is kept
    until the run ends: `Gradebook.close()` would dispose it, and every SQLite connection
    opened anew re-reads the schema before its first query.

    Safe: an idle pooled connection holds no lock, so other processes (formgrader) write
    the file as before and we see their writes; the SQLite file is still written by one
    thread; a call with positional arguments (not nbgrader's) gets the stock function."""
    import nbgrader.api

    original = nbgrader.api.create_engine
    cache = _EngineCache(original)
    nbgrader.api.create_engine = cache
    try:
        yield cache
    finally:
        nbgrader.api.create_engine = original
        cache.dispose_all()


# ----------------------------------------------------------------------------- nbgrader: tables made once
@contextlib.contextmanager
def make_tables_once() -> Iterator[set[str]]:
    """**gradebook_tables_once** — shadows `nbgrader.api.Base.metadata.create_all` (an
    instance attribute on nbgrader's SQLAlchemy `MetaData`).

    Each `Gradebook` runs `Base.metadata.create_all`, which asks SQLite about each of its
    13 tables (13 PRAGMA round trips, ~2 ms) although the first `Gradebook` of the run has
    made them. While active, that happens once per URL (yields the URLs done).

    Safe: a URL not seen yet in this run, or a call with other arguments (`tables=`, a
    `checkfirst` other than the default, no bind), gets the stock `create_all`; nothing drops the tables
    of a gradebook in the middle of a grading run."""
    import nbgrader.api

    metadata = nbgrader.api.Base.metadata
    stock = metadata.create_all
    made: set[str] = set()
    lock = threading.Lock()

    unset = object()  # checkfirst not given: the stock default (CheckFirst.ALL, "check everything")

    def create_all(bind=None, tables=None, checkfirst=unset):
        given = {} if checkfirst is unset else {"checkfirst": checkfirst}
        url = getattr(bind, "url", None)
        if url is None or tables is not None or checkfirst not in (unset, True):  # (True == CheckFirst.ALL)
            return stock(bind=bind, tables=tables, **given)
        key = str(url)
        with lock:
            if key in made:
                return None
        stock(bind=bind, tables=tables, **given)
        with lock:
            made.add(key)
        return None

    previous = vars(metadata).get("create_all")  # an enclosing use's
    metadata.create_all = create_all  # an instance attribute: it shadows the method until removed
    try:
        yield made
    finally:
        if previous is None:
            vars(metadata).pop("create_all", None)
        else:
            metadata.create_all = previous


# ----------------------------------------------------------------------------- nbgrader: schema checked once
class _SchemaCheckedOnce:
    """Stands in for the `jsonschema` module inside nbgrader's metadata validator."""

    def __init__(self, module):
        self._module = module
        self._validators: dict[str, Any] = {}
        self._lock = threading.Lock()

    def validate(self, instance, schema, cls=None, *args: Any, **kwargs: Any) -> None:
        if cls is not None or args or kwargs:
            self._module.validate(instance, schema, cls, *args, **kwargs)
            return
        import json

        key = json.dumps(schema, sort_keys=True)
        with self._lock:
            validator = self._validators.get(key)
        if validator is None:
            validator_class = self._module.validators.validator_for(schema)
            validator_class.check_schema(schema)  # raises SchemaError, as jsonschema.validate would
            validator = validator_class(schema)
            with self._lock:
                self._validators[key] = validator
        error = self._module.exceptions.best_match(validator.iter_errors(instance))
        if error is not None:
            raise error

    def __getattr__(self, name: str) -> Any:
        return getattr(self._module, name)


@contextlib.contextmanager
def validate_schema_once() -> Iterator[None]:
    """**schema_checked_once** — replaces the `jsonschema` name inside
    `nbgrader.nbgraderformat.common` (nbgrader's cell-metadata validator).

    `CheckCellMetadata` calls `jsonschema.validate(metadata, schema)` per nbgrader cell,
    and `validate` first checks the *schema* against its meta-schema — 2 ms per cell,
    twice per submission. While active, nbgrader's validator gets a stand-in module whose
    `validate` checks each schema once and then only the instances.

    Safe: the errors raised are jsonschema's own, chosen the same way (`best_match`), as
    `jsonschema.validate` does; any other use of the module goes to the real one."""
    import nbgrader.nbgraderformat.common as common

    original = common.jsonschema
    common.jsonschema = _SchemaCheckedOnce(original)
    try:
        yield
    finally:
        common.jsonschema = original


# ----------------------------------------------------------------------------- nbgrader: alembic head in-process
_ALEMBIC_HEAD: str | None = None


def alembic_head() -> str:
    """nbgrader's newest gradebook migration, read from its migration scripts (once per process)."""
    global _ALEMBIC_HEAD
    if _ALEMBIC_HEAD is None:
        from alembic.script import ScriptDirectory
        from nbgrader.dbutil import ALEMBIC_DIR

        head = ScriptDirectory(ALEMBIC_DIR).get_current_head()
        if head is None:
            raise RuntimeError(f"nbgrader's migrations in {ALEMBIC_DIR} have no head")
        _ALEMBIC_HEAD = head
    return _ALEMBIC_HEAD


@contextlib.contextmanager
def alembic_head_in_process() -> Iterator[None]:
    """**alembic_head_in_process** — replaces `nbgrader.api.get_alembic_version`.

    A new gradebook stamps its schema version, and nbgrader finds it by running the `alembic`
    command (`alembic heads`, a new Python process that imports alembic and nbgrader's
    migrations): ~2.8 s of the ~4.5 s it takes to grade one notebook, paid by every
    `grade_notebook` (each uses a new throwaway course) and so by every "check my work".
    While active, the head is read in-process with alembic's own `ScriptDirectory` from the
    same migration folder, once per process.

    Safe: the same migration scripts and the same alembic code give the same revision id (the
    guard test compares it with the command's answer); nothing else of nbgrader changes."""
    import nbgrader.api

    original = nbgrader.api.get_alembic_version
    nbgrader.api.get_alembic_version = alembic_head
    try:
        yield
    finally:
        nbgrader.api.get_alembic_version = original


# ----------------------------------------------------------------------------- jsonschema: no IRI grammar
@contextlib.contextmanager
def skip_rfc3987_syntax() -> Iterator[bool]:
    """**no_iri_grammar** — plants `sys.modules["rfc3987_syntax"] = None` before jsonschema
    is imported.

    jsonschema (imported by nbformat) imports `rfc3987_syntax` if it is installed (it is:
    JupyterLab's jupyter-events pulls it in) for its optional IRI *format* checks, and that
    import builds a Lark grammar: ~0.8 s, half of a grading command's start-up.

    Safe: formats are checked only when a `FormatChecker` is passed, which neither nbformat
    nor nbgrader does, so jsonschema treats the module as not installed and nothing else
    changes. Applied only when jsonschema is not imported yet (afterwards it is too late,
    and it does nothing); only a grading process applies it — JupyterLab and the tests are
    untouched. Yields whether it planted the entry."""
    planted = "jsonschema" not in sys.modules and "rfc3987_syntax" not in sys.modules
    if planted:
        sys.modules["rfc3987_syntax"] = None  # type: ignore[assignment]
    try:
        yield planted
    finally:
        if planted and "rfc3987_syntax" in sys.modules and sys.modules["rfc3987_syntax"] is None:
            del sys.modules["rfc3987_syntax"]


# ----------------------------------------------------------------------------- multiprocessing: no __main__
def _without_main(get_preparation_data, prefix: str):
    def prepared(name):
        data = get_preparation_data(name)
        if name.startswith(prefix):
            data.pop("init_main_from_path", None)
            data.pop("init_main_from_name", None)
        return data

    prepared.__wrapped__ = get_preparation_data  # type: ignore[attr-defined]
    return prepared


@contextlib.contextmanager
def skip_main_in_submissions() -> Iterator[None]:
    """**submissions_skip_main** — wraps `multiprocessing.spawn.get_preparation_data`.

    multiprocessing re-imports the parent's main script in every child it starts (the
    preparation data's `init_main_from_path`/`init_main_from_name`; and on 3.11 the fork
    server's own preload of "__main__" is silently dropped): 3.5 ms of CPU per submission
    when the caller is the CLI, 45 ms under pytest, seconds for a heavy script.

    Kept although its gain on a CLI class run is ~1 % (under the 2 % bar): it is also what
    lets a caller whose main script has no `if __name__ == "__main__":` guard (a script or a
    notebook calling the Python API, tests/grading/test_executor.py's killed grader) grade
    at all — re-imported in the child, such a script starts a process while bootstrapping
    and multiprocessing refuses (RuntimeError), so every submission fails to start. Switch
    it off for measurements only.

    Safe: only processes named `executor.PROCESS_NAME*` — our submissions, whose target is a
    function of this package, never of `__main__` — lose those two keys; every other
    process started by multiprocessing gets the stock data."""
    import multiprocessing.spawn as spawn

    from autograder.grading.executor import PROCESS_NAME

    original = spawn.get_preparation_data
    if hasattr(original, "__wrapped__"):  # already ours (applied by an enclosing use)
        yield
        return
    spawn.get_preparation_data = _without_main(original, PROCESS_NAME)
    try:
        yield
    finally:
        spawn.get_preparation_data = original


# ----------------------------------------------------------------------------- gc: frozen long-lived objects
@contextlib.contextmanager
def _frozen_gc() -> Iterator[None]:
    import gc

    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def freeze_gc() -> bool:
    """**gc_freeze** — `gc.freeze()`: move every object alive now out of the collector's reach.

    A grading process holds a couple of million long-lived objects (nbgrader, Jupyter,
    SQLAlchemy): every full collection walks all of them, and so does the one Python runs
    while it shuts down — 0.25-0.3 s of a command that grades a class in a few seconds.
    The grading commands call it once the imports are done and again before exiting; what
    is made in between is collected as usual. Safe: nothing is lost (frozen objects are
    only never collected; files and connections are closed explicitly), and the frozen
    objects live as long as the process anyway. Does nothing when switched off; True when
    it froze."""
    if not enabled("gc_freeze"):
        return False
    import gc

    gc.freeze()
    return True


def freeze_fork_server_gc() -> bool:
    """**fork_server_gc_freeze** — `gc.freeze()` in the fork server, after its preload.

    Everything the fork server imported lives as long as it does; frozen, a forked
    submission's collections walk only the objects it made itself, not the million the
    imports made — each walk would touch (and so copy) the server's pages. Called by
    `preload` (in the fork server: the switch reaches it through
    `fork_server_environment()`). Safe as `gc_freeze`. True when it froze."""
    if not enabled("fork_server_gc_freeze"):
        return False
    import gc

    gc.freeze()
    return True


# ----------------------------------------------------------------------------- the registry
SPEEDUPS: dict[str, Speedup] = {
    s.name: s
    for s in [
        Speedup(
            "gradebook_engines",
            "nbgrader.api.create_engine",
            "nbgrader 0.9.x, SQLAlchemy 2.1.x",
            "a Gradebook with 3 queries 8.1 -> 1.7 ms CPU; ~10 per submission: ~2.5 s of the serial main thread "
            "per 40 submissions; class run: the command's CPU +30 % without it",
            reuse_gradebook_engines,
        ),
        Speedup(
            "gradebook_tables_once",
            "nbgrader.api.Base.metadata.create_all",
            "nbgrader 0.9.x, SQLAlchemy 2.1.x",
            "0.65 ms CPU per Gradebook with shared engines (3 ms without): ~0.26 s of the main thread per 40 "
            "submissions, ~4 % of a ~7 s class run",
            make_tables_once,
        ),
        Speedup(
            "schema_checked_once",
            "nbgrader.nbgraderformat.common.jsonschema",
            "nbgrader 0.9.x, jsonschema 4.x",
            "lesson 00 (10 nbgrader cells): 6.5 -> 0.7 ms CPU per pass, two per submission: ~0.47 s of the main "
            "thread per 40 submissions, ~6 % of a class run",
            validate_schema_once,
        ),
        Speedup(
            "alembic_head_in_process",
            "nbgrader.api.get_alembic_version",
            "nbgrader 0.9.x, alembic 1.x",
            "grading one notebook (grade_notebook, lesson 01): 4.5 -> 1.7 s; once per grading run in a class run",
            alembic_head_in_process,
        ),
        Speedup(
            "no_iri_grammar",
            'sys.modules["rfc3987_syntax"] (for jsonschema._format)',
            "jsonschema 4.x",
            "`import nbformat` 1.25 -> 0.14 s CPU, at the command's start-up: ~15 % of a ~7 s class run",
            skip_rfc3987_syntax,
        ),
        Speedup(
            "submissions_skip_main",
            "multiprocessing.spawn.get_preparation_data",
            "CPython 3.11, 3.12",
            "3.5 ms CPU per submission under the CLI (~1 % of a class run; 45 ms under pytest); kept: an "
            "unguarded __main__ cannot grade without it",
            skip_main_in_submissions,
        ),
        Speedup(
            "gc_freeze",
            "gc.freeze() in the grading command",
            "CPython 3.11, 3.12",
            "each full collection of the command 140 -> 0 ms CPU (one at least, at exit): 2-4 % of a class run",
            _frozen_gc,
        ),
        Speedup(
            "fork_server_gc_freeze",
            "gc.freeze() in the fork server",
            "CPython 3.11, 3.12",
            "each full collection in a submission 80 -> 0 ms CPU (and no copied pages); its class-run share "
            "was lost in load noise on 2026-12-02: re-measure with --speedups each",
            _frozen_gc,
        ),
    ]
}

# Applied per grading run by `faster_nbgrader` (the others are applied once per process).
NBGRADER_SPEEDUPS = ("gradebook_engines", "gradebook_tables_once", "schema_checked_once", "alembic_head_in_process")

_RUNS = 0  # grading runs in this process using the nbgrader speed-ups now
_RUNS_LOCK = threading.Lock()
_INSTALLED: contextlib.ExitStack | None = None


@contextlib.contextmanager
def faster_nbgrader() -> Iterator[None]:
    """The nbgrader speed-ups the switch leaves on, for as long as any grading run in this
    process is active. Runs that overlap need not end in the order they started: the first
    to start installs them and the last to end removes them (each one alone undoes itself
    only in last-in, first-out order)."""
    global _RUNS, _INSTALLED
    with _RUNS_LOCK:
        if _RUNS == 0:
            stack = contextlib.ExitStack()
            try:
                for name in NBGRADER_SPEEDUPS:
                    if enabled(name):
                        stack.enter_context(SPEEDUPS[name].patch())
            except BaseException:
                stack.close()
                raise
            _INSTALLED = stack
        _RUNS += 1
    try:
        yield
    finally:
        with _RUNS_LOCK:
            _RUNS -= 1
            if _RUNS == 0 and _INSTALLED is not None:
                installed, _INSTALLED = _INSTALLED, None
                installed.close()
