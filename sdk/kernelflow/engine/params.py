"""Workflow parameters: checked against their declarations before any task runs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kernelflow._core.errors import ParameterError
from kernelflow._core.graph import REQUIRED, Graph
from kernelflow._core.interface import check_value, parse_parameter, type_name


def resolve_params(workflow: str, graph: Graph, given: Mapping[str, Any]) -> dict[str, Any]:
    """Every parameter's value: given, or its default; refuse unknown, missing, mistyped."""
    _refuse_unknown(workflow, graph, given)
    values = {}
    for name, spec in graph.params.items():
        if name in given:
            value = given[name]
        elif spec.default is not REQUIRED:
            value = spec.default
        else:
            raise ParameterError(
                f"workflow {workflow!r} needs parameter {name!r} ({type_name(spec.type)}), "
                "which was not given",
                workflow=workflow,
                parameter=name,
                expected=type_name(spec.type),
                fix=f"pass it: -p {name} VALUE (or {name}=... in Python)",
            )
        problem = check_value(value, spec.type)
        if problem is not None:
            raise ParameterError(
                f"parameter {name!r} of workflow {workflow!r} expects {type_name(spec.type)}, "
                f"got {problem}",
                workflow=workflow,
                parameter=name,
                expected=type_name(spec.type),
                actual=problem,
                fix=f"pass a value of type {type_name(spec.type)} for {name!r}",
            )
        values[name] = value
    return values


def parse_params(workflow: str, graph: Graph, texts: Mapping[str, str]) -> dict[str, Any]:
    """Parse ``-p NAME VALUE`` strings by each parameter's declared type (never eval)."""
    _refuse_unknown(workflow, graph, texts)
    return {
        name: parse_parameter(name, text, graph.params[name].type) for name, text in texts.items()
    }


def _refuse_unknown(workflow: str, graph: Graph, given: Mapping[str, Any]) -> None:
    unknown = [name for name in given if name not in graph.params]
    if unknown:
        known = ", ".join(f"{n} ({type_name(s.type)})" for n, s in graph.params.items())
        raise ParameterError(
            f"workflow {workflow!r} has no parameter {unknown[0]!r}; "
            f"its parameters are: {known or '(none)'}",
            workflow=workflow,
            parameter=unknown[0],
            fix="check the parameter's name",
        )
