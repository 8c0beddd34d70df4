"""``kernelflow export``: a notebook workflow as a versioned, papermill-runnable notebook.

The version is the workflow's own (``NotebookWorkflow.version``, what ``kernelflow
run`` records too): a short hash of the normalized code of task and setup cells,
the task interfaces and edges, and the parameter declarations. Exporting an
unchanged workflow again finds the same version and leaves the file alone; a
change gives a new file beside the old one, listed in ``versions.json`` with its
parent.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kernelflow._core.scope import current_scope
from kernelflow.notebook.cells import TaskSpec
from kernelflow.notebook.fingerprint import task_fingerprint
from kernelflow.notebook.load import NAME_FIX, NotebookWorkflow, load_notebook
from kernelflow.notebook.versions import (
    DEFAULT_OUT,
    index_lock,
    list_version,
    load_records,
    workflow_folder,
)


@dataclass(frozen=True)
class Export:
    """An exported version: ``path`` is ``<out>/<workflow>/<version>.ipynb``."""

    workflow: str
    version: str
    path: Path
    new: bool  # False when this version had been exported before


def export(path: str | os.PathLike[str], out: str | os.PathLike[str] = DEFAULT_OUT) -> Export:
    """Export the notebook at ``path``; the same workflow always gives the same file.

    The workflow name becomes a directory under ``out``, so it is checked against
    the name rule before anything is written. The notebook and its index entry are
    written under the index lock, so concurrent exports neither lose entries nor
    write one version twice; a version whose notebook exists but is not listed (an
    export that died in between) is listed now.
    """
    workflow = load_notebook(path)
    where = f"the notebook metadata of {Path(path).name}"
    folder = workflow_folder(out, workflow.name, where=where, fix=NAME_FIX)
    version = workflow.version
    target = folder / f"{version}.ipynb"
    folder.mkdir(parents=True, exist_ok=True)
    with index_lock(folder):
        records = load_records(folder, workflow.name)
        new = not target.exists()
        if new:
            _write_atomic(target, exported_notebook(workflow, version))
        list_version(folder, workflow.name, records, target, Path(path))
    return Export(workflow.name, version, target, new=new)


def exported_notebook(workflow: NotebookWorkflow, version: str) -> Any:
    """The notebook papermill runs: parameters, a kernelflow cell, setup, tasks in order."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    declared = {name: decl.type_text for name, decl in workflow.parameters.items()}
    scope = current_scope()
    cells = [
        new_markdown_cell(
            f"# {workflow.name} (version {version})\n\nExported by kernelflow. Run it with "
            f"`papermill {version}.ipynb out.ipynb -p NAME VALUE`; read its outputs with "
            "`kernelflow.read_outputs('out.ipynb')`."
        )
    ]
    cells.append(new_code_cell(_parameters_source(workflow), metadata={"tags": ["parameters"]}))
    tasks = list(workflow.graph.order)
    cells.append(
        new_code_cell(
            "%load_ext kernelflow\n"
            "from kernelflow.notebook.exported import start_exported_run\n\n"
            f"start_exported_run({workflow.name!r}, {version!r}, {json.dumps(declared)},"
            f" {tasks!r}, globals())"
        )
    )
    cells += [new_code_cell(_without_load_ext(cell.body)) for cell in workflow.built.setup_cells]
    by_name = {c.spec.name: c for c in workflow.cells if c.spec is not None}
    for name in tasks:
        cell = by_name[name]
        cells.append(
            new_code_cell(
                f"%%task {_header(cell.spec)}\n{cell.body.lstrip(chr(10))}",
                metadata={"tags": [f"task:{name}"]},
            )
        )
    metadata = {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
        "kernelflow": {
            "workflow": workflow.name,
            "version": version,
            "tasks": {name: task_fingerprint(workflow, name) for name in tasks},
            "inputs": declared,
            "outputs": list(workflow.graph.outputs),
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            # Where it was exported: a version is in this domain, and in those it is
            # promoted to (kernelflow.notebook.promote).
            "project": scope.project,
            "domain": scope.domain,
        },
    }
    notebook = new_notebook(cells=cells, metadata=metadata)
    nbformat.validate(notebook)
    return notebook


def _without_load_ext(source: str) -> str:
    """Setup code minus ``%load_ext kernelflow``: the exported notebook loads it already."""
    lines = [
        line
        for line in source.splitlines()
        if line.strip() not in ("%load_ext kernelflow", "%load_ext kernelflow_jupyter")
    ]
    return "\n".join(lines)


def _parameters_source(workflow: NotebookWorkflow) -> str:
    parameter_cells = [c for c in workflow.cells if c.kind == "parameters"]
    if parameter_cells:
        return "\n".join(c.body for c in parameter_cells)
    return "# This workflow has no parameters."


def _header(spec: TaskSpec | None) -> str:
    assert spec is not None
    words = [spec.name]
    if spec.cache:
        words.append("--cache")
    if spec.cache_version:
        words += ["--cache-version", spec.cache_version]
    if spec.retries:
        words += ["--retries", str(spec.retries)]
    if spec.timeout is not None:
        words += ["--timeout", f"{spec.timeout:g}"]
    if spec.outputs is not None:
        words += ["--outputs", ",".join(spec.outputs)]
    if spec.map:
        words += ["--map", spec.map]
    for other in spec.after:
        words += ["--after", other]
    return shlex.join(words)


def _write_atomic(target: Path, notebook: Any) -> None:
    import nbformat

    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    nbformat.write(notebook, temporary)
    os.replace(temporary, target)
