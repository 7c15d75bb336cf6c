"""Notice a submission that tampers with the grader before it can fake a pass.

Hidden tests run in the same process as the submission, so a submission can try
to make a failing test look passed: replace `Verdict.require`, the course's
checks, IPython's error reporting, the runner, or the libraries the checks read
the database through (asyncpg, SQLAlchemy, httpx), or install a trace function
that skips lines. A test cell passes only if it ran to the end without an error,
so each of those would otherwise earn points.

`Baseline` records, once in the fork server before any submission exists, the
identity of every attribute of those modules and classes (and every function's
code object). Before and after each graded cell the runner calls `changes()`;
anything replaced means the cell is not trusted: it scores zero, and so does
every cell after it. Additions are allowed (lazy imports add attributes);
replacements are not.

This raises the bar; it is not a proof. Code running in the same process can in
principle reach anything (ctypes, the gc). The sandbox keeps such code from
reaching the gradebook, other submissions or the network, so the worst it can do
is lie about its own grade — which is what this module makes hard and visible.
"""

from __future__ import annotations

import builtins
import operator
import sys
import types
from typing import Any

# Modules the checks depend on: replacing anything in them can fake a verdict.
WATCHED_PREFIXES = (
    "autograder", "asyncpg", "httpx", "IPython.core", "sqlalchemy.engine", "sqlalchemy.event",
    "sqlalchemy.ext.asyncio", "sqlalchemy.orm.session", "sqlalchemy.orm.events", "sqlalchemy.pool",
    "starlette.testclient", "asgi_lifespan", "inspect", "traceback", "linecache", "signal",
)
ALWAYS = ("builtins", "asyncio", "asyncio.events", "asyncio.tasks", "json")
# Behaviour lives in functions, classes and descriptors; module-level data (caches,
# counters, the current event loop policy, sys.stdout) changes legitimately.
_BEHAVIOUR = (types.FunctionType, types.BuiltinFunctionType, types.MethodType, type, staticmethod,
              classmethod, property, types.MethodDescriptorType, types.WrapperDescriptorType)


def _watched(name: str) -> bool:
    return name in ALWAYS or any(name == p or name.startswith(p + ".") for p in WATCHED_PREFIXES)


def _entries_of(namespace: dict[str, Any], label: str, out: dict[tuple[str, str], tuple[int, int | None]],
                seen_classes: set[int], views: list["_Namespace"] | None = None, live: Any = None) -> None:
    """Record the behaviour in `namespace` (a copy of `live`), recursing into watched classes.

    With `views`, also append a fast `_Namespace` view of each live namespace walked."""
    keys, values = [], []
    for key, value in list(namespace.items()):
        if not isinstance(value, _BEHAVIOUR):
            continue
        code = getattr(value, "__code__", None)
        out[(label, key)] = (id(value), id(code) if code is not None else None)
        keys.append(key)
        values.append(value)
        if isinstance(value, type) and id(value) not in seen_classes and _watched(getattr(value, "__module__", "") or ""):
            seen_classes.add(id(value))
            _entries_of(dict(value.__dict__), f"{value.__module__}.{value.__qualname__}", out, seen_classes,
                        views, value.__dict__)
    if views is not None and keys:
        views.append(_Namespace(live, keys, values))


class _Namespace:
    """One watched namespace (a module's dict or a class's), compared at C speed.

    The live mapping is kept, so a check is one `itemgetter` call for the values
    and one for their code objects, compared as lists of ids: identities, never
    `==`, which a replacement object could answer however it likes.
    """

    def __init__(self, mapping, keys: list[str], values: list[Any]):
        self.mapping = mapping
        self.get = operator.itemgetter(*keys)
        self.single = len(keys) == 1
        self.ids = [id(v) for v in values]
        with_code = [i for i, v in enumerate(values) if getattr(v, "__code__", None) is not None]
        self.get_functions = operator.itemgetter(*with_code) if with_code else None
        self.single_function = len(with_code) == 1
        self.code_ids = [id(values[i].__code__) for i in with_code]

    def unchanged(self) -> bool:
        try:
            values = self.get(self.mapping)
        except KeyError:  # deleted
            return False
        if self.single:
            values = (values,)
        if list(map(id, values)) != self.ids:
            return False
        if self.get_functions is None:
            return True
        functions = self.get_functions(values)  # the baseline's own objects: ids matched
        if self.single_function:
            functions = (functions,)
        return list(map(id, map(_CODE, functions))) == self.code_ids


_CODE = operator.attrgetter("__code__")


class Baseline:
    """Identities of the grader's and the checks' building blocks, taken before any submission."""

    def __init__(self) -> None:
        self.entries: dict[tuple[str, str], tuple[int, int | None]] = {}
        self.keep_alive: list[Any] = []  # ids are only meaningful while the objects live
        self.modules: dict[str, int] = {}
        self._namespaces: list[_Namespace] = []
        seen: set[int] = set()
        for name, module in sorted(sys.modules.items()):
            if module is None or not _watched(name):
                continue
            self.modules[name] = id(module)
            self.keep_alive.append(module)
            namespace = dict(vars(module))
            self.keep_alive.extend(namespace.values())
            _entries_of(namespace, name, self.entries, seen, self._namespaces, vars(module))
        self._module_names = list(self.modules)
        self._module_ids = list(self.modules.values())
        self._shell_methods: dict[type, set[str]] = {}

    def unchanged(self, shell: Any = None) -> bool:
        """Fast path of `changes()`: True when nothing watched was replaced (~1 ms)."""
        if sys.gettrace() is not None or sys.getprofile() is not None:
            return False
        modules = sys.modules
        if list(map(id, map(modules.get, self._module_names))) != self._module_ids:
            return False
        for namespace in self._namespaces:
            if not namespace.unchanged():
                return False
        return shell is None or not self._shell_overrides(shell)

    def _shell_overrides(self, shell: Any) -> list[str]:
        """Methods shadowed on the shell instance (get_ipython().run_cell = ...)."""
        cls = type(shell)
        methods = self._shell_methods.get(cls)
        if methods is None:
            methods = self._shell_methods[cls] = {
                name for name in dir(cls) if isinstance(getattr(cls, name, None), types.FunctionType)}
        return [f"the shell's {key} was overridden" for key, value in vars(shell).items()
                if key in methods and callable(value)]

    def changes(self, shell: Any = None, limit: int = 5) -> list[str]:
        """What was replaced since the baseline (empty when nothing was)."""
        if self.unchanged(shell):
            return []
        found: list[str] = []
        if sys.gettrace() is not None:
            found.append("a trace function is installed (sys.settrace)")
        if sys.getprofile() is not None:
            found.append("a profile function is installed (sys.setprofile)")
        for name, ident in self.modules.items():
            if id(sys.modules.get(name)) != ident:
                found.append(f"the module {name} was replaced in sys.modules")
        if len(found) >= limit:
            return found[:limit]
        current: dict[tuple[str, str], tuple[int, int | None]] = {}
        seen: set[int] = set()
        for name in self.modules:
            module = sys.modules.get(name)
            if isinstance(module, types.ModuleType):
                _entries_of(dict(vars(module)), name, current, seen)
        for key, (ident, code) in self.entries.items():
            now = current.get(key)
            if now is None:
                found.append(f"{key[0]}.{key[1]} was deleted")
            elif now[0] != ident:
                found.append(f"{key[0]}.{key[1]} was replaced")
            elif now[1] != code:
                found.append(f"the code of {key[0]}.{key[1]} was replaced")
            if len(found) >= limit:
                break
        if shell is not None and len(found) < limit:
            found += self._shell_overrides(shell)
        return found[:limit]


BASELINE: Baseline | None = None


def take_baseline() -> Baseline:
    """Called once in the fork server, after the preloads; children inherit it."""
    global BASELINE
    BASELINE = Baseline()
    return BASELINE
