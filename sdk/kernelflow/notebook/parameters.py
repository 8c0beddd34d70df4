"""The ``parameters`` cell: workflow inputs, their types and defaults (papermill's convention).

Types come, in this order, from an annotation (``n: int = 3``), from a
``# type:`` comment (``n = 3  # type: int``, which ``papermill --help-notebook``
also reads), or from the default value's type. ``injected-parameters`` (what
papermill writes for ``-p``) overrides the defaults.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kernelflow._core.errors import CellParseError
from kernelflow.notebook.analysis import transform_ipython
from kernelflow.notebook.cells import NotebookCell

_TYPE_COMMENT = re.compile(r"#\s*type:\s*(?P<type>[^#]+?)\s*(?:#.*)?$")


@dataclass(frozen=True)
class ParameterDecl:
    """One workflow input declared in the parameters cell."""

    name: str
    type: Any
    type_text: str
    default: Any


def read_parameters(cell: NotebookCell, namespace: Mapping[str, Any]) -> dict[str, ParameterDecl]:
    """Declarations of the parameters cell; ``namespace`` resolves annotations."""
    source = transform_ipython(cell.body)
    values = _execute(cell, source, namespace)
    lines = source.splitlines()
    declarations = {}
    for statement in ast.parse(source).body:
        for name, annotation in _targets(statement):
            if name.startswith("_") or name not in values:
                continue
            text = annotation or _type_comment(lines[statement.lineno - 1])
            declared = _evaluate(cell, name, text, namespace) if text else infer_type(values[name])
            declarations[name] = ParameterDecl(
                name, declared, text or _text(declared), values[name]
            )
    return declarations


def injected_values(cell: NotebookCell, namespace: Mapping[str, Any]) -> dict[str, Any]:
    """The values papermill injected (``-p NAME VALUE``)."""
    source = transform_ipython(cell.body)
    values = _execute(cell, source, namespace)
    return {name: value for name, value in values.items() if not name.startswith("_")}


def _execute(cell: NotebookCell, source: str, namespace: Mapping[str, Any]) -> dict[str, Any]:
    scope = dict(namespace)
    try:
        exec(compile(source, f"<kernelflow {cell.label}>", "exec"), scope)
    except Exception as error:
        raise CellParseError(
            f"{cell.label} failed to run: {type(error).__name__}: {error}",
            cell=cell.label,
            fix="the parameters cell should only assign literal defaults (and annotate them)",
        ) from error
    return {name: scope[name] for name in _assigned(source) if name in scope}


def _assigned(source: str) -> set[str]:
    return {name for statement in ast.parse(source).body for name, _ in _targets(statement)}


def _targets(statement: ast.stmt) -> list[tuple[str, str | None]]:
    if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
        return [(statement.target.id, ast.unparse(statement.annotation))]
    if isinstance(statement, ast.Assign):
        return [(t.id, None) for t in statement.targets if isinstance(t, ast.Name)]
    return []


def _type_comment(line: str) -> str | None:
    match = _TYPE_COMMENT.search(line)
    return match.group("type") if match else None


def _evaluate(cell: NotebookCell, name: str, text: str, namespace: Mapping[str, Any]) -> Any:
    try:
        return eval(text, dict(namespace))  # an annotation, from the user's own notebook
    except Exception as error:
        raise CellParseError(
            f"{cell.label}: the type of parameter {name!r} ({text!r}) cannot be resolved: "
            f"{type(error).__name__}: {error}",
            cell=cell.label,
            variable=name,
            fix="use a builtin or typing type, or import the type in a setup cell",
        ) from error


def infer_type(value: Any) -> Any:
    """The type a parameter without a declared one gets from its value.

    Builtin scalars and containers declare their own type, so ``-p`` parses by
    it (``[1, 2]`` as JSON for a list); ``None`` and anything else are ``Any``,
    which ``-p`` parses as papermill does. The loader and the kernel session
    share this rule, so one notebook's parameters read alike in both.
    """
    if value is None:
        return Any
    if isinstance(value, (bool, int, float, str, list, dict, tuple)):
        return type(value)
    return Any


def _text(declared: Any) -> str:
    return getattr(declared, "__name__", None) or repr(declared)
