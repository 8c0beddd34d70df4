"""Notebooks for the kernel benchmarks: build them with nbformat, run them with nbclient.

Timings are taken *inside* the kernel (``time.perf_counter`` in the cells) and
printed as one JSON line by the last cell, so kernel start-up and the client's
own bookkeeping do not blur a per-cell figure.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.common import Config, isolated_home, profile_top

Cell = str | tuple[str, Sequence[str]]
"""A cell's source, or (source, tags)."""


def make_notebook(cells: Sequence[Cell]) -> Any:
    import nbformat.v4 as v4

    built = []
    for cell in cells:
        source, tags = (cell, ()) if isinstance(cell, str) else cell
        built.append(v4.new_code_cell(source, metadata={"tags": list(tags)}))
    kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return v4.new_notebook(cells=built, metadata={"kernelspec": kernelspec})


def execute(notebook: Any, cwd: Path, timeout: float = 300) -> Any:
    """Run every cell in a fresh kernel (which inherits ``KERNELFLOW_HOME``)."""
    from nbclient import NotebookClient

    client = NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=timeout,
        resources={"metadata": {"path": str(cwd)}},
    )
    client.execute()
    return notebook


def reported(notebook: Any) -> dict[str, Any]:
    """The JSON object the last cell printed."""
    for output in notebook.cells[-1].get("outputs", []):
        if output.get("output_type") == "stream" and output.get("name") == "stdout":
            return dict(json.loads(output["text"].strip().splitlines()[-1]))
    raise RuntimeError("the timing cell printed nothing; a cell before it may have failed")


def run_and_report(cells: Sequence[Cell], cwd: Path) -> dict[str, Any]:
    return reported(execute(make_notebook(cells), cwd))


def source_of(cell: Cell) -> str:
    return cell if isinstance(cell, str) else cell[0]


def profile_in_shell(config: Config, cells: Sequence[Cell], start: int, stop: int) -> list[str]:
    """cProfile ``cells[start:stop]`` in an in-process IPython shell, after ``cells[:start]``.

    Same magics and engine as in a kernel, without the kernel's messaging; the
    profiling process has usually imported everything already, so first-use
    import costs do not show here (the timings above include them).
    """
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    sources = [source_of(cell) for cell in cells]
    with isolated_home(config, "shell-profile"), contextlib.redirect_stdout(io.StringIO()):
        for source in sources[:start]:
            shell.run_cell(source)

        def body() -> None:
            for source in sources[start:stop]:
                shell.run_cell(source)

        return profile_top(body)
