"""Run notebooks on a real kernel for the tests (nbclient), with a chosen store."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook

Cell = str | tuple[str, Sequence[str]]  # source, or (source, tags)


def make_notebook(cells: Sequence[Cell], name: str = "flow") -> Any:
    built = []
    for cell in cells:
        source, tags = (cell, ()) if isinstance(cell, str) else cell
        built.append(new_code_cell(source, metadata={"tags": list(tags)}))
    return new_notebook(
        cells=built,
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "kernelflow": {"workflow": name},
        },
    )


def execute(notebook: Any, *, cwd: Path, allow_errors: bool = False) -> Any:
    """Execute in a fresh kernel; ``$KERNELFLOW_HOME`` is inherited from the test."""
    client = NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=120,
        allow_errors=allow_errors,
        store_widget_state=True,
        resources={"metadata": {"path": str(cwd)}},
    )
    client.execute()
    return notebook


def outputs_text(cell: Any) -> str:
    """Everything a cell showed, as text (streams, text/plain, errors)."""
    parts = []
    for output in cell.get("outputs", []):
        if output.output_type == "stream":
            parts.append(output.text)
        elif output.output_type == "error":
            parts.append(f"{output.ename}: {output.evalue}")
        else:
            parts.append(output.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def write(notebook: Any, path: Path) -> Path:
    nbformat.write(notebook, path)
    return path
