"""``kernelflow.load_notebook(path)``: a notebook file as a workflow the engine can run."""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kernelflow._core.errors import TargetError
from kernelflow._core.graph import Graph
from kernelflow._core.names import name_from_stem, validate_name
from kernelflow.notebook.build import NotebookGraph, build_graph
from kernelflow.notebook.cells import NotebookCell, classify
from kernelflow.notebook.environment import ScriptEnvironment, annotation_namespace
from kernelflow.notebook.fingerprint import notebook_version
from kernelflow.notebook.parameters import ParameterDecl, injected_values, read_parameters

# How to fix a bad workflow name in a notebook's metadata (without it, the file name is used).
NAME_FIX = 'set metadata.kernelflow to {"workflow": "a_name"} in the notebook, or remove it'


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
        """The version runs of this notebook and its export record (``fingerprint.py``)."""
        return notebook_version(self)

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
        with warnings.catch_warnings():  # nbformat's schema nags (a missing cell id) are not
            warnings.simplefilter("ignore")  # the user's problem here; what we use is checked
            notebook = nbformat.read(notebook_path, as_version=4)
    except Exception as error:
        raise TargetError(
            f"{str(notebook_path)!r} is not a readable notebook: {error}", target=str(path)
        ) from error
    name = workflow_name(notebook.metadata, notebook_path)
    return workflow_from_cells(code_cells(notebook, notebook_path), name=name, path=notebook_path)


def code_cells(notebook: Any, path: Path) -> list[tuple[str, list[str], int]]:
    """``(source, tags)`` of each code cell, checked: the file may come from anywhere.

    nbformat reads a notebook without enforcing its schema, so a cell whose
    source is a number or whose tags are not strings would surface later as a
    traceback; it is refused here, naming the cell (its index in the notebook,
    from 1) and what was found.
    """
    cells = notebook.get("cells")
    if not isinstance(cells, list):
        raise _malformed(path, "its 'cells' is not a list", type(cells).__name__)
    found = []
    for index, cell in enumerate(cells, start=1):
        if not isinstance(cell, Mapping):
            raise _malformed(path, f"cell {index} is not an object", type(cell).__name__)
        if cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        if isinstance(source, list) and all(isinstance(line, str) for line in source):
            source = "".join(source)
        if not isinstance(source, str):
            raise _malformed(path, f"the source of cell {index} is not text", repr(source)[:60])
        metadata = cell.get("metadata", {})
        tags = metadata.get("tags", []) if isinstance(metadata, Mapping) else None
        if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
            raise _malformed(
                path, f"the tags of cell {index} are not a list of text", repr(tags)[:60]
            )
        found.append((source, tags, index))  # errors name cells by the notebook's index
    return found


def _malformed(path: Path, what: str, found: str) -> TargetError:
    return TargetError(
        f"{str(path)!r} is not a valid notebook: {what} (found {found})",
        target=str(path),
        found=found,
        fix="open and save it in Jupyter, or fix that cell in the JSON (nbformat.validate "
        "shows every problem)",
    )


def workflow_from_cells(
    sources: Sequence[tuple[str, list[str]] | tuple[str, list[str], int]],
    *,
    name: str,
    path: Path | None = None,
) -> NotebookWorkflow:
    """Build a workflow from code cells, in notebook order.

    Each is ``(source, tags)`` or ``(source, tags, index)``, ``index`` being the
    cell's place in the notebook (from 1, counting every cell), which errors use;
    without it, the position in ``sources``.
    """
    cells = tuple(
        classify(entry[2] if len(entry) > 2 else position, entry[0], entry[1])  # type: ignore[misc]
        for position, entry in enumerate(sources, start=1)
        if entry[0].strip()
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


def workflow_name(metadata: Mapping[str, Any], path: Path) -> str:
    """The name in ``metadata.kernelflow.workflow``, or one made from the file name.

    The metadata comes with the notebook, which may come from anywhere: a
    ``kernelflow`` entry that is not a mapping, or a name that is not a string, is
    refused here, where the notebook is named, rather than as a traceback later.
    Whether a string is fit to become a path is checked where it becomes one
    (:func:`kernelflow.notebook.export.export`). A missing or empty name falls back
    to the file name, made to follow the name rule.
    """
    entry = metadata.get("kernelflow")
    if not isinstance(entry, Mapping) and entry is not None:
        raise TargetError(
            f"metadata.kernelflow in {str(path)!r} is {type(entry).__name__}, not a mapping",
            target=str(path),
            fix=NAME_FIX,
        )
    name = (entry or {}).get("workflow")
    if name is None or name == "":
        return name_from_stem(path.stem)
    if isinstance(name, str):
        return name
    where = f"the notebook metadata of {path.name}"  # a non-string: always refused
    return validate_name("workflow name", name, where=where, error=TargetError, fix=NAME_FIX)
