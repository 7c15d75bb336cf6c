"""Notice a submission that tampers with the grader before it can fake a pass.

Hidden tests run in the same process as the submission, so a submission can try
to make a failing test look passed: replace `Verdict.require`, the course's
checks, IPython's error reporting, the runner, or the libraries the checks read
the database through (asyncpg, SQLAlchemy, httpx), rebind a name the test uses
(`require_that = lambda *a, **k: None`), or install a trace function that skips
lines. A test cell passes only if it ran to the end without an error, so each of
those would otherwise earn points.

`Baseline` records, once in the fork server before any submission exists, the
behaviour in those modules and in their classes and bases: each callable, class,
module and descriptor (an lru_cache or a partial included), each function's code,
defaults and closure (the function inside a staticmethod, classmethod or property
included), each class's bases and size. In the child, `watching()` adds the
grader's own live objects (the runner, the shell and what a test cell runs
through), and `remember()` notes which names of the notebook are bound to the
grader's objects. Before and after each graded cell the runner asks `unchanged()`;
anything replaced means the cell is not trusted: it scores zero, and so does every
cell after it. New module attributes are allowed (lazy imports add them); new
class attributes are not (`Verdict.__getattr__ = ...`).

What keeps the check itself out of reach:

* it compares identities (`is`), never `==`, which a replacement could answer
  however it likes, and it holds a reference to everything it recorded, so no
  recorded object is freed and its address handed to a fake;
* its state is one tuple of tuples, and the check a plain function that reads no
  global name, not even a builtin (it carries its own `all`, `map`, `is_`...), and
  calls nothing that runs code of the objects it looks at, so rebinding `BASELINE`,
  `Baseline.unchanged`, an attribute of the baseline or of the runner, or
  `builtins.all` changes nothing it computes;
* the grader takes the check, its code object and the state into local variables
  before any submission code runs (executor.py `_child_main`, kernel.py
  `CellRunner.guarded`), and compares the check's code before every call.

This raises the bar; it is not a proof. What is still possible, known:

* ctypes, the gc and frame inspection reach everything: the state, the runner's
  local variables, the pipe to the parent and the nonce of the message it answers;
* a change made and undone within one test cell is not seen, the checks run before
  and after it: the learner's function, called by the test, can swap a check for a
  fake that puts the original back as soon as it has been called;
* the check runs no code of what it inspects but for one case: a key with a
  crafted hash put in a watched module's namespace gets its `__eq__` called when
  the check looks a name up there;
* behaviour reached through data is not recorded: module-level instances
  (`json._default_decoder`), objects made at run time (an engine, a session), modules
  outside `WATCHED_PREFIXES`, and the notebook's own variables a test relies on
  (`engine`, the learner's classes): rebinding those is the learner's right.

The sandbox keeps such code from reaching the gradebook, other submissions or
the network, so the worst it can do is lie about its own grade — which is what
this module makes hard and visible.
"""

from __future__ import annotations

import builtins
import copyreg
import functools
import itertools
import operator
import sys
import types
from collections.abc import Iterable
from typing import Any

# Modules the checks and the runner depend on: replacing anything in them can fake a verdict.
WATCHED_PREFIXES = (
    "autograder",
    "asyncpg",
    "httpx",
    "IPython.core",
    "sqlalchemy.engine",
    "sqlalchemy.event",
    "sqlalchemy.ext.asyncio",
    "sqlalchemy.orm.session",
    "sqlalchemy.orm.events",
    "sqlalchemy.pool",
    "starlette.testclient",
    "asgi_lifespan",
    "inspect",
    "traceback",
    "linecache",
    "signal",
    # the standard library the checks compute their verdicts with
    "json",
    "re",
    "time",
    "functools",
    "operator",
    "itertools",
    "collections",
    "contextlib",
    "dataclasses",
    "decimal",
    "urllib.parse",
    "ast",
    "codeop",
)
ALWAYS = ("builtins", "asyncio", "asyncio.events", "asyncio.tasks", "sys", "os")
# The SQLAlchemy names the checks import when they run (`from sqlalchemy import select, func,
# inspect, text`...): these modules' names and the functions they lead to, not their classes.
# All of SQLAlchemy would triple the check's time (measured: 8.6 -> 26.9 ms a check), and its
# classes grow attributes as they are first used (`_generated_cache_key_traversal`).
NAMES_ONLY = (
    "sqlalchemy",
    "sqlalchemy.orm",
    "sqlalchemy.sql",
    "sqlalchemy.exc",
    "sqlalchemy.util",
    "sqlalchemy.inspection",
    "sqlalchemy.sql.expression",
    "sqlalchemy.sql.functions",
    "sqlalchemy.orm.exc",
)
# What IPython sets and restores around every cell (sys.displayhook; exit and quit, hidden while a
# cell runs): not the grader's to pin, and a cell stopped by its deadline leaves them as they were.
_UNWATCHED = {
    "sys": ("displayhook", "excepthook", "breakpointhook", "unraisablehook"),
    "builtins": ("exit", "quit", "get_ipython", "display"),
}

# Behaviour lives in callables, classes, modules and descriptors; module-level data (caches,
# counters, the current event loop policy, sys.stdout) changes legitimately.
_DESCRIPTORS = (
    types.ModuleType,
    property,
    staticmethod,
    classmethod,
    types.GetSetDescriptorType,
    types.MemberDescriptorType,
)
_LRU_CACHE_WRAPPER = type(functools.lru_cache()(len))
_IMMUTABLE_TYPE = 1 << 8  # Py_TPFLAGS_IMMUTABLETYPE: builtin and most C types cannot be changed
_MRO = type.__dict__["__mro__"].__get__  # reads the class's own MRO, whatever its metaclass says
_ATTRIBUTE_NAMES = (
    "__mro__",
    "__dict__",
    "__code__",
    "__defaults__",
    "__kwdefaults__",
    "cell_contents",
    "func",
    "args",
    "keywords",
)
_WHAT_CHANGED = {
    "__mro__": "the base classes of {} were changed",
    "__dict__": "the namespace of {} was replaced",
    "__code__": "the code of {} was replaced",
    "__defaults__": "the defaults of {} were replaced",
    "__kwdefaults__": "the keyword defaults of {} were replaced",
    "cell_contents": "a function {} calls through its closure was replaced",
    "func": "the function behind {} was replaced",
    "args": "the arguments bound by {} were replaced",
    "keywords": "the arguments bound by {} were replaced",
}
_MISSING = object()


def _watched(name: str) -> bool:
    return name in ALWAYS or any(name == p or name.startswith(p + ".") for p in WATCHED_PREFIXES)


def _is_behaviour(value: Any) -> bool:
    """Callables, classes, modules and descriptors (a trait, a cached property): what runs."""
    return callable(value) or isinstance(value, _DESCRIPTORS) or hasattr(type(value), "__get__")


def _methods(cls: type) -> set[str]:
    """Names a method of `cls` (or of a base) answers to: an instance attribute must not shadow them."""
    return {
        name
        for klass in cls.__mro__[:-1]
        for name, value in vars(klass).items()
        if isinstance(value, (types.FunctionType, staticmethod, classmethod))
        or (callable(value) and not isinstance(value, type))
    }


class _Records:
    """What the baseline holds, as lists while it is being built (`freeze()` makes the state)."""

    def __init__(self) -> None:
        self.typed: list[tuple[Any, type, str]] = []  # objects whose class must stay the same
        self.entries: list[tuple[Any, str, Any, str]] = []  # (mapping, key, value, label)
        self.classes: list[tuple[Any, int, frozenset[Any], str]] = []  # (class __dict__, size, keys, label)
        self.attributes: dict[str, list[tuple[Any, Any, str]]] = {name: [] for name in _ATTRIBUTE_NAMES}
        self.instances: list[tuple[Any, frozenset[str], tuple[Any, ...], tuple[Any, ...], str]] = []
        self._seen_functions: set[int] = set()
        self._seen_classes: set[int] = set()
        self._frozen: tuple[Any, ...] | None = None
        self._labelled: tuple[Any, ...] | None = None

    # -- what is recorded

    def module(self, name: str, module: types.ModuleType, classes: bool = True) -> None:
        self.typed.append((module, type(module), f"the module {name}"))
        self.entries.append((sys.modules, name, module, f"sys.modules[{name!r}]"))
        self.namespace(vars(module), name, _UNWATCHED.get(name, ()), classes)

    def namespace(self, mapping: Any, label: str, skip: tuple[str, ...] = (), classes: bool = True) -> None:
        for key, value in list(mapping.items()):
            if not _is_behaviour(value) or key in skip:
                continue
            self.entries.append((mapping, key, value, f"{label}.{key}"))
            self.behaviour(value, f"{label}.{key}")
            if classes and isinstance(value, type) and _watched(getattr(value, "__module__", "") or ""):
                self.cls(value)

    def cls(self, cls: type) -> None:
        """A watched class and its bases: an attribute added to a base reaches every instance."""
        for klass in _MRO(cls):
            if id(klass) in self._seen_classes or klass.__flags__ & _IMMUTABLE_TYPE:
                continue
            self._seen_classes.add(id(klass))
            label = f"{getattr(klass, '__module__', '?')}.{getattr(klass, '__qualname__', klass.__name__)}"
            if "__slotnames__" not in klass.__dict__:  # copy/pickle cache it on first use: cache it now
                try:
                    copyreg._slotnames(klass)  # type: ignore[attr-defined]  # private: what copy and pickle call
                except Exception:  # noqa: BLE001 - a class that cannot say: it is left as it is
                    pass
            proxy = klass.__dict__
            self.classes.append((proxy, len(proxy), frozenset(proxy), label))
            self.attributes["__mro__"].append((klass, _MRO(klass), label))
            self.namespace(proxy, label)

    def behaviour(self, value: Any, label: str) -> None:
        """The functions behind `value`, whatever wraps them (a method, a property, a cache...)."""
        kind = type(value)
        if kind is types.FunctionType:
            self.function(value, label)
        elif kind in (staticmethod, classmethod, types.MethodType):
            self.behaviour(value.__func__, label)
        elif kind is property:
            for accessor in (value.fget, value.fset, value.fdel):
                if accessor is not None:
                    self.behaviour(accessor, label)
        elif kind is functools.partial:  # __setstate__ can rebind all three in place
            for name in ("func", "args", "keywords"):
                self.attributes[name].append((value, getattr(value, name), label))
            self.items(value.keywords, label, "bound argument")
            self.behaviour(value.func, label)
        elif kind is _LRU_CACHE_WRAPPER:  # the cached function is `__wrapped__`; its code can be swapped
            self.behaviour(vars(value).get("__wrapped__"), label)

    def function(self, function: types.FunctionType, label: str) -> None:
        if id(function) in self._seen_functions:
            return
        self._seen_functions.add(id(function))
        for name in ("__code__", "__defaults__", "__kwdefaults__"):
            self.attributes[name].append((function, getattr(function, name), label))
        if function.__kwdefaults__:
            self.items(function.__kwdefaults__, label, "keyword default")
        for cell in function.__closure__ or ():
            try:
                contents = cell.cell_contents
            except ValueError:  # not filled yet
                continue
            if _is_behaviour(contents):  # a decorator's wrapped function, a captured helper
                self.attributes["cell_contents"].append((cell, contents, label))
                self.behaviour(contents, label)

    def items(self, mapping: dict[Any, Any], label: str, what: str) -> None:
        """Every item of a small dict that can be edited in place rather than replaced."""
        for key, value in mapping.items():
            self.entries.append((mapping, key, value, f"the {what} {key} of {label}"))

    def instance(self, obj: Any, label: str, pinned: Iterable[str] = (), forbidden: Iterable[str] = ()) -> None:
        """A live object of the grader: its class, no attribute shadowing a method (or named in
        `forbidden`), the attributes named in `pinned` kept."""
        cls = type(obj)
        self.typed.append((obj, cls, f"the {label}"))
        self.cls(cls)
        if isinstance(obj, types.ModuleType):  # its namespace: the dict itself is what is kept
            self.attributes["__dict__"].append((obj, vars(obj), f"the {label}"))
            return
        attributes = object.__getattribute__(obj, "__dict__")
        methods, pinned = _methods(cls), set(pinned)
        kept = [name for name in attributes if name in methods or name in pinned]
        self.instances.append(
            (
                obj,
                frozenset((methods | set(forbidden)) - set(attributes)),
                tuple(kept),
                tuple(attributes[name] for name in kept),
                label,
            )
        )

    def entry(self, mapping: Any, key: str, label: str) -> None:
        self.entries.append((mapping, key, mapping[key], label))

    # -- the immutable form

    def freeze(self) -> tuple[Any, ...]:
        """Plain tuples only: nothing a submission can rebind or clear, nothing it can free.
        Made once: the child reuses the fork server's."""
        if self._frozen is None:
            self._frozen = self._freeze()
        return self._frozen

    def labelled(self) -> tuple[Any, ...]:
        """The same records with their labels, as tuples, for `describe` (made once too)."""
        if self._labelled is None:
            self._labelled = (
                tuple(self.typed),
                tuple(self.classes),
                tuple(self.entries),
                tuple((name, tuple(group)) for name, group in self.attributes.items() if group),
                tuple(self.instances),
            )
        return self._labelled

    def _freeze(self) -> tuple[Any, ...]:
        typed = tuple(self.typed)
        entries = tuple(self.entries)
        attributes = tuple(
            (
                _MRO if name == "__mro__" else operator.attrgetter(name),
                tuple(o for o, _, _ in group),
                tuple(v for _, v, _ in group),
            )
            for name, group in self.attributes.items()
            if group
        )
        return (
            tuple(o for o, _, _ in typed),
            tuple(t for _, t, _ in typed),
            tuple(m for m, _, _, _ in entries),
            tuple(k for _, k, _, _ in entries),
            tuple(v for _, _, v, _ in entries),
            tuple(p for p, _, _, _ in self.classes),
            tuple(n for _, n, _, _ in self.classes),
            attributes,
            tuple((o, f, n, v) for o, f, n, v, _ in self.instances),
        )


# What `unchanged` calls, taken now: a submission rebinding builtins.all or operator.is_ later
# changes nothing here.
_TOOLS = (
    sys.gettrace,
    sys.getprofile,
    all,
    map,
    operator.is_,
    operator.eq,
    operator.getitem,
    type,
    len,
    itertools.repeat,
    object.__getattribute__,
    frozenset.isdisjoint,
    str,
    dict,
    callable,
    id,
    _MISSING,
)


def unchanged(
    state: tuple[Any, ...], namespace: Any = None, names: tuple[Any, ...] = (), bindings: Any = None, whole: bool = True
) -> bool:
    """True when nothing recorded was replaced (`whole`) and, with `namespace`, no name in
    `names` rebound: one bound to a grader's object (see `remember`) must still be, and a
    builtin's name must not be taken by another callable.

    Reads nothing but its arguments, and calls only what `state` carries: builtins and C
    functions that run no code of the objects they look at (dict lookups on exact dicts
    with exact-str keys, `type()`, the class's own `__mro__` and `__dict__` slots).
    Anything raised — a deleted key, an emptied cell — counts as a change.
    """
    (
        (
            gettrace,
            getprofile,
            all_,
            map_,
            is_,
            eq,
            getitem,
            type_,
            len_,
            repeat,
            generic_getattr,
            isdisjoint,
            str_,
            dict_,
            callable_,
            _,
            missing,
        ),
        chunks,
    ) = state
    try:
        if whole and (gettrace() is not None or getprofile() is not None):
            return False
        # The fork server's records, then the child's (see `watching`). In each, classes come
        # first: what follows reads attributes, and a class swapped under an object could
        # answer those reads with code of its own.
        for typed, types_, mappings, keys, values, proxies, sizes, attributes, instances in chunks if whole else ():
            if not all_(map_(is_, map_(type_, typed), types_)) or not all_(map_(eq, map_(len_, proxies), sizes)):
                return False
            if not all_(map_(is_, map_(getitem, mappings, keys), values)):
                return False
            for getter, objects, expected in attributes:
                if not all_(map_(is_, map_(getter, objects), expected)):
                    return False
            for instance, forbidden, pinned_names, pinned in instances:
                attributes_of = generic_getattr(instance, "__dict__")
                if type_(attributes_of) is not dict_ or not all_(map_(is_, map_(type_, attributes_of), repeat(str_))):
                    return False
                if not isdisjoint(forbidden, attributes_of):
                    return False
                if not all_(map_(is_, map_(getitem, repeat(attributes_of), pinned_names), pinned)):
                    return False
        if namespace is not None:
            if type_(namespace) is not dict_ or not all_(map_(is_, map_(type_, namespace), repeat(str_))):
                return False
            grader_names, builtin_names, _, live_builtins = bindings
            for name in names:
                value = namespace.get(name, missing)
                if value is missing:
                    # The test finds it in the built-ins (the runner puts the real module in
                    # the namespace's __builtins__): it must be the built-in it was, and a
                    # name added there since is the submission's, serving the test.
                    value = live_builtins.get(name, missing)
                    if value is not missing and value is not builtin_names.get(name, missing):
                        return False
                    continue
                expected = grader_names.get(name, missing)
                if expected is missing:
                    expected = builtin_names.get(name, missing)
                    if expected is missing or not callable_(value):
                        continue
                if value is not expected:
                    return False
        return True
    except:  # noqa: E722 - a bare except: even the name of an exception class is looked up at run time
        return False


def remember(state: tuple[Any, ...], namespace: dict[str, Any], bindings: tuple[Any, ...]) -> None:
    """After a cell: note the names bound to the grader's objects (`from autograder.teaching
    import require_that`), so a later rebinding of one that a test uses is caught."""
    (_, _, all_, map_, is_, _, _, type_, _, repeat, _, _, str_, dict_, _, id_, _), _ = state
    grader_names, _, grader_ids, _ = bindings
    try:
        if type_(namespace) is not dict_ or not all_(map_(is_, map_(type_, namespace), repeat(str_))):
            return
        for name, value in namespace.items():
            if id_(value) in grader_ids and name not in grader_names:
                grader_names[name] = value
    except:  # noqa: E722 - a namespace that cannot be read is caught by the next check
        return


class Baseline:
    """Identities of the grader's and the checks' building blocks, taken before any submission."""

    def __init__(self, _chunks: tuple[_Records, ...] | None = None) -> None:
        if _chunks is None:
            records = _Records()
            # sys.modules may hold what is not a module (None blocks an import)
            loaded: Iterable[tuple[str, object]] = sorted(sys.modules.items())
            for name, module in loaded:
                if isinstance(module, types.ModuleType) and _watched(name):
                    records.module(name, module)
                elif isinstance(module, types.ModuleType) and name in NAMES_ONLY:
                    records.module(name, module, classes=False)
            self._grader_ids = frozenset(map(id, (value for _, _, value, _ in records.entries)))
            _chunks = (records,)
        self._chunks = _chunks
        self.state = (_TOOLS, tuple(records.freeze() for records in _chunks))
        self._labelled = tuple(records.labelled() for records in _chunks)
        self.size = sum(len(records.entries) for records in _chunks)

    def watching(
        self, *, instances: Iterable[tuple[Any, ...]] = (), entries: Iterable[tuple[Any, str, str]] = ()
    ) -> Baseline:
        """A baseline that also watches the grader's live objects, made in the child before any
        submission code runs: `instances` are (object, label[, attributes to keep[, attribute
        names that must not appear]]), `entries` (mapping, key, label) whose value is kept.
        The fork server's records are shared, not copied: only the new ones are frozen here."""
        base = self._chunks[0]
        records = _Records()
        records._seen_functions, records._seen_classes = set(base._seen_functions), set(base._seen_classes)
        for obj, label, *rest in instances:
            records.instance(obj, label, *rest)
        for mapping, key, label in entries:
            records.entry(mapping, key, label)
        watching = Baseline((*self._chunks, records))
        watching._grader_ids = self._grader_ids
        return watching

    def bindings(
        self, namespace: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any], frozenset[int], dict[str, Any]]:
        """The state `remember()` fills and `unchanged()` reads for a notebook's namespace: the
        names bound to the grader's objects now (IPython's `get_ipython`, `exit`...), the builtins
        as they are now (a test calling `len` must get the builtin), the ids of every recorded
        object, and the live built-ins' namespace (where a name missing from the notebook's is
        looked up: nothing may be added there for a test to find)."""
        grader_names = {name: value for name, value in namespace.items() if callable(value)}
        return grader_names, dict(vars(builtins)), self._grader_ids, vars(builtins)

    def unchanged(self) -> bool:
        return unchanged(self.state)

    def function_ids(self) -> set[int]:
        """The ids of every function whose code is recorded (kept alive by the records)."""
        return {id(function) for records in self._chunks for function, _, _ in records.attributes["__code__"]}

    def guard(self) -> tuple[Any, ...]:
        """What the runner checks with, as one tuple taken before any submission code runs:
        the check and its code (compared before each call), `remember` and its code, the
        state, and what names the changes once the check failed (bound to this baseline's
        records now; it is trusted for the message only, never for the verdict)."""
        return (
            unchanged,
            unchanged.__code__,
            remember,
            remember.__code__,
            self.state,
            functools.partial(describe, self._labelled),
        )

    def changes(
        self, namespace: Any = None, names: tuple[Any, ...] = (), bindings: Any = None, limit: int = 5
    ) -> list[str]:
        """What was replaced since the baseline, named (empty when nothing was)."""
        if unchanged(self.state, namespace, names, bindings, True):
            return []
        return describe(self._labelled, namespace, names, bindings, limit)

    def _find(self, namespace: Any = None, names: tuple[Any, ...] = (), bindings: Any = None) -> list[str]:
        return _find(self._labelled, namespace, names, bindings)


def describe(
    chunks: tuple[tuple[Any, ...], ...],
    namespace: Any = None,
    names: tuple[Any, ...] = (),
    bindings: Any = None,
    limit: int = 5,
) -> list[str]:
    """The changes `unchanged` saw, named, and never empty: it is only asked once something was."""
    try:
        found = _find(chunks, namespace, names, bindings)
    except Exception:  # noqa: BLE001 - a grader state too broken to describe is still a change
        found = []
    return found[:limit] or ["the grader's state was changed"]


def _find(chunks: tuple[tuple[Any, ...], ...], namespace: Any, names: tuple[Any, ...], bindings: Any) -> list[str]:
    """Every record compared one by one (the slow path: it may use anything)."""
    found: list[str] = []
    if sys.gettrace() is not None:
        found.append("a trace function is installed (sys.settrace)")
    if sys.getprofile() is not None:
        found.append("a profile function is installed (sys.setprofile)")
    for labelled in chunks:
        found += _describe_records(*labelled)
    return found + _describe_names(namespace, names, bindings)


def _describe_records(
    typed: tuple[Any, ...],
    classes: tuple[Any, ...],
    entries: tuple[Any, ...],
    attributes: tuple[Any, ...],
    instances: tuple[Any, ...],
) -> list[str]:
    found: list[str] = []
    for obj, cls, label in typed:
        if type(obj) is not cls:
            found.append(f"{label} was given another class")
    for proxy, _, keys, label in classes:
        found += [f"{label}.{key} was added" for key in sorted(set(proxy) - keys, key=str)]
    for mapping, key, value, label in entries:
        now = mapping.get(key, _MISSING) if isinstance(mapping, (dict, types.MappingProxyType)) else _MISSING
        if mapping is sys.modules:
            if now is not value:
                found.append(f"the module {key} was replaced in sys.modules")
        elif now is _MISSING:
            found.append(f"{label} was deleted")
        elif now is not value:
            found.append(f"{label} was replaced")
    for name, group in attributes:
        read = _MRO if name == "__mro__" else operator.attrgetter(name)
        for obj, value, label in group:
            try:
                now = read(obj)
            except Exception:  # noqa: BLE001 - an attribute the submission made unreadable counts as changed
                now = _MISSING
            if now is not value:
                found.append(_WHAT_CHANGED[name].format(label))
    for obj, forbidden, pinned_names, pinned, label in instances:
        try:
            own: Any = object.__getattribute__(obj, "__dict__")
        except Exception:  # noqa: BLE001 - whatever the submission made __dict__ raise is reported
            found.append(f"the {label}'s attributes cannot be read")
            continue
        if type(own) is not dict or not all(type(key) is str for key in list(own)):
            found.append(f"the {label} was given an attribute that is not a name")
            continue
        found += [f"the {label}'s {key} was overridden" for key in own if key in forbidden]
        found += [
            f"the {label}'s {key} was replaced"
            for key, value in zip(pinned_names, pinned, strict=True)
            if own.get(key, _MISSING) is not value
        ]
    return found


def _describe_names(namespace: Any, names: tuple[Any, ...], bindings: Any) -> list[str]:
    found: list[str] = []
    if not isinstance(namespace, dict) or bindings is None:
        return found
    if not all(type(key) is str for key in list(namespace)):
        return ["the notebook's namespace was given a key that is not a name"]
    grader_names, builtin_names, _, live_builtins = bindings
    for name in names:
        value = namespace.get(name, _MISSING)
        if value is _MISSING:
            now = live_builtins.get(name, _MISSING)
            if now is not _MISSING and now is not builtin_names.get(name, _MISSING):
                found.append(
                    f"the built-in {name}, which this test uses, was "
                    + ("added" if name not in builtin_names else "replaced")
                    + " by the submission"
                )
            continue
        if name in grader_names:
            if value is not grader_names[name]:
                found.append(f"the notebook rebinds {name}, which this test uses")
        elif name in builtin_names and callable(value) and value is not builtin_names[name]:
            found.append(f"the notebook shadows the built-in {name}, which this test uses")
    return found


def _refuse(
    event: str,
    args: tuple[Any, ...],
    protected: frozenset[int] = frozenset(),
    setattr_event: str = "object.__setattr__",
    add_hook_event: str = "sys.addaudithook",
    contains: Any = frozenset.__contains__,
    id_: Any = id,
    error: Any = PermissionError,
) -> None:
    """An audit hook: the interpreter calls it before an audited action, and an exception stops
    the action. It refuses what the before/after check cannot see because it can be undone
    within one cell: a recorded function's code or defaults replaced (a fake that puts the
    original back after its own last call) and a new audit hook (one that swaps a check's
    code when the runner `exec`s the test). Everything it uses comes in as a default value:
    replacing its defaults is itself an audited attribute write, refused (it is protected)."""
    if event == setattr_event:
        if contains(protected, id_(args[0])):
            raise error(f"the grader refuses: {args[0]!r}'s {args[1]} belongs to the grader")
    elif event == add_hook_event:
        raise error("the grader refuses: an audit hook would see (and could change) the hidden tests")


def install_refusals(baseline: Baseline) -> None:
    """Install `_refuse` for this process (once, in the submission's process before its first
    cell: an audit hook cannot be removed). Protects every function the baseline recorded and
    the hook itself."""
    hook = types.FunctionType(_refuse.__code__, {}, "_refuse", None, None)
    protected = frozenset(baseline.function_ids() | {id(hook), id(_refuse), id(install_refusals)})
    hook.__defaults__ = (protected, *(_refuse.__defaults__ or ())[1:])
    sys.addaudithook(hook)


BASELINE: Baseline | None = None


def take_baseline() -> Baseline:
    """Called once in the fork server, after the preloads; children inherit it."""
    global BASELINE
    BASELINE = Baseline()
    return BASELINE
