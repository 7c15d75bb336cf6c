"""Three costs nbgrader pays again and again when one process grades a whole class.

Stock `nbgrader autograde` grades each submission once per process lifetime, so
neither matters there; our grader keeps nbgrader's own converter and
preprocessors for every submission of a run, in one process, and then they do:

* **A new SQLAlchemy engine per `Gradebook`.** nbgrader opens a `Gradebook` in
  almost every step (about ten per submission) and each one calls
  `create_engine`. SQLAlchemy caches compiled SQL *per engine*, so every query
  nbgrader makes is compiled from scratch each time: ~5 ms of a ~7 ms
  `Gradebook()`. `reuse_gradebook_engines` hands nbgrader the same engine for the
  same URL, and keeps its pool until the run ends: `Gradebook.close()` would
  dispose it, and every SQLite connection opened anew re-reads the schema
  before its first query. An idle pooled connection holds no lock, so other
  processes (formgrader) write the file as before; the SQLite file is still
  written by one thread, and stock nbgrader processes are not touched.
* **The gradebook's tables checked on every `Gradebook`.** Each one also runs
  `Base.metadata.create_all`, which asks SQLite about each of its 13 tables
  (13 PRAGMA round trips, ~2 ms) although the first `Gradebook` of the run has
  made them. `make_tables_once` lets that happen once per URL per run; a URL
  not seen yet, or a call with other arguments, gets the stock `create_all`.
* **The cell metadata schema validated on every cell.** nbgrader's
  `CheckCellMetadata` calls `jsonschema.validate(metadata, schema)`, which first
  checks the *schema* against its meta-schema — 2 ms per cell, twice per
  submission. `validate_schema_once` gives nbgrader's validator a stand-in for the
  `jsonschema` module whose `validate` checks each schema once and then only the
  instances; the errors raised are jsonschema's own, chosen the same way
  (`best_match`).

All are context managers that undo themselves, so they apply for one grading
run only (and tests can compare against stock behaviour in the same process).
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from typing import Any


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
    """While active, every nbgrader `Gradebook` for one URL shares one engine."""
    import nbgrader.api

    original = nbgrader.api.create_engine
    cache = _EngineCache(original)
    nbgrader.api.create_engine = cache
    try:
        yield cache
    finally:
        nbgrader.api.create_engine = original
        cache.dispose_all()


class _SchemaCheckedOnce:
    """Stands in for the `jsonschema` module inside nbgrader's metadata validator."""

    def __init__(self, module):
        self._module = module
        self._validators: dict[str, Any] = {}
        self._lock = threading.Lock()

    def validate(self, instance, schema, cls=None, *args: Any, **kwargs: Any) -> None:
        if cls is not None or args or kwargs:
            return self._module.validate(instance, schema, cls, *args, **kwargs)
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
    """While active, nbgrader checks its cell metadata schema once, not per cell."""
    import nbgrader.nbgraderformat.common as common

    original = common.jsonschema
    common.jsonschema = _SchemaCheckedOnce(original)
    try:
        yield
    finally:
        common.jsonschema = original


@contextlib.contextmanager
def make_tables_once() -> Iterator[set[str]]:
    """While active, nbgrader's `create_all` runs once per gradebook URL (yields those URLs)."""
    import nbgrader.api

    metadata = nbgrader.api.Base.metadata
    stock = metadata.create_all
    made: set[str] = set()
    lock = threading.Lock()

    def create_all(bind=None, tables=None, checkfirst=True):
        url = getattr(bind, "url", None)
        if url is None or tables is not None or not checkfirst:
            return stock(bind=bind, tables=tables, checkfirst=checkfirst)
        key = str(url)
        with lock:
            if key in made:
                return None
        stock(bind=bind, tables=tables, checkfirst=checkfirst)
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


_RUNS = 0  # grading runs in this process using the speedups now
_RUNS_LOCK = threading.Lock()
_INSTALLED: contextlib.ExitStack | None = None


@contextlib.contextmanager
def faster_nbgrader() -> Iterator[None]:
    """All three, for as long as any grading run in this process is active. Runs that overlap
    need not end in the order they started: the first to start installs them and the last to
    end removes them (each one alone undoes itself only in last-in, first-out order)."""
    global _RUNS, _INSTALLED
    with _RUNS_LOCK:
        if _RUNS == 0:
            stack = contextlib.ExitStack()
            try:
                for speedup in (reuse_gradebook_engines(), make_tables_once(), validate_schema_once()):
                    stack.enter_context(speedup)
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
