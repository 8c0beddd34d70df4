"""Whether a value conforms to a declared type, and the :class:`Schema` of a DataFrame.

The engine checks every value a task produces, so a declared type is compiled
once into a checker and cached; checking the common cases (exact classes, lists
of scalars) costs little more than a dict lookup. :class:`Schema` lives here
because it is a check of values: ``Annotated[pd.DataFrame, Schema(...)]`` adds
its column rules to the frame's class check.

pandas and NumPy are never imported by this module: DataFrame and array types
reach it only from code that imported their library already, and classes are
recognised by their module and name. (Only :class:`Schema` asks pandas to read a
dtype name, when pandas is loaded anyway.)
"""

from __future__ import annotations

import collections.abc as cabc
import datetime
import functools
import numbers
import sys
import typing
from collections.abc import Callable, Mapping
from typing import Annotated, Any, ForwardRef, Literal, TypeVar, get_args, get_origin

from kernelflow._core.errors import DefinitionError
from kernelflow._core.typenames import (
    BARE_TUPLE,
    EMPTY,
    NONE_TYPE,
    UNIONS,
    describe_value,
    is_ndarray,
    ndarray_scalar,
    short_repr,
    type_name,
)
from kernelflow._core.validators import on_register, validator_for

__all__ = ["Schema", "check_value"]

_WRAPPERS = (typing.Final, typing.ClassVar, typing.Required, typing.NotRequired)
COLLECTION_MODULES = ("builtins", "collections", "collections.abc", "typing")

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
    # Read by typenames (which typecheck imports): a type's name shows its schema.
    names_its_column_types = True

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
    if tp is None or tp is NONE_TYPE:
        return frozenset({NONE_TYPE})
    if get_origin(tp) in UNIONS:
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


def is_anything(tp: object) -> bool:
    return tp is Any or tp is object or tp is EMPTY or isinstance(tp, (TypeVar, str, ForwardRef))


def _compile(tp: object) -> _Checker:
    if is_anything(tp):
        return _accept
    if tp is None or tp is NONE_TYPE:
        return _check_none
    origin = get_origin(tp)
    if origin is not None:
        return _compile_generic(tp, origin, get_args(tp))
    if hasattr(tp, "__supertype__"):  # typing.NewType
        return _checker(tp.__supertype__)  # type: ignore[attr-defined]
    return _compile_class(tp) if isinstance(tp, type) else _accept


def _compile_class(cls: type) -> _Checker:
    exact = _EXACT.get(cls, frozenset({cls}))
    accepts = getattr(cls, "__kernelflow_accepts__", None)  # see kernelflow._core.adapt
    if accepts is not None:

        def check_adapted(value: object) -> _Mismatch | None:
            return None if accepts(value) else ("", describe_value(value))

        return check_adapted

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
    if validator_for(origin) is not None:  # a plugin's type (kernelflow._core.validators)
        return _compile_validated(tp, tp)
    if origin in UNIONS:
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
        return _check_empty_tuple if origin is tuple and tp is not BARE_TUPLE else None
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return _compile_items(args[0])
        return _compile_fixed_tuple(args)
    if origin is type:
        return functools.partial(_check_class, wanted=args[0])
    if is_ndarray(origin):
        scalar = ndarray_scalar(args)
        return None if scalar is None else functools.partial(_check_ndarray, scalar=scalar)
    if origin.__module__ not in COLLECTION_MODULES or origin is cabc.Callable:
        return None
    if not issubclass(origin, cabc.Collection):
        return None  # an Iterable or Iterator: checking would consume it
    if issubclass(origin, cabc.Mapping):
        return _compile_mapping(args[0], args[1]) if len(args) == 2 else None
    return _compile_items(args[0]) if len(args) == 1 else None


def _compile_validated(tp: Any, declared: Any) -> _Checker:
    """The check of a type a plugin validates; ``declared`` keeps its ``Annotated`` options."""
    validator = validator_for(get_origin(tp))
    assert validator is not None

    def check(value: object) -> _Mismatch | None:
        problems = validator(value, declared)
        return ("", f"{describe_value(value)}: {'; '.join(problems)}") if problems else None

    return check


def _compile_annotated(tp: Any) -> _Checker:
    if validator_for(get_origin(tp.__origin__)) is not None:  # its metadata configures it
        return _compile_validated(tp.__origin__, tp)
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
    others = [m for m in members if m is not NONE_TYPE]

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
    if is_anything(item_tp):
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
                return f"[{short_repr(key)}]{mismatch[0]}", mismatch[1]
        return None

    return check


def _check_class(value: object, *, wanted: object) -> _Mismatch | None:
    if not isinstance(value, type):
        return _reject(value)
    options = get_args(wanted) if get_origin(wanted) in UNIONS else (wanted,)
    if any(not isinstance(w, type) or issubclass(value, w) for w in options):
        return None
    return _reject(value)


def _check_ndarray(value: Any, *, scalar: type) -> _Mismatch | None:
    return None if issubclass(value.dtype.type, scalar) else _reject(value)


# --- what a declared type stands for ------------------------------------------------


def unwrap(tp: object) -> object:
    """The type under ``Annotated``, ``Final``-like wrappers and ``NewType``.

    Comparing types (:mod:`compat`) and parsing parameters (:mod:`params_text`)
    both look through these wrappers; checking values compiles them instead.
    """
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


on_register(_CHECKERS.clear)  # a plugin's validator replaces checks compiled without it
