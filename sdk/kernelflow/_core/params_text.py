"""Typed values from command-line text: ``kernelflow run ... -p NAME VALUE``.

A parameter's text is parsed by its declared type, never evaluated, so passing a
parameter cannot run code; and when the text does not fit, the error says how to
write a value of that type on the command line.

A parameter without a declared type (``x = None`` in a parameters cell, ``Any``)
is parsed as papermill's ``-p`` parses every value (``True``/``False``/``None``,
then an int, a float, else the text), so that ``kernelflow run nb.ipynb -p x
False`` and ``papermill`` on the exported notebook give the task the same value.
"""

from __future__ import annotations

import collections.abc as cabc
import datetime
import enum
import json
import pathlib
from typing import Any, Literal, get_args, get_origin

from kernelflow._core.errors import ParameterError
from kernelflow._core.typecheck import COLLECTION_MODULES, check_value, is_anything, unwrap
from kernelflow._core.typenames import NONE_TYPE, UNIONS, short_repr, type_name

__all__ = ["parse_parameter"]

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
        f"parameter {name!r} expects {expected}, got {short_repr(text)}{detail}",
        fix=_parameter_fix(name, unwrap(tp)),
        parameter=name,
        expected=expected,
        actual=text,
        problem=problem,
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
    if origin in UNIONS:
        members = [m for m in args if m is not NONE_TYPE]
        fix = _parameter_fix(name, unwrap(members[0])) if len(members) == 1 else None
        fix = fix or f"pass a value that reads as {type_name(tp)}"
        return f"{fix}; or none" if NONE_TYPE in args else fix
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
    if not (isinstance(container, type) and container.__module__ in COLLECTION_MODULES):
        return None
    if issubclass(container, cabc.Mapping):
        return f"pass a JSON object, e.g. -p {name} '{{\"a\": 1}}'"
    if issubclass(container, cabc.Collection):
        return f"pass a JSON array, e.g. -p {name} '[1, 2]'"
    return None


def _parse(text: str, tp: object) -> object:
    tp = unwrap(tp)
    origin = get_origin(tp)
    if is_anything(tp):
        return _like_papermill(text)
    if tp is str:
        return text
    if tp is None or tp is NONE_TYPE:
        if text.strip().lower() in _NULL:
            return None
        raise ValueError(text)
    if origin in UNIONS:
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
    if NONE_TYPE in members and text.strip().lower() in _NULL:
        return None
    for member in members:
        if member is NONE_TYPE:
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


_PAPERMILL_WORDS: dict[str, object] = {"True": True, "False": False, "None": None}


def _like_papermill(text: str) -> object:
    """What papermill's ``-p`` makes of ``text`` (its ``cli._resolve_type``), for untyped values.

    Papermill is the other way the same notebook runs, so an untyped parameter
    must not be a bool there and a string here. Only these exact words, then
    ``int()``, then ``float()``; any other text (``true``, ``[1, 2]``) stays text,
    as it does in papermill: a declared type is how to ask for more.
    """
    if text in _PAPERMILL_WORDS:
        return _PAPERMILL_WORDS[text]
    for number in (int, float):
        try:
            return number(text)
        except ValueError:
            continue
    return text


def _json_or_text(text: str) -> object:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _coerce(value: object, tp: object) -> object:
    """Bring JSON's lists, string keys and ints to the declared containers and floats."""
    tp = unwrap(tp)
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
    if is_anything(tp) or tp is str:
        return key
    return _parse(key, tp)
