"""Typed interfaces: what a task takes and gives, and whether a value or a type fits.

Every front end meets here. ``@task``/``@workflow`` read a function's annotations
(:func:`interface_from_function`); the workflow tracer asks whether an output may
feed an input before anything runs (:func:`is_compatible`); the engine checks every
value a task produces (:func:`check_value`); the CLI turns ``-p NAME VALUE`` text
into typed values (:func:`parse_parameter`). Error messages are built from
:func:`type_name` and :func:`describe_value`, so they read the same everywhere.

pandas and NumPy are never imported by this module: DataFrame and array types reach
it only from code that imported their library already, and classes are recognised
by their module and name. (Only :class:`Schema` asks pandas to read a dtype name,
when pandas is loaded anyway.)
"""

from __future__ import annotations

import collections.abc as cabc
import datetime
import enum
import functools
import inspect
import json
import numbers
import pathlib
import sys
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, ForwardRef, Literal, TypeVar, Union, get_args, get_origin

from kernelflow.errors import DefinitionError, OutputTypeError, ParameterError, SignatureError

__all__ = [
    "Interface",
    "Schema",
    "check_value",
    "describe_value",
    "interface_from_function",
    "is_compatible",
    "parse_parameter",
    "type_name",
]

_EMPTY = inspect.Parameter.empty
_NONE_TYPE = type(None)
_UNIONS = (Union, types.UnionType)
_WRAPPERS = (typing.Final, typing.ClassVar, typing.Required, typing.NotRequired)
_COLLECTION_MODULES = ("builtins", "collections", "collections.abc", "typing")
_PREFIXED_MODULES = ("numpy", "pandas", "datetime", "pathlib", "decimal", "uuid", "fractions")
_MAX_REPR = 60
_BARE_TUPLE = typing.Tuple  # noqa: UP006  (bare Tuple and tuple[()] both have no args)

# --- Schema ---------------------------------------------------------------------

_KINDS: dict[type, str] = {
    object: "",
    float: "f",
    int: "iu",
    bool: "b",
    complex: "c",
    str: "OSU",
    bytes: "OS",
    datetime.datetime: "M",
    datetime.timedelta: "m",
}


class Schema:
    """Column/dtype contract for a DataFrame.

    Used as ``Annotated[pd.DataFrame, Schema(x=float, y="int64")]`` so that a frame
    with a missing column or a column of the wrong dtype is caught where it is
    produced, not three tasks later. A Python type matches a dtype *kind* (``int``
    matches int8..uint64 and nullable ``Int64``), a string is an exact dtype name.
    Extra columns are allowed: a schema states what consumers rely on.
    """

    __slots__ = ("columns",)

    def __init__(self, **columns: type | str) -> None:
        for name, want in columns.items():
            if not (_known_dtype(want) if isinstance(want, str) else want in _KINDS):
                raise DefinitionError(
                    f"Schema column {name!r} is declared {want!r}, which is not a dtype",
                    fix="use float, int, bool, str, datetime.datetime, object "
                    "or a dtype name such as 'int64' or 'category'",
                    variable=name,
                )
        self.columns: dict[str, type | str] = dict(columns)

    def problems(self, frame: object) -> list[str]:
        """Every way ``frame`` breaks the contract; ``[]`` when it keeps it."""
        if not (hasattr(frame, "columns") and hasattr(frame, "dtypes")):
            return [f"{describe_value(frame)} has no columns"]
        found: list[str] = []
        dtypes = frame.dtypes  # type: ignore[attr-defined]
        for name, want in self.columns.items():
            if name not in frame.columns:  # type: ignore[attr-defined]
                found.append(f"column {name!r} is missing")
                continue
            dtype = dtypes[name]
            if not hasattr(dtype, "kind"):
                found.append(f"column {name!r} appears more than once")
            elif not _dtype_matches(dtype, want):
                expected = want if isinstance(want, str) else want.__name__
                found.append(f"column {name!r} has dtype {dtype}, expected {expected}")
        return found

    def __repr__(self) -> str:
        parts = (
            f"{name}={want!r}" if isinstance(want, str) else f"{name}={type_name(want)}"
            for name, want in self.columns.items()
        )
        return f"Schema({', '.join(parts)})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Schema) and self.columns == other.columns

    def __hash__(self) -> int:
        return hash(tuple(self.columns.items()))


def _known_dtype(name: str) -> bool:
    """Whether pandas knows the dtype ``name``; a typo is caught at definition time."""
    if "pandas" not in sys.modules:
        return True  # cannot tell without importing pandas: the check at run time will
    from pandas.api.types import pandas_dtype

    try:
        pandas_dtype(name)
    except (TypeError, ValueError):
        return False
    return True


def _dtype_matches(dtype: Any, want: type | str) -> bool:
    if want is object:
        return True
    if not isinstance(want, str):
        return bool(dtype.kind) and dtype.kind in _KINDS[want]
    if str(dtype) == want:
        return True
    try:  # aliases such as "float" for float64; pandas is loaded since we hold a frame
        from pandas.api.types import pandas_dtype

        return bool(dtype == pandas_dtype(want))
    except (TypeError, ValueError, ImportError):
        return False


# --- names and descriptions -------------------------------------------------------


def type_name(tp: object) -> str:
    """A declared type as a user would write it, for messages and version hashes."""
    if tp is None or tp is _NONE_TYPE:
        return "None"
    if tp is Any or tp is _EMPTY:
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
        base, meta = tp.__origin__, tp.__metadata__  # type: ignore[attr-defined]
        if len(meta) == 1 and isinstance(meta[0], Schema):
            return f"{getattr(base, '__name__', type_name(base))}[{meta[0]!r}]"
        return f"Annotated[{type_name(base)}, {', '.join(map(repr, meta))}]"
    if origin in _UNIONS:
        members = [m for m in args if m is not _NONE_TYPE]
        if len(members) == 1 and len(args) == 2:
            return f"Optional[{type_name(members[0])}]"
        return " | ".join(type_name(m) for m in args)
    if origin is Literal:
        return f"Literal[{', '.join(map(repr, args))}]"
    if _is_ndarray(origin):
        scalar = _ndarray_scalar(args)
        return f"numpy.ndarray[{type_name(scalar)}]" if scalar else "numpy.ndarray"
    if origin is cabc.Callable and len(args) == 2:
        return f"Callable[{type_name(args[0])}, {type_name(args[1])}]"
    head = type_name(origin) if isinstance(origin, type) else repr(origin).replace("typing.", "")
    if origin is tuple and not args and tp is not _BARE_TUPLE:
        return "tuple[()]"
    return f"{head}[{', '.join(type_name(a) for a in args)}]" if args else head


def describe_value(value: object) -> str:
    """What was found, in a few words: ``"str 'abc'"``, ``"list of 3 items"``."""
    cls = type(value)
    if value is None:
        return "None"
    if cls in (bool, int, float, complex, str, bytes):
        return f"{cls.__name__} {_short_repr(value)}"
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
    text = _short_repr(value)
    if text.startswith("<"):
        return f"{_class_name(cls)} object"
    return text if text.startswith(cls.__name__ + "(") else f"{_class_name(cls)} {text}"


def _short_repr(value: object) -> str:
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


# --- checking values ---------------------------------------------------------------
#
# A declared type is compiled once into a checker: a function of the value that
# returns None when it conforms, else a mismatch (path, found), where path such as
# "[2]['a']" locates the culprit inside the value and found describes it. The
# engine checks every output of every task, so the checkers test exact classes
# first and fall back to the slower general rules only when that fails.

_Mismatch = tuple[str, str]
_Checker = Callable[[Any], "_Mismatch | None"]
_Entry = tuple[object, frozenset[type], _Checker]  # (type, classes that conform, checker)
_CHECKERS: dict[int, _Entry] = {}
_CHECKERS_LIMIT = 4096
_EXACT: dict[type, frozenset[type]] = {
    int: frozenset({int}),
    float: frozenset({float, int}),
    complex: frozenset({complex, float, int}),
    bool: frozenset({bool}),
}
_ABSTRACT: dict[type, type] = {int: numbers.Integral, float: numbers.Real, complex: numbers.Complex}


def check_value(value: object, tp: object) -> str | None:
    """None when ``value`` conforms to ``tp``, else what was found instead.

    Containers are checked item by item and the first bad item is named by its
    position, e.g. ``"list of 3 items whose item [2] is str 'x'"``. A bool is not
    accepted as a number (``n = x > 3`` is a bug more often than a count), while
    NumPy scalars are accepted as the Python numbers they stand for.
    """
    if type(value) is tp or tp is Any:
        return None
    entry = _CHECKERS.get(id(tp))
    if entry is None or entry[0] is not tp:
        entry = _entry(tp)
    if type(value) in entry[1]:
        return None
    mismatch = entry[2](value)
    return None if mismatch is None else _render(value, mismatch)


def _render(value: object, mismatch: _Mismatch) -> str:
    path, found = mismatch
    return f"{describe_value(value)} whose item {path} is {found}" if path else found


def _entry(tp: object) -> _Entry:
    """The compiled check for ``tp``, cached by identity: annotations live long."""
    entry = _CHECKERS.get(id(tp))
    if entry is not None and entry[0] is tp:
        return entry
    if len(_CHECKERS) >= _CHECKERS_LIMIT:  # types built on the fly must not pile up
        _CHECKERS.clear()
    entry = (tp, _exact_classes(tp), _compile(tp))
    _CHECKERS[id(tp)] = entry
    return entry


def _checker(tp: object) -> _Checker:
    return _entry(tp)[2]


def _exact_classes(tp: object) -> frozenset[type]:
    """Classes whose instances conform to ``tp`` without further checks: the fast path."""
    if tp is None or tp is _NONE_TYPE:
        return frozenset({_NONE_TYPE})
    if get_origin(tp) in _UNIONS:
        return frozenset().union(*(_exact_classes(member) for member in get_args(tp)))
    if isinstance(tp, type) and get_origin(tp) is None:
        return _EXACT.get(tp, frozenset({tp}))
    return frozenset()


def _accept(value: object) -> _Mismatch | None:
    return None


def _reject(value: object) -> _Mismatch:
    return "", describe_value(value)


def _check_none(value: object) -> _Mismatch | None:
    return None if value is None else _reject(value)


def _is_anything(tp: object) -> bool:
    return tp is Any or tp is object or tp is _EMPTY or isinstance(tp, (TypeVar, str, ForwardRef))


def _compile(tp: object) -> _Checker:
    if _is_anything(tp):
        return _accept
    if tp is None or tp is _NONE_TYPE:
        return _check_none
    origin = get_origin(tp)
    if origin is not None:
        return _compile_generic(tp, origin, get_args(tp))
    if hasattr(tp, "__supertype__"):  # typing.NewType
        return _checker(tp.__supertype__)  # type: ignore[attr-defined]
    return _compile_class(tp) if isinstance(tp, type) else _accept


def _compile_class(cls: type) -> _Checker:
    exact = _EXACT.get(cls, frozenset({cls}))

    def check(value: object) -> _Mismatch | None:
        if type(value) in exact or _is_instance(value, cls):
            return None
        return "", describe_value(value)

    return check


def _is_instance(value: object, cls: type) -> bool:
    """isinstance, except that bool is no number and NumPy scalars are."""
    if cls in _ABSTRACT:
        if isinstance(value, bool) or _is_numpy_bool(value):
            return False
        if isinstance(value, cls) or (cls is not int and isinstance(value, int)):
            return True
        return type(value).__module__ == "numpy" and isinstance(value, _ABSTRACT[cls])
    if cls is bool:
        return isinstance(value, bool) or _is_numpy_bool(value)
    try:
        return isinstance(value, cls)
    except TypeError:  # e.g. a Protocol that is not runtime-checkable: cannot tell
        return True


def _is_numpy_bool(value: object) -> bool:
    return type(value).__module__ == "numpy" and type(value).__name__ in ("bool", "bool_")


def _compile_generic(tp: object, origin: Any, args: tuple[Any, ...]) -> _Checker:
    if origin is Annotated:
        return _compile_annotated(tp)
    if origin in _UNIONS:
        return _compile_union(args)
    if origin is Literal:
        return _compile_literal(args)
    if origin in _WRAPPERS:
        return _checker(args[0]) if args else _accept
    if not isinstance(origin, type):
        return _accept  # a typing form we do not know: never a false alarm
    outer = _compile_class(origin)
    inner = _compile_contents(tp, origin, args)
    if inner is None:
        return outer

    def check(value: object) -> _Mismatch | None:
        return outer(value) or inner(value)

    return check


def _compile_contents(tp: object, origin: type, args: tuple[Any, ...]) -> _Checker | None:
    """The check of what a generic container holds, or None when it cannot be seen."""
    if not args:
        return _check_empty_tuple if origin is tuple and tp is not _BARE_TUPLE else None
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return _compile_items(args[0])
        return _compile_fixed_tuple(args)
    if origin is type:
        return functools.partial(_check_class, wanted=args[0])
    if _is_ndarray(origin):
        scalar = _ndarray_scalar(args)
        return None if scalar is None else functools.partial(_check_ndarray, scalar=scalar)
    if origin.__module__ not in _COLLECTION_MODULES or origin is cabc.Callable:
        return None
    if not issubclass(origin, cabc.Collection):
        return None  # an Iterable or Iterator: checking would consume it
    if issubclass(origin, cabc.Mapping):
        return _compile_mapping(args[0], args[1]) if len(args) == 2 else None
    return _compile_items(args[0]) if len(args) == 1 else None


def _compile_annotated(tp: Any) -> _Checker:
    base = _checker(tp.__origin__)
    schemas = [meta for meta in tp.__metadata__ if isinstance(meta, Schema)]
    if not schemas:
        return base

    def check(value: object) -> _Mismatch | None:
        mismatch = base(value)
        if mismatch is not None:
            return mismatch
        problems = [problem for schema in schemas for problem in schema.problems(value)]
        return ("", f"{describe_value(value)}: {'; '.join(problems)}") if problems else None

    return check


def _compile_union(members: tuple[Any, ...]) -> _Checker:
    checks = [_checker(member) for member in members]
    others = [m for m in members if m is not _NONE_TYPE]

    def check(value: object) -> _Mismatch | None:
        if any(c(value) is None for c in checks):
            return None
        if len(others) == 1:  # Optional[T]: say why the value is no T
            return _checker(others[0])(value)
        return "", describe_value(value)

    return check


def _compile_literal(choices: tuple[Any, ...]) -> _Checker:
    def check(value: object) -> _Mismatch | None:
        if any(type(value) is type(choice) and value == choice for choice in choices):
            return None
        return "", describe_value(value)

    return check


def _check_empty_tuple(value: tuple[Any, ...]) -> _Mismatch | None:
    return None if len(value) == 0 else _reject(value)


def _compile_fixed_tuple(args: tuple[Any, ...]) -> _Checker:
    checks = [_checker(arg) for arg in args]

    def check(value: tuple[Any, ...]) -> _Mismatch | None:
        if len(value) != len(args):
            return "", f"{describe_value(value)}, not {len(args)}"
        for index, (item, item_tp, item_check) in enumerate(zip(value, args, checks)):
            mismatch = None if type(item) is item_tp else item_check(item)
            if mismatch is not None:
                return f"[{index}]{mismatch[0]}", mismatch[1]
        return None

    return check


def _compile_items(item_tp: object) -> _Checker | None:
    if _is_anything(item_tp):
        return None
    _, item_exact, item_check = _entry(item_tp)

    def check(value: Any) -> _Mismatch | None:
        for index, item in enumerate(value):
            if type(item) in item_exact:
                continue
            mismatch = item_check(item)
            if mismatch is None:
                continue
            if isinstance(value, cabc.Sequence):
                return f"[{index}]{mismatch[0]}", mismatch[1]
            return "", f"{describe_value(value)} containing {_render(item, mismatch)}"
        return None

    return check


def _compile_mapping(key_tp: object, value_tp: object) -> _Checker:
    _, key_exact, key_check = _entry(key_tp)
    _, value_exact, value_check = _entry(value_tp)

    def check(value: Mapping[Any, Any]) -> _Mismatch | None:
        for key, item in value.items():
            mismatch = None if type(key) in key_exact else key_check(key)
            if mismatch is not None:
                return "", f"{describe_value(value)} with key {_render(key, mismatch)}"
            mismatch = None if type(item) in value_exact else value_check(item)
            if mismatch is not None:
                return f"[{_short_repr(key)}]{mismatch[0]}", mismatch[1]
        return None

    return check


def _check_class(value: object, *, wanted: object) -> _Mismatch | None:
    if not isinstance(value, type):
        return _reject(value)
    options = get_args(wanted) if get_origin(wanted) in _UNIONS else (wanted,)
    if any(not isinstance(w, type) or issubclass(value, w) for w in options):
        return None
    return _reject(value)


def _is_ndarray(origin: object) -> bool:
    module, name = getattr(origin, "__module__", ""), getattr(origin, "__name__", "")
    return module == "numpy" and name == "ndarray"


def _ndarray_scalar(args: tuple[Any, ...]) -> type | None:
    """The scalar type of ``NDArray[np.float64]``, or None when it says nothing."""
    dtype_args = get_args(args[1]) if len(args) == 2 else ()
    scalar = dtype_args[0] if dtype_args else None
    return scalar if isinstance(scalar, type) else None


def _check_ndarray(value: Any, *, scalar: type) -> _Mismatch | None:
    return None if issubclass(value.dtype.type, scalar) else _reject(value)


# --- comparing declared types -------------------------------------------------------


def is_compatible(source: object, target: object) -> bool:
    """May an output declared ``source`` feed an input declared ``target``?

    Used when a workflow is defined, before anything runs, so it only refuses
    clear mismatches; anything it cannot judge (unknown typing forms, ``Any``,
    ``object``) passes and is left to the check of the value at run time.
    """
    source, target = _unwrap(source), _unwrap(target)
    if _same(source, target) or _is_anything(source) or _is_anything(target):
        return True
    if get_origin(source) in _UNIONS:
        return all(is_compatible(member, target) for member in get_args(source))
    if get_origin(target) in _UNIONS:
        return any(is_compatible(source, member) for member in get_args(target))
    if _is_none(source) or _is_none(target):
        return _is_none(source) and _is_none(target)
    if get_origin(source) is Literal:
        return all(check_value(item, target) is None for item in get_args(source))
    if get_origin(target) is Literal:
        return any(is_compatible(source, type(item)) for item in get_args(target))
    s_origin, s_args = _class_and_args(source)
    t_origin, t_args = _class_and_args(target)
    if not (isinstance(s_origin, type) and isinstance(t_origin, type)):
        return True
    if not _class_compatible(s_origin, t_origin):
        return False
    if _is_namedtuple(s_origin) and t_origin is tuple:
        s_args = tuple(_namedtuple_fields(s_origin).values())
    if not s_args or not t_args:
        return True  # a bare list feeds list[T] and back: the value check decides
    if t_origin is tuple or s_origin is tuple:
        return _tuple_args_compatible(s_args, t_args)
    if len(s_args) != len(t_args):
        return True
    return all(_arg_compatible(s, t) for s, t in zip(s_args, t_args))


def _unwrap(tp: object) -> object:
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = tp.__origin__  # type: ignore[attr-defined]
        elif origin in _WRAPPERS and get_args(tp):
            tp = get_args(tp)[0]
        elif hasattr(tp, "__supertype__"):
            tp = tp.__supertype__  # type: ignore[attr-defined]
        else:
            return tp


def _is_none(tp: object) -> bool:
    return tp is None or tp is _NONE_TYPE


def _same(a: object, b: object) -> bool:
    try:
        return bool(a == b)
    except Exception:
        return a is b


def _class_and_args(tp: object) -> tuple[object, tuple[Any, ...]]:
    origin = get_origin(tp)
    return (tp, ()) if origin is None else (origin, get_args(tp))


def _class_compatible(source: type, target: type) -> bool:
    if source is bool and target in (int, float, complex):
        return False  # check_value refuses a bool where a number is expected
    if (target is float and source is int) or (target is complex and source in (int, float)):
        return True
    try:
        return issubclass(source, target)
    except TypeError:
        return True


def _arg_compatible(source: object, target: object) -> bool:
    if isinstance(source, (list, tuple)) or isinstance(target, (list, tuple)):
        return True  # Callable parameter lists and the like: not judged here
    if source is Ellipsis or target is Ellipsis:
        return True
    return is_compatible(source, target)


def _tuple_args_compatible(source: tuple[Any, ...], target: tuple[Any, ...]) -> bool:
    s_open = len(source) == 2 and source[1] is Ellipsis
    t_open = len(target) == 2 and target[1] is Ellipsis
    if t_open:
        return all(is_compatible(item, target[0]) for item in (source[:1] if s_open else source))
    if s_open:
        return all(is_compatible(source[0], item) for item in target)
    return len(source) == len(target) and all(map(is_compatible, source, target))


def _is_namedtuple(tp: object) -> bool:
    return isinstance(tp, type) and issubclass(tp, tuple) and hasattr(tp, "_fields")


def _namedtuple_fields(cls: type) -> dict[str, Any]:
    try:
        hints = typing.get_type_hints(cls, include_extras=True)
    except NameError:  # a forward reference that cannot be resolved: keep it as text
        hints = dict(getattr(cls, "__annotations__", {}))
    return {name: hints.get(name, Any) for name in cls._fields}  # type: ignore[attr-defined]


# --- interfaces ------------------------------------------------------------------------

OutputKind = Literal["none", "single", "tuple", "namedtuple"]


@dataclass(frozen=True)
class Interface:
    """Named, typed inputs and outputs of a task or workflow.

    Outputs are named ``o0, o1, ...`` (as in Flyte) unless a ``typing.NamedTuple``
    names them; ``output_kind`` remembers how the Python function returns them, so
    that :meth:`pack` and :meth:`unpack` translate between the function's return
    value and the engine's dict of outputs by name.
    """

    inputs: Mapping[str, object]
    outputs: Mapping[str, object]
    defaults: Mapping[str, object]
    output_kind: OutputKind
    namedtuple_type: type | None = None

    def pack(self, values: Mapping[str, object]) -> object:
        """The outputs by name as the function would have returned them."""
        if self.output_kind == "none":
            return None
        ordered = [values[name] for name in self.outputs]
        if self.output_kind == "single":
            return ordered[0]
        if self.output_kind == "namedtuple" and self.namedtuple_type is not None:
            return self.namedtuple_type(*ordered)
        return tuple(ordered)

    def unpack(self, result: object, *, owner: str) -> dict[str, object]:
        """The function's return value as outputs by name; its shape is checked here."""
        names = list(self.outputs)
        if self.output_kind == "none":
            if result is not None:
                raise _output_error(owner, "None", describe_value(result))
            return {}
        if self.output_kind == "single":
            return {names[0]: result}
        if self.output_kind == "namedtuple" and len(names) == 1 and not isinstance(result, tuple):
            # Flyte: a task with a one-field NamedTuple may return the bare value.
            return {names[0]: result}
        if not isinstance(result, tuple) or len(result) != len(names):
            expected = f"a tuple of {len(names)} values ({', '.join(names)})"
            raise _output_error(owner, expected, describe_value(result))
        return dict(zip(names, result))


def _output_error(owner: str, expected: str, actual: str) -> OutputTypeError:
    return OutputTypeError(
        f"task {owner!r} should return {expected}, but returned {actual}",
        fix="return exactly what the return annotation declares",
        task=owner,
        expected=expected,
        actual=actual,
    )


def interface_from_function(fn: Callable[..., object], *, kind: str = "task") -> Interface:
    """Read a task's or workflow's interface from its signature and annotations.

    Every parameter and the return value must be annotated: the annotations are
    what the engine checks and what edges are matched by, so a missing one is an
    error at definition time rather than a silent ``Any``.
    """
    name = getattr(fn, "__name__", repr(fn))
    hints = _type_hints(fn, kind, name)
    inputs: dict[str, object] = {}
    defaults: dict[str, object] = {}
    for param in inspect.signature(fn).parameters.values():
        inputs[param.name] = _parameter_type(param, hints, kind, name)
        if param.default is not _EMPTY:
            _check_default(param, inputs[param.name], kind, name)
            defaults[param.name] = param.default
    if "return" not in hints:
        raise SignatureError(
            f"{kind} {name!r} has no return annotation",
            fix=f"annotate it, e.g. `def {name}(...) -> float` (or `-> None`)",
            **{kind: name},
        )
    outputs, output_kind, nt_type = _outputs(hints["return"])
    return Interface(inputs, outputs, defaults, output_kind, nt_type)


def _type_hints(fn: Callable[..., object], kind: str, name: str) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn, include_extras=True)
    except NameError as error:  # a string annotation naming something not importable
        raise SignatureError(
            f"{kind} {name!r} has an annotation that cannot be resolved: {error}",
            fix="import the types used in annotations at module level",
            **{kind: name},
        ) from error


def _parameter_type(param: inspect.Parameter, hints: dict[str, Any], kind: str, name: str) -> Any:
    if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD, param.POSITIONAL_ONLY):
        star = {param.VAR_POSITIONAL: "*", param.VAR_KEYWORD: "**"}.get(param.kind, "")
        raise SignatureError(
            f"{kind} {name!r} declares {star}{param.name}"
            f"{' (positional-only)' if not star else ''}, but {kind}s take named "
            "keyword arguments only",
            fix=f"declare each input as a named, annotated parameter, e.g. "
            f"`def {name}(x: int) -> float`",
            variable=param.name,
            **{kind: name},
        )
    if param.name not in hints:
        raise SignatureError(
            f"{kind} {name!r} has no type annotation for parameter {param.name!r}",
            fix=f"annotate it, e.g. `def {name}({param.name}: int) -> float`",
            variable=param.name,
            **{kind: name},
        )
    return hints[param.name]


def _check_default(param: inspect.Parameter, tp: object, kind: str, name: str) -> None:
    problem = check_value(param.default, tp)
    if problem is not None:
        raise SignatureError(
            f"{kind} {name!r}: the default of parameter {param.name!r} is {problem}, "
            f"which is no {type_name(tp)}",
            fix=f"change the default or the annotation (e.g. `Optional[{type_name(tp)}]`)",
            variable=param.name,
            expected=type_name(tp),
            actual=problem,
            **{kind: name},
        )


def _outputs(tp: object) -> tuple[dict[str, object], OutputKind, type | None]:
    if tp is None or tp is _NONE_TYPE:
        return {}, "none", None
    if _is_namedtuple(tp):
        return _namedtuple_fields(tp), "namedtuple", tp  # type: ignore[arg-type, return-value]
    args = get_args(tp)
    if get_origin(tp) is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
        return {f"o{i}": arg for i, arg in enumerate(args)}, "tuple", None
    return {"o0": tp}, "single", None


# --- parsing command-line parameters -----------------------------------------------------

_TRUE = ("true", "yes", "1")
_FALSE = ("false", "no", "0")
_NULL = ("none", "null")


def parse_parameter(name: str, text: str, tp: object) -> object:
    """Turn the text of ``-p NAME VALUE`` into a value of the declared type.

    Text is parsed by the type, never evaluated, so a parameter cannot run code.
    Containers are JSON (``-p xs '[1, 2]'``); the result is checked with
    :func:`check_value`, so what comes back always conforms to ``tp``.
    """
    try:
        value = _parse(text, tp)
    except (ValueError, TypeError, OverflowError, RecursionError) as error:
        raise _parameter_error(name, text, tp, None) from error
    problem = check_value(value, tp)
    if problem is not None:
        raise _parameter_error(name, text, tp, problem)
    return value


def _parameter_error(name: str, text: str, tp: object, problem: str | None) -> ParameterError:
    expected = type_name(tp)
    detail = f" ({problem})" if problem else ""
    return ParameterError(
        f"parameter {name!r} expects {expected}, got {_short_repr(text)}{detail}",
        fix=_parameter_fix(name, _unwrap(tp)),
        parameter=name,
        expected=expected,
        actual=text,
    )


_EXAMPLES: dict[object, str] = {
    int: "a whole number, e.g. -p {name} 3",
    float: "a number, e.g. -p {name} 0.5",
    bool: "true or false (yes/no, 1/0), e.g. -p {name} true",
    datetime.date: "an ISO date, e.g. -p {name} 2024-01-31",
    datetime.datetime: "an ISO date and time, e.g. -p {name} 2024-01-31T12:00:00",
}


def _parameter_fix(name: str, tp: object) -> str:
    """How to write a value of ``tp`` on the command line."""
    origin, args = get_origin(tp), get_args(tp)
    if origin in _UNIONS:
        members = [m for m in args if m is not _NONE_TYPE]
        fix = _parameter_fix(name, _unwrap(members[0])) if len(members) == 1 else None
        fix = fix or f"pass a value that reads as {type_name(tp)}"
        return f"{fix}; or none" if _NONE_TYPE in args else fix
    if origin is Literal:
        return f"pass one of: {', '.join(str(choice) for choice in args)}"
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return f"pass one of: {', '.join(member.name for member in tp)}"
    if tp in _EXAMPLES:
        return "pass " + _EXAMPLES[tp].format(name=name)
    container = origin if isinstance(origin, type) else tp
    return _json_fix(name, container) or (
        f"{type_name(tp)} cannot be written on the command line; pass it from Python: "
        f"kernelflow.run(target, params={{{name!r}: ...}})"
    )


def _json_fix(name: str, container: object) -> str | None:
    if not (isinstance(container, type) and container.__module__ in _COLLECTION_MODULES):
        return None
    if issubclass(container, cabc.Mapping):
        return f"pass a JSON object, e.g. -p {name} '{{\"a\": 1}}'"
    if issubclass(container, cabc.Collection):
        return f"pass a JSON array, e.g. -p {name} '[1, 2]'"
    return None


def _parse(text: str, tp: object) -> object:
    tp = _unwrap(tp)
    origin = get_origin(tp)
    if _is_anything(tp):
        return _json_or_text(text)
    if tp is str:
        return text
    if tp is None or tp is _NONE_TYPE:
        if text.strip().lower() in _NULL:
            return None
        raise ValueError(text)
    if origin in _UNIONS:
        return _parse_union(text, get_args(tp))
    if origin is Literal:
        return _parse_literal(text, get_args(tp))
    if tp in (int, float, bool):
        return _parse_scalar(text, tp)  # type: ignore[arg-type]
    if isinstance(tp, type) and issubclass(tp, (datetime.date, datetime.time)):
        return tp.fromisoformat(text.strip())  # type: ignore[attr-defined]
    if isinstance(tp, type) and issubclass(tp, pathlib.PurePath):
        return tp(text)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return _parse_enum(text, tp)
    return _coerce(_json_or_text(text), tp)


def _parse_scalar(text: str, tp: type) -> object:
    if tp is bool:
        word = text.strip().lower()
        if word in _TRUE or word in _FALSE:
            return word in _TRUE
        raise ValueError(text)
    return tp(text)


def _parse_union(text: str, members: tuple[Any, ...]) -> object:
    if _NONE_TYPE in members and text.strip().lower() in _NULL:
        return None
    for member in members:
        if member is _NONE_TYPE:
            continue
        try:
            value = _parse(text, member)
        except (ValueError, TypeError, OverflowError, RecursionError):
            continue
        if check_value(value, member) is None:
            return value
    raise ValueError(text)


def _parse_literal(text: str, choices: tuple[Any, ...]) -> object:
    for choice in choices:
        if text == str(getattr(choice, "value", choice)) or text == getattr(choice, "name", None):
            return choice
    raise ValueError(text)


def _parse_enum(text: str, cls: type[enum.Enum]) -> object:
    for member in cls:
        if text in (member.name, str(member.value)):
            return member
    raise ValueError(text)


def _json_or_text(text: str) -> object:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _coerce(value: object, tp: object) -> object:
    """Bring JSON's lists, string keys and ints to the declared containers and floats."""
    tp = _unwrap(tp)
    origin, args = get_origin(tp) or tp, get_args(tp)
    if tp is float and type(value) is int:
        return float(value)
    if isinstance(value, dict) and isinstance(origin, type) and issubclass(origin, cabc.Mapping):
        key_tp, value_tp = args if len(args) == 2 else (Any, Any)
        return {_coerce_key(k, key_tp): _coerce(v, value_tp) for k, v in value.items()}
    if not isinstance(value, list) or not isinstance(origin, type):
        return value
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            args = (args[0],) * len(value)
        return tuple([_coerce(v, t) for v, t in zip(value, args)] + value[len(args) :])
    item_tp = args[0] if len(args) == 1 else Any
    items = [_coerce(item, item_tp) for item in value]
    if issubclass(origin, (set, frozenset)) or origin is cabc.Set:
        return frozenset(items) if origin is frozenset else set(items)
    return items


def _coerce_key(key: str, tp: object) -> object:
    if _is_anything(tp) or tp is str:
        return key
    return _parse(key, tp)
