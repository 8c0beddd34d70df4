"""Validators of generic types the core does not know, registered by the plugins that do.

A plugin (``kernelflow.plugins.pandera``) registers, at import, a function for
the origin of a generic type (``pandera.typing.DataFrame`` for
``DataFrame[Schema]``). The type check (:mod:`kernelflow._core.typecheck`) then
calls it for every value declared as that type, on the way into a task and on
the way out: it returns the problems found (an empty list when the value is
valid), each naming what is wrong (a column and its failed checks). The core
imports no plugin and no plugin's library: it only looks up this registry.

A plugin may also register a *coercer* for the origin: the value a schema makes
of its input (pandera's ``coerce=True`` turns a column of ``"1"`` into ``1``).
:mod:`kernelflow._core.adapt` applies it where values enter and leave a task,
so the task receives, and its caller gets, the coerced value, not the original.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable
from typing import Any, get_origin

__all__ = [
    "Validator",
    "is_validated",
    "load_validators",
    "coercer_for",
    "register_validator",
    "validator_for",
    "validator_modules",
]

Validator = Callable[[Any, Any], list[str]]
"""``validator(value, declared) -> problems``; ``declared`` may be ``Annotated[...]``."""
Coercer = Callable[[Any, Any], Any]
"""``coercer(value, declared) -> value``: the value the schema makes of it (or it, unchanged)."""

_VALIDATORS: dict[object, Validator] = {}
_COERCERS: dict[object, Coercer] = {}
_LISTENERS: list[Callable[[], None]] = []


def register_validator(
    origin: object, validator: Validator, *, coercer: Coercer | None = None
) -> None:
    """Validate values declared ``origin[...]`` with ``validator`` from now on, and
    hand the task (and its caller) what ``coercer`` makes of them, when given."""
    _VALIDATORS[origin] = validator
    if coercer is not None:
        _COERCERS[origin] = coercer
    for forget in _LISTENERS:  # checks compiled before the plugin came are stale
        forget()


def validator_modules() -> tuple[str, ...]:
    """The modules that registered validators here: a worker process imports them too."""
    return tuple(sorted({getattr(v, "__module__", "") for v in _VALIDATORS.values()} - {""}))


def load_validators(modules: Iterable[str]) -> None:
    """Import the plugins a run uses, in a worker that has not (a task sent by value
    does not bring its module's imports). Importing a plugin registers its validators.
    """
    for module in modules:
        if module not in sys.modules:
            importlib.import_module(module)


def validator_for(origin: object) -> Validator | None:
    return _VALIDATORS.get(origin) if origin is not None else None


def coercer_for(origin: object) -> Coercer | None:
    """What turns a value declared ``origin[...]`` into the form its schema makes of it."""
    return _COERCERS.get(origin) if _COERCERS and origin is not None else None


def is_validated(declared: Any) -> bool:
    """Whether values declared ``declared`` (possibly under ``Annotated``) have a validator."""
    if not _VALIDATORS:
        return False
    seen = 0
    while seen < 8:  # Annotated[...] nests shallowly
        origin = get_origin(declared)
        if origin in _VALIDATORS:
            return True
        metadata = getattr(declared, "__metadata__", None)
        if metadata is None:
            return False
        declared = declared.__origin__
        seen += 1
    return False


def on_register(forget: Callable[[], None]) -> None:
    """Call ``forget`` whenever a validator is registered (caches of compiled checks)."""
    _LISTENERS.append(forget)
