"""Typed interfaces: what a task takes and gives, and whether a value or a type fits.

Every front end meets here. ``@task``/``@workflow`` read a function's annotations
(:func:`interface_from_function`); the workflow tracer asks whether an output may
feed an input before anything runs (:func:`is_compatible`); the engine checks every
value a task produces (:func:`check_value`); the CLI turns ``-p NAME VALUE`` text
into typed values (:func:`parse_parameter`). Error messages are built from
:func:`type_name` and :func:`describe_value`, so they read the same everywhere.

This module defines :class:`Interface` and is the public face of the type
modules, re-exporting their API: :mod:`kernelflow._core.typenames` (names and
descriptions), :mod:`kernelflow._core.typecheck` (:class:`Schema`, value checks),
:mod:`kernelflow._core.compat` (type against type) and :mod:`kernelflow._core.params_text`
(command-line text). None of them imports pandas or NumPy on its own.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args, get_origin

from kernelflow._core.compat import is_compatible, is_namedtuple, namedtuple_fields
from kernelflow._core.errors import OutputTypeError, SignatureError
from kernelflow._core.params_text import parse_parameter
from kernelflow._core.typecheck import Schema, check_value
from kernelflow._core.typenames import EMPTY, NONE_TYPE, describe_value, type_name

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

    Every parameter must be annotated: the annotations are what the engine
    checks and what edges are matched by, so a missing one is an error at
    definition time rather than a silent ``Any``. No return annotation means no
    outputs (Flyte's rule); ``-> (A, B)`` means two.
    """
    name = getattr(fn, "__name__", repr(fn))
    hints = _type_hints(fn, kind, name)
    inputs: dict[str, object] = {}
    defaults: dict[str, object] = {}
    for param in inspect.signature(fn).parameters.values():
        inputs[param.name] = _parameter_type(param, hints, kind, name)
        if param.default is not EMPTY:
            _check_default(param, inputs[param.name], kind, name)
            defaults[param.name] = param.default
    # As in Flyte, no return annotation declares no outputs (a returned value is
    # then an error when the task runs, not a silent ``Any``).
    outputs, output_kind, nt_type = _outputs(hints.get("return"))
    return Interface(inputs, outputs, defaults, output_kind, nt_type)


def _type_hints(fn: Callable[..., object], kind: str, name: str) -> dict[str, Any]:
    try:
        return _tuple_literal_hints(fn) or typing.get_type_hints(fn, include_extras=True)
    except NameError as error:  # a string annotation naming something not importable
        raise SignatureError(
            f"{kind} {name!r} has an annotation that cannot be resolved: {error}",
            fix="import the types used in annotations at module level",
            **{kind: name},
        ) from error


def _tuple_literal_hints(fn: Callable[..., object]) -> dict[str, Any] | None:
    """Hints of a function whose return annotation is Flyte's tuple literal, ``-> (A, B)``.

    Under ``from __future__ import annotations`` the literal is the string
    ``"(A, B)"``, which :func:`typing.get_type_hints` refuses (not a type): its
    elements are resolved one by one here. None for any other function.
    """
    annotations = dict(getattr(fn, "__annotations__", None) or {})
    returned = annotations.get("return")
    if not (isinstance(returned, str) and returned.lstrip().startswith("(")):
        return None
    namespace = getattr(inspect.unwrap(fn), "__globals__", {})
    value = eval(returned, namespace)
    if not isinstance(value, tuple):
        return None
    del annotations["return"]
    stub = types.SimpleNamespace(__annotations__=annotations, __globals__=namespace)
    hints = typing.get_type_hints(stub, include_extras=True)
    hints["return"] = value
    return hints


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
    if tp is None or tp is NONE_TYPE:
        return {}, "none", None
    if isinstance(tp, tuple):  # Flyte's ``-> (int, str)``: a tuple literal, two outputs
        return {f"o{i}": arg for i, arg in enumerate(tp)}, "tuple", None
    if is_namedtuple(tp):
        return namedtuple_fields(tp), "namedtuple", tp  # type: ignore[arg-type, return-value]
    args = get_args(tp)
    if get_origin(tp) is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
        return {f"o{i}": arg for i, arg in enumerate(args)}, "tuple", None
    return {"o0": tp}, "single", None
