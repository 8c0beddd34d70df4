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

The engine adapts a node's inputs before they are hashed, and a task's outputs
in the process that ran it, before they are checked and persisted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kernelflow._core.typecheck import unwrap

__all__ = ["adapt", "adapt_all"]


def adapt(value: Any, declared: Any) -> Any:
    """``value`` in the form ``declared`` wants, when one of the two knows how; else as is."""
    base = unwrap(declared)
    convert = getattr(type(value), "__kernelflow_convert_to__", None)
    if convert is not None and not (isinstance(base, type) and isinstance(value, base)):
        value = convert(value, declared)
    adapter = getattr(base, "__kernelflow_adapt__", None) if isinstance(base, type) else None
    return value if adapter is None else adapter(value, declared)


def adapt_all(values: Mapping[str, Any], declared: Mapping[str, Any]) -> Mapping[str, Any]:
    """Each value adapted to its declared type; the same mapping when nothing changed."""
    changed = None
    for name, value in values.items():
        new = adapt(value, declared.get(name))
        if new is not value:
            changed = changed if changed is not None else dict(values)
            changed[name] = new
    return values if changed is None else changed
