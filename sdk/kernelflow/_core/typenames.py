"""How declared types and found values are named in messages.

Every error about a type reads the same wherever it is raised (a workflow edge,
a task output, a ``-p`` parameter) because all of them name the declared type
with :func:`type_name` and what was found with :func:`describe_value`. Version
hashes use :func:`type_name` too, so a type's name must not depend on how it
was imported. The small constants shared by the type modules (:mod:`typecheck`,
:mod:`compat`, :mod:`params_text`, :mod:`interface`) live here, at the bottom of
their imports.

pandas and NumPy are never imported: their classes are recognised by module and
name.
"""

from __future__ import annotations

import collections.abc as cabc
import inspect
import types
import typing
from typing import Annotated, Any, ForwardRef, Literal, TypeVar, Union, get_args, get_origin

__all__ = ["describe_value", "type_name"]

EMPTY = inspect.Parameter.empty
NONE_TYPE = type(None)
UNIONS = (Union, types.UnionType)
_PREFIXED_MODULES = ("numpy", "pandas", "datetime", "pathlib", "decimal", "uuid", "fractions")
_MAX_REPR = 60
BARE_TUPLE = typing.Tuple  # noqa: UP006  (bare Tuple and tuple[()] both have no args)


def type_name(tp: object) -> str:
    """A declared type as a user would write it, for messages and version hashes."""
    if tp is None or tp is NONE_TYPE:
        return "None"
    if tp is Any or tp is EMPTY:
        return "Any"
    if isinstance(tp, str):
        return tp
    if isinstance(tp, ForwardRef):
        return tp.__forward_arg__
    if isinstance(tp, (TypeVar, typing.NewType)):
        return tp.__name__
    if isinstance(tp, (tuple, list)):
        inner = ", ".join(type_name(item) for item in tp)
        return f"({inner})" if isinstance(tp, tuple) else f"[{inner}]"
    if tp is Ellipsis:
        return "..."
    origin, args = get_origin(tp), get_args(tp)
    if origin is None:
        return _class_name(tp) if isinstance(tp, type) else repr(tp)
    return _generic_name(tp, origin, args)


def _class_name(cls: type) -> str:
    module = cls.__module__.split(".")[0]
    if cls.__module__ == "builtins":
        return cls.__qualname__
    if module in _PREFIXED_MODULES:
        return f"{module}.{cls.__qualname__}"
    return cls.__qualname__


def _generic_name(tp: object, origin: object, args: tuple[Any, ...]) -> str:
    if origin is Annotated:
        # A Schema's repr is part of the name. It is recognised by a marker, not
        # imported: typecheck, where Schema lives, imports this module.
        base, meta = tp.__origin__, tp.__metadata__  # type: ignore[attr-defined]
        if len(meta) == 1 and getattr(meta[0], "names_its_column_types", False):
            return f"{getattr(base, '__name__', type_name(base))}[{meta[0]!r}]"
        return f"Annotated[{type_name(base)}, {', '.join(map(repr, meta))}]"
    if origin in UNIONS:
        members = [m for m in args if m is not NONE_TYPE]
        if len(members) == 1 and len(args) == 2:
            return f"Optional[{type_name(members[0])}]"
        return " | ".join(type_name(m) for m in args)
    if origin is Literal:
        return f"Literal[{', '.join(map(repr, args))}]"
    if is_ndarray(origin):
        scalar = ndarray_scalar(args)
        return f"numpy.ndarray[{type_name(scalar)}]" if scalar else "numpy.ndarray"
    if origin is cabc.Callable and len(args) == 2:
        return f"Callable[{type_name(args[0])}, {type_name(args[1])}]"
    head = type_name(origin) if isinstance(origin, type) else repr(origin).replace("typing.", "")
    if origin is tuple and not args and tp is not BARE_TUPLE:
        return "tuple[()]"
    return f"{head}[{', '.join(type_name(a) for a in args)}]" if args else head


def describe_value(value: object) -> str:
    """What was found, in a few words: ``"str 'abc'"``, ``"list of 3 items"``."""
    cls = type(value)
    if value is None:
        return "None"
    if cls in (bool, int, float, complex, str, bytes):
        return f"{cls.__name__} {short_repr(value)}"
    module = cls.__module__.split(".")[0]
    if module == "pandas" and hasattr(value, "columns"):
        return f"{_class_name(cls)} with columns {_short_list(list(value.columns))}"  # type: ignore[attr-defined]
    if module in ("pandas", "numpy") and hasattr(value, "dtype") and hasattr(value, "shape"):
        shape = value.shape  # type: ignore[attr-defined]
        if shape == ():
            return f"{_class_name(cls)} {value}"
        return f"{_class_name(cls)} of dtype {value.dtype} and shape {shape}"  # type: ignore[attr-defined]
    if isinstance(value, (list, tuple, set, frozenset, dict)) and not hasattr(value, "_fields"):
        count = len(value)
        return f"{_class_name(cls)} of {count} item{'' if count == 1 else 's'}"
    if isinstance(value, type):
        return f"class {type_name(value)}"
    if inspect.isroutine(value):
        return f"function {getattr(value, '__qualname__', repr(value))}"
    text = short_repr(value)
    if text.startswith("<"):
        return f"{_class_name(cls)} object"
    return text if text.startswith(cls.__name__ + "(") else f"{_class_name(cls)} {text}"


def short_repr(value: object) -> str:
    if isinstance(value, (str, bytes)) and len(value) > _MAX_REPR:
        value = value[:_MAX_REPR]
    try:
        text = repr(value)
    except Exception:  # a broken __repr__ must not hide the real error
        return "<unprintable>"
    return text if len(text) <= _MAX_REPR else text[: _MAX_REPR - 3] + "..."


def _short_list(items: list[Any], limit: int = 8) -> str:
    if len(items) <= limit:
        return repr(items)
    return f"[{', '.join(map(repr, items[:limit]))}, ... {len(items) - limit} more]"


def is_ndarray(origin: object) -> bool:
    module, name = getattr(origin, "__module__", ""), getattr(origin, "__name__", "")
    return module == "numpy" and name == "ndarray"


def ndarray_scalar(args: tuple[Any, ...]) -> type | None:
    """The scalar type of ``NDArray[np.float64]``, or None when it says nothing."""
    dtype_args = get_args(args[1]) if len(args) == 2 else ()
    scalar = dtype_args[0] if dtype_args else None
    return scalar if isinstance(scalar, type) else None
