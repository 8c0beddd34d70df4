"""Values that a declared type takes in another form, converted where values enter a task.

Flyte lets a task declared ``-> FlyteFile`` return a plain path, and one declared
``-> StructuredDataset`` return a DataFrame. The core knows none of those types
(they live above it, in :mod:`kernelflow.types`); it knows a protocol instead:

- a class with ``__kernelflow_adapt__(value, declared)`` (a classmethod) turns a value
  given where it is declared into an instance (or returns the value unchanged);
- a value whose class has ``__kernelflow_convert_to__(declared)`` turns itself into
  another declared type (a StructuredDataset where a DataFrame is declared);
- ``__kernelflow_accepts__(value)`` tells the type check what the adapter takes;
- ``__kernelflow_hash__()`` gives the content hash (:mod:`kernelflow._core.hashing`);
- ``__kernelflow_persist__(root)`` returns a copy whose data lives in the store at
  ``root`` (an output file), and ``__kernelflow_verify__()`` raises IntegrityError
  when that copy is damaged (:mod:`kernelflow.engine.compute`).

A plugin's coercer (:func:`kernelflow._core.validators.coercer_for`, pandera's
``coerce=True``) is an adapter too: the coerced frame is what the task sees.

The engine adapts a node's inputs before they are hashed, and a task's outputs
in the process that ran it, before they are checked and persisted. What to do
for a declared type is worked out once per annotation: for ``int`` or
``list[int]`` it is nothing, so ordinary tasks pay one dict look-up per value.
"""

from __future__ import annotations

import collections.abc as cabc
import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, get_args, get_origin

from kernelflow._core.hashing import field_names
from kernelflow._core.typecheck import unwrap
from kernelflow._core.validators import coercer_for, on_register

__all__ = ["adapt", "adapt_all", "keep"]

_Plan = Callable[[Any], Any] | None
_PLANS: dict[int, tuple[object, _Plan]] = {}
_PLANS_LIMIT = 4096
_ATOMS = frozenset({int, float, bool, str, bytes, complex, type(None)})


def adapt(value: Any, declared: Any) -> Any:
    """``value`` in the form ``declared`` wants, when one of the two knows how; else as is."""
    convert = getattr(type(value), "__kernelflow_convert_to__", None)
    if convert is not None:
        base = unwrap(declared)
        if not (isinstance(base, type) and isinstance(value, base)):
            value = convert(value, declared)
    plan = _plan(declared)
    return value if plan is None else plan(value)


def adapt_all(values: Mapping[str, Any], declared: Mapping[str, Any]) -> Mapping[str, Any]:
    """Each value adapted to its declared type; the same mapping when nothing changed.

    On every task's inputs and outputs: a value of a plain class declared with
    a plain type (the usual case) costs one attribute look-up, no more.
    """
    planned = _planned_names(declared)
    changed = None
    for name, value in values.items():
        if name not in planned and not hasattr(type(value), "__kernelflow_convert_to__"):
            continue
        new = adapt(value, declared.get(name))
        if new is not value:
            changed = changed if changed is not None else dict(values)
            changed[name] = new
    return values if changed is None else changed


_PLANNED: dict[int, tuple[Mapping[str, Any], frozenset[str]]] = {}


def _planned_names(declared: Mapping[str, Any]) -> frozenset[str]:
    """The names of an interface whose declared type has an adapter (worked out once)."""
    entry = _PLANNED.get(id(declared))
    if entry is not None and entry[0] is declared:
        return entry[1]
    if len(_PLANNED) >= _PLANS_LIMIT:
        _PLANNED.clear()
    names = frozenset(name for name, tp in declared.items() if _plan(tp) is not None)
    _PLANNED[id(declared)] = (declared, names)
    return names


def _plan(declared: Any) -> _Plan:
    entry = _PLANS.get(id(declared))
    if entry is not None and entry[0] is declared:
        return entry[1]
    if len(_PLANS) >= _PLANS_LIMIT:
        _PLANS.clear()
    plan = _make_plan(declared)
    _PLANS[id(declared)] = (declared, plan)
    return plan


def _make_plan(declared: Any) -> _Plan:
    base = unwrap(declared)
    coercer = coercer_for(get_origin(base))
    if coercer is not None:  # DataFrame[Schema] with a coercing schema
        return lambda value: coercer(value, declared)
    if isinstance(base, type):
        adapter = getattr(base, "__kernelflow_adapt__", None)
        if adapter is not None:
            return lambda value: adapter(value, declared)
        return None
    origin, args = get_origin(base), get_args(base)
    if origin in (list, cabc.Sequence, cabc.MutableSequence) and len(args) == 1:
        item = _plan(args[0])
        return None if item is None else lambda value: _each(value, item)
    if origin in (dict, cabc.Mapping, cabc.MutableMapping) and len(args) == 2:
        item = _plan(args[1])
        return None if item is None else lambda value: _each_value(value, item)
    return None


def _forget_plans() -> None:
    _PLANS.clear()
    _PLANNED.clear()


on_register(_forget_plans)  # a plugin's coercer changes what a declared type is planned to do


def _each(value: Any, item: Callable[[Any], Any]) -> Any:
    if not isinstance(value, list):
        return value
    items = [item(element) for element in value]
    return items if any(new is not old for new, old in zip(items, value)) else value


def _each_value(value: Any, item: Callable[[Any], Any]) -> Any:
    if not isinstance(value, dict):
        return value
    entries = {key: item(element) for key, element in value.items()}
    return entries if any(entries[k] is not v for k, v in value.items()) else value


def keep(value: Any, declared: Any, root: Any) -> Any:
    """``value`` with every file in it (by ``__kernelflow_persist__``) copied into the store.

    Files are found where the declared type says they can be: the value itself,
    the items of a ``list[...]``, the values of a ``dict[..., ...]``, the fields
    of a dataclass or a pydantic model; anything else is left as it is, so a
    ``list[int]`` is not walked.
    """
    if type(value) in _ATOMS:  # the usual output: nothing in it can be a file
        return value
    hook = getattr(type(value), "__kernelflow_persist__", None)
    if hook is not None:
        return hook(value, root)
    base = unwrap(declared)
    origin, args = get_origin(base), get_args(base)
    if isinstance(value, list) and origin in (list, cabc.Sequence) and len(args) == 1:
        if not _may_hold_files(args[0]):
            return value
        items = [keep(item, args[0], root) for item in value]
        return items if any(new is not old for new, old in zip(items, value)) else value
    if isinstance(value, dict) and origin in (dict, cabc.Mapping) and len(args) == 2:
        if not _may_hold_files(args[1]):
            return value
        entries = {key: keep(item, args[1], root) for key, item in value.items()}
        return entries if any(entries[k] is not v for k, v in value.items()) else value
    names = field_names(value)
    if names is None:
        return value
    changes = {}
    for name in names:
        item = getattr(value, name)
        if hasattr(type(item), "__kernelflow_persist__"):
            changes[name] = keep(item, Any, root)
    if not changes:
        return value
    if dataclasses.is_dataclass(value):
        return dataclasses.replace(value, **changes)  # type: ignore[type-var]
    return value.model_copy(update=changes)


def _may_hold_files(declared: Any) -> bool:
    base = unwrap(declared)
    if base is Any or isinstance(base, TypeVar):
        return True
    if isinstance(base, type):
        return (
            hasattr(base, "__kernelflow_persist__")
            or dataclasses.is_dataclass(base)
            or isinstance(getattr(base, "model_fields", None), dict)
        )
    return any(_may_hold_files(arg) for arg in get_args(base) if arg is not Ellipsis)
