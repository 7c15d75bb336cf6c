"""What a type checker concludes about a generic repository, computed at runtime.

    class Repository(Generic[ModelT]):
        async def get(self, id: int) -> ModelT | None: ...
    class AccountRepository(Repository[Account]): ...

    resolved_return(AccountRepository, "get")   # -> Account | None   (typing.Optional[Account])
    type_name(resolved_return(AccountRepository, "get"))   # 'Account | None'

`resolved_return` reads the method's annotations (`typing.get_type_hints`) and
replaces each type variable by what the class's generic bases bind it to
(`Repository[Account]` binds ModelT to Account), which is the substitution
mypy or pyright perform. A type variable no base binds stays in the result: a
checker would treat it as `Any` (for example `class R(Repository)` without
`[...]`); so does a method without a return annotation. Shared by lesson 02's demonstrations and its hidden tests.
"""

from __future__ import annotations

import types
import typing
from typing import Any, TypeVar

__all__ = ["type_arguments", "resolved_return", "type_name"]


def _substitute(tp: Any, mapping: dict[Any, Any]) -> Any:
    if isinstance(tp, TypeVar):
        return mapping.get(tp, tp)
    params = getattr(tp, "__parameters__", ())
    if params and not isinstance(tp, type):
        return tp[tuple(mapping.get(p, p) for p in params)]
    return tp


def type_arguments(cls: type) -> dict[Any, Any]:
    """Each type variable of `cls`'s generic ancestors -> the type it is bound to."""
    mapping: dict[Any, Any] = {}
    for klass in reversed(cls.__mro__):  # bases first, so subclasses' bindings win
        for base in klass.__dict__.get("__orig_bases__", ()):
            origin = typing.get_origin(base)
            args = typing.get_args(base)
            params = getattr(origin, "__parameters__", ())
            for param, arg in zip(params, args, strict=False):
                mapping[param] = _substitute(arg, mapping)
    return mapping


def resolved_return(cls: type, method: str) -> Any:
    """The return type of `cls.method` with the class's type arguments filled in."""
    function = getattr(cls, method)
    hints = typing.get_type_hints(function)
    if "return" not in hints:  # unannotated: a checker assumes Any
        return Any
    return _substitute(hints["return"], type_arguments(cls))


def type_name(tp: Any) -> str:
    """`Account | None`, `list[Transfer]`, `~ModelT | None`: short, as a reader writes it."""
    if tp is type(None) or tp is None:
        return "None"
    if isinstance(tp, TypeVar):
        return f"~{tp.__name__}"
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Union or origin is types.UnionType:
        return " | ".join(type_name(a) for a in args)
    if origin is not None and args:
        name = getattr(origin, "__name__", str(origin))
        return f"{name}[{', '.join(type_name(a) for a in args)}]"
    if tp is Any:
        return "Any"
    return getattr(tp, "__name__", str(tp))
