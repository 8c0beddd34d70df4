"""Small internal tasks a workflow body makes on its own: attribute and index access
on a promise, and lists and dicts of promises.

Flyte lets a workflow write ``out.field``, ``out[0]``, ``out["k"]`` and pass
``[a, b]`` or ``{"x": a}`` where ``a`` and ``b`` are promises. None of these has a
value while the body is traced, so each becomes a node of its own that computes
it when the workflow runs: a :class:`GetTask` (one access) or a
:class:`CollectTask` (one list or dict). Their results are not cached: they are
cheap, and their inputs are already in the store.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from collections.abc import Mapping, Sequence
from typing import Any, get_args, get_origin

from kernelflow._core.errors import DefinitionError
from kernelflow._core.interface import Interface, type_name
from kernelflow._core.task import Task, TaskOptions

Step = tuple[str, Any]  # ("attr", "name") or ("item", 0) / ("item", "key")


class GetTask(Task):
    """``value.name`` or ``value[key]``, computed when the workflow runs."""

    def __init__(self, step: Step, source: Any, result: Any) -> None:
        self.step = step
        self.name = "get" + describe_step(step)
        self.options = TaskOptions()
        self.interface = Interface({"value": source}, {"o0": result}, {}, "single")

    @property
    def code_hash(self) -> str:
        return f"get:{self.step!r}"

    def run(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        kind, key = self.step
        value = inputs["value"]
        return {"o0": getattr(value, key) if kind == "attr" else value[key]}


class CollectTask(Task):
    """A list or dict whose elements come from promises (and constants)."""

    def __init__(self, kind: str, keys: Sequence[Any], element_types: Sequence[Any], result: Any):
        self.kind = kind
        self.keys = list(keys)
        self.name = f"collect_{kind}"
        self.options = TaskOptions()
        inputs = {f"i{index}": tp for index, tp in enumerate(element_types)}
        self.interface = Interface(inputs, {"o0": result}, {}, "single")

    @property
    def code_hash(self) -> str:
        return f"collect:{self.kind}:{self.keys!r}"

    def run(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        values = [inputs[f"i{index}"] for index in range(len(self.keys))]
        if self.kind == "list":
            return {"o0": values}
        return {"o0": dict(zip(self.keys, values))}


def describe_step(step: Step) -> str:
    kind, key = step
    return f".{key}" if kind == "attr" else f"[{key!r}]"


def node_suffix(step: Step) -> str:
    """The part of a getter node's id after its source's: ``.name``, ``.0``, ``.k``."""
    return "." + (re.sub(r"[^A-Za-z0-9_-]", "_", str(step[1])) or "key")


def result_type(source: Any, step: Step, where: str) -> Any:
    """The declared type of ``source.attr`` / ``source[key]``, or ``Any`` if unknown.

    An attribute a dataclass (or NamedTuple, or annotated class) does not declare
    is an error here, at definition time.
    """
    kind, key = step
    origin, args = get_origin(source) or source, get_args(source)
    if kind == "item":
        if isinstance(key, slice):  # out[1:3]: a list of the same kind
            return source if origin in (list, tuple, Sequence) else Any
        if origin in (list, Sequence, typing.List) and args:  # noqa: UP006
            return args[0]
        if origin is tuple and args and isinstance(key, int):
            if len(args) == 2 and args[1] is Ellipsis:
                return args[0]
            return args[key] if -len(args) <= key < len(args) else _no_such(source, step, where)
        if origin in (dict, Mapping, typing.Dict) and len(args) == 2:  # noqa: UP006
            return args[1]
        return Any
    if isinstance(source, type) and (
        dataclasses.is_dataclass(source) or hasattr(source, "__annotations__")
    ):
        try:
            hints = typing.get_type_hints(source)
        except Exception:  # an unresolvable annotation: judge at run time
            return Any
        if key in hints:
            return hints[key]
        if dataclasses.is_dataclass(source) and not hasattr(source, key):
            return _no_such(source, step, where)
    return Any


def _no_such(source: Any, step: Step, where: str) -> Any:
    raise DefinitionError(
        f"{where}{describe_step(step)}: {type_name(source)} has no such "
        f"{'attribute' if step[0] == 'attr' else 'item'}",
        fix="check the name against the declared type",
    )
