"""A declared type as JSON, so that a process without the workflow's code can parse for it.

A ``wait_for_input`` node records the type it expects when it starts waiting;
``kernelflow signal`` runs in another process, which never imports the workflow,
rebuilds the type from that record and parses the value before storing it. So a
wrong value is refused when it is sent, not found out by the waiting node.

Only types that command-line text is parsed to are described: scalars, dates,
paths, ``None``, ``Any``, unions, ``Literal`` of JSON values, enums (their member
names and values) and the standard containers of those. Any other type has no
description (:func:`describe_type` gives None): the value is then checked where
it is used, as before.
"""

from __future__ import annotations

import datetime
import enum
import json
import pathlib
from typing import Any, Literal, Union, get_args, get_origin

from kernelflow._core.typecheck import is_anything, unwrap
from kernelflow._core.typenames import NONE_TYPE, UNIONS

__all__ = ["describe_type", "rebuild_type"]

_SCALARS: dict[str, object] = {
    "int": int,
    "float": float,
    "bool": bool,
    "str": str,
    "None": NONE_TYPE,
    "date": datetime.date,
    "datetime": datetime.datetime,
    "time": datetime.time,
    "path": pathlib.Path,
}
_SCALAR_NAMES = {tp: name for name, tp in _SCALARS.items()}
_CONTAINERS: dict[str, type] = {
    "list": list,
    "set": set,
    "frozenset": frozenset,
    "tuple": tuple,
    "dict": dict,
}
_JSON_SCALARS = (str, int, float, bool, type(None))


class _NotDescribable(Exception):
    """Raised inside :func:`_describe` for a type text cannot be parsed to."""


def describe_type(tp: object) -> str | None:
    """``tp`` as JSON text that :func:`rebuild_type` turns back into an equivalent type.

    None when ``tp`` (or a part of it) has no description.
    """
    try:
        return json.dumps(_describe(tp))
    except _NotDescribable:
        return None


def rebuild_type(text: str | None) -> object | None:
    """The type :func:`describe_type` described; None for no (or an unreadable) description."""
    if not text:
        return None
    try:
        return _rebuild(json.loads(text))
    except (ValueError, KeyError, TypeError):
        return None


def _describe(tp: object) -> dict[str, Any]:
    tp = unwrap(tp)
    if tp is None:
        tp = NONE_TYPE
    if is_anything(tp):
        return {"t": "any"}
    if isinstance(tp, type) and tp in _SCALAR_NAMES:
        return {"t": _SCALAR_NAMES[tp]}
    if isinstance(tp, type) and issubclass(tp, pathlib.PurePath):
        return {"t": "path"}
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return _describe_enum(tp)
    origin, args = get_origin(tp), get_args(tp)
    if origin in UNIONS:
        return {"t": "union", "args": [_describe(arg) for arg in args]}
    if origin is Literal and all(isinstance(arg, _JSON_SCALARS) for arg in args):
        return {"t": "literal", "values": list(args)}
    container = origin if origin is not None else tp
    for name, cls in _CONTAINERS.items():
        if container is cls:
            return {"t": name, "args": [_describe_arg(arg) for arg in args]}
    raise _NotDescribable(tp)


def _describe_arg(arg: object) -> dict[str, Any]:
    return {"t": "..."} if arg is Ellipsis else _describe(arg)


def _describe_enum(cls: type[enum.Enum]) -> dict[str, Any]:
    members = [[member.name, member.value] for member in cls]
    if not all(isinstance(value, _JSON_SCALARS) for _, value in members):
        raise _NotDescribable(cls)
    return {"t": "enum", "name": cls.__name__, "members": members}


def _rebuild(spec: dict[str, Any]) -> Any:
    kind = spec["t"]
    if kind == "any":
        return Any
    if kind == "...":
        return Ellipsis
    if kind in _SCALARS:
        return _SCALARS[kind]
    if kind == "enum":  # same names and values: what parsing and messages need
        return enum.Enum(spec["name"], [(name, value) for name, value in spec["members"]])
    if kind == "literal":
        return Literal[tuple(spec["values"])]
    args = tuple(_rebuild(arg) for arg in spec["args"])
    if kind == "union":
        return Union[args]  # noqa: UP007  (a tuple of members, built at run time)
    container = _CONTAINERS[kind]
    if not args:
        return container
    return container[args] if kind in ("tuple", "dict") else container[args[0]]
