"""``kernelflow.load_notebook(path)``: a notebook file as a workflow the engine can run."""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kernelflow._core.errors import TargetError
from kernelflow._core.graph import Graph
from kernelflow._core.version import graph_version
from kernelflow.notebook.build import NotebookGraph, build_graph
from kernelflow.notebook.cells import NotebookCell, classify
from kernelflow.notebook.environment import ScriptEnvironment, annotation_namespace
from kernelflow.notebook.parameters import ParameterDecl, injected_values, read_parameters


@dataclass(frozen=True)
class NotebookWorkflow:
    """A notebook's tasks as a workflow: what ``kernelflow run nb.ipynb`` executes."""

    name: str
    path: Path | None
    cells: tuple[NotebookCell, ...]
    parameters: Mapping[str, ParameterDecl]
    built: NotebookGraph

    @property
    def graph(self) -> Graph:
        return self.built.graph

    @functools.cached_property
    def version(self) -> str:
        return graph_version(self.graph)

    def __repr__(self) -> str:
        return f"<NotebookWorkflow {self.name}: {len(self.graph.nodes)} tasks>"


def load_notebook(path: str | os.PathLike[str]) -> NotebookWorkflow:
    """Read a notebook and build its workflow; nothing runs but its imports."""
    import nbformat

    notebook_path = Path(path)
    if not notebook_path.is_file():
        raise TargetError(
            f"no such notebook: {str(notebook_path)!r}",
            target=str(path),
            fix="check the path (it is relative to the current directory)",
        )
    try:
        notebook = nbformat.read(notebook_path, as_version=4)
    except Exception as error:
        raise TargetError(
            f"{str(notebook_path)!r} is not a readable notebook: {error}", target=str(path)
        ) from error
    name = notebook.metadata.get("kernelflow", {}).get("workflow") or _workflow_name(notebook_path)
    sources = [
        (cell.source, cell.metadata.get("tags", []))
        for cell in notebook.cells
        if cell.cell_type == "code"
    ]
    return workflow_from_cells(sources, name=name, path=notebook_path)


def workflow_from_cells(
    sources: list[tuple[str, list[str]]], *, name: str, path: Path | None = None
) -> NotebookWorkflow:
    """Build a workflow from ``(source, tags)`` code cells, in notebook order."""
    cells = tuple(
        classify(index, source, tags)
        for index, (source, tags) in enumerate(sources, start=1)
        if source.strip()
    )
    setup_sources = [c.body for c in cells if c.kind == "setup"]
    types = annotation_namespace(setup_sources)
    parameters = _parameters(cells, types)
    environment = ScriptEnvironment([])
    built = build_graph(cells, parameters, environment, types)
    environment.setup = [(c.label, c.body) for c in built.setup_cells]
    return NotebookWorkflow(name, path, cells, parameters, built)


def _parameters(cells: tuple[NotebookCell, ...], types: dict[str, Any]) -> dict[str, ParameterDecl]:
    declared: dict[str, ParameterDecl] = {}
    for cell in cells:
        if cell.kind == "parameters":
            declared.update(read_parameters(cell, types))
    for cell in cells:
        if cell.kind == "injected-parameters":
            for name, value in injected_values(cell, types).items():
                if name in declared:
                    old = declared[name]
                    declared[name] = ParameterDecl(name, old.type, old.type_text, value)
    return declared


def _workflow_name(path: Path) -> str:
    stem = "".join(ch if ch.isalnum() or ch in "_-" else "_" for ch in path.stem)
    return stem or "notebook"
