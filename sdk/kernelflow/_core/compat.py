"""Whether one declared type may feed another, judged before anything runs.

When a ``@workflow`` is traced, every edge joins an output's declared type to an
input's. :func:`is_compatible` refuses only clear mismatches, so that a wrong
edge fails when the workflow is defined rather than when it runs; what it cannot
judge is left to :func:`kernelflow._core.typecheck.check_value` at run time.
"""

from __future__ import annotations

import typing
from typing import Any, Literal, get_args, get_origin

from kernelflow._core.typecheck import check_value, is_anything, unwrap
from kernelflow._core.typenames import NONE_TYPE, UNIONS
from kernelflow._core.validators import validator_for

__all__ = ["is_compatible"]


def is_compatible(source: object, target: object) -> bool:
    """May an output declared ``source`` feed an input declared ``target``?

    Used when a workflow is defined, before anything runs, so it only refuses
    clear mismatches; anything it cannot judge (unknown typing forms, ``Any``,
    ``object``) passes and is left to the check of the value at run time.
    """
    source, target = unwrap(source), unwrap(target)
    if _same(source, target) or is_anything(source) or is_anything(target):
        return True
    if get_origin(source) in UNIONS:
        return all(is_compatible(member, target) for member in get_args(source))
    if get_origin(target) in UNIONS:
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
    if validator_for(t_origin) or validator_for(s_origin):  # a pandera DataFrame[Schema]
        # A plain frame feeds it and back; its validator judges the value at run time.
        return issubclass(s_origin, t_origin) or issubclass(t_origin, s_origin)
    if not _class_compatible(s_origin, t_origin):
        return False
    if is_namedtuple(s_origin) and t_origin is tuple:
        s_args = tuple(namedtuple_fields(s_origin).values())
    if not s_args or not t_args:
        return True  # a bare list feeds list[T] and back: the value check decides
    if t_origin is tuple or s_origin is tuple:
        return _tuple_args_compatible(s_args, t_args)
    if len(s_args) != len(t_args):
        return True
    return all(_arg_compatible(s, t) for s, t in zip(s_args, t_args))


def _is_none(tp: object) -> bool:
    return tp is None or tp is NONE_TYPE


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
    if hasattr(target, "__kernelflow_adapt__") or hasattr(source, "__kernelflow_convert_to__"):
        return True  # a path feeds a FlyteFile, a dataset a DataFrame (kernelflow._core.adapt)
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


def is_namedtuple(tp: object) -> bool:
    return isinstance(tp, type) and issubclass(tp, tuple) and hasattr(tp, "_fields")


def namedtuple_fields(cls: type) -> dict[str, Any]:
    try:
        hints = typing.get_type_hints(cls, include_extras=True)
    except NameError:  # a forward reference that cannot be resolved: keep it as text
        hints = dict(getattr(cls, "__annotations__", {}))
    return {name: hints.get(name, Any) for name in cls._fields}  # type: ignore[attr-defined]
