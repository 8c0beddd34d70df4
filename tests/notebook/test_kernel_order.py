"""The order of task cells in a kernel, and what it refuses: as the notebook file would.

In-process, on a real IPython shell (the ``shell`` fixture). A re-run or edited
cell keeps its place; a cell first run takes its place in the saved notebook
(JupyterLab sends the cell id); what the command line refuses (an order that
cannot decide, a cycle) the kernel refuses when the cell runs, naming the cells,
and forgets nothing it had.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
from IPython.core.interactiveshell import InteractiveShell
from nbformat.v4 import new_code_cell, new_notebook
from shell_runner import fails, ran, run

from kernelflow.api import open_kernel_session
from kernelflow.errors import CycleError, DuplicateProducerError


def _upstream(shell: InteractiveShell) -> dict[str, set[str]]:
    graph = open_kernel_session(shell).workflow().graph
    return {node: set(graph.nodes[node].upstream()) for node in graph.order}


def test_an_edited_cell_run_again_keeps_its_place_among_the_versions(
    shell: InteractiveShell, tmp_path: Path
) -> None:
    run(shell, "%%task load\nlog('load')\ndf = [1, 2, 3]")
    run(shell, "%%task clean\nlog('clean')\ndf = [v * 10 for v in df]")
    run(shell, "%%task total\nlog('total')\nt = sum(df)")
    assert shell.user_ns["t"] == 60
    run(shell, "%%task load\nlog('load')\ndf = [1, 2]")  # edited and run again
    run(shell, "%%task clean\nlog('clean')\ndf = [v * 100 for v in df]")
    # total still reads the cleaned version, as in the file (not load's, registered earlier)
    assert _upstream(shell)["total"] == {"clean"}
    ran(tmp_path)
    run(shell, "%workflow run")
    assert ran(tmp_path) == ["total"]
    assert shell.user_ns["t"] == 300


def test_a_value_a_plain_cell_made_stays_what_the_earlier_task_read(
    shell: InteractiveShell, tmp_path: Path
) -> None:
    run(shell, "y = 0")
    run(shell, "%%task first\nlog('first')\nx = y + 1")
    run(shell, "%%task second\nlog('second')\ny = x * 2")  # rebinds y: no cycle, as in a file
    assert _upstream(shell) == {"first": set(), "second": {"first"}}
    ran(tmp_path)
    run(shell, "%workflow run")
    assert ran(tmp_path) == []  # both up to date: first read y = 0, not second's y
    assert (shell.user_ns["x"], shell.user_ns["y"]) == (1, 2)


def test_an_order_that_cannot_decide_is_refused_when_the_cell_runs(
    shell: InteractiveShell, tmp_path: Path
) -> None:
    run(shell, "%%task reader --defer\nz = w + 1")
    run(shell, "%%task one\nw = 1")
    error = fails(shell, "%%task two\nlog('two')\nw = 2")
    assert isinstance(error, DuplicateProducerError)
    assert "'w'" in str(error) and "task 'one'" in str(error) and "task 'two'" in str(error)
    assert ran(tmp_path) == []  # refused before its body ran
    assert list(open_kernel_session(shell).cells) == ["reader", "one"]  # nothing lost
    run(shell, "%workflow run")
    assert shell.user_ns["z"] == 2


def test_a_cycle_is_refused_when_the_cell_runs_naming_both_tasks(
    shell: InteractiveShell, tmp_path: Path
) -> None:
    run(shell, "%%task first --defer\nx = y + 1")
    error = fails(shell, "%%task second\nlog('second')\ny = x * 2")
    assert isinstance(error, CycleError)
    assert re.search(r"first -> second -> first|second -> first -> second", str(error))
    assert ran(tmp_path) == []


def _saved(path: Path, sources: dict[str, str]) -> Path:
    cells = []
    for cell_id, source in sources.items():
        cell = new_code_cell(source)
        cell["id"] = cell_id
        cells.append(cell)
    nbformat.write(new_notebook(cells=cells), path)
    return path


def test_a_cell_first_run_takes_its_place_in_the_saved_notebook(
    shell: InteractiveShell, tmp_path: Path
) -> None:
    sources = {
        "c-reader": "%%task reader\nz = w + 1",
        "c-one": "%%task one\nw = 1",
        "c-two": "%%task two\nw = 2",
    }
    shell.user_ns["__session__"] = str(_saved(tmp_path / "flow.ipynb", sources))
    for cell_id in ("c-one", "c-two"):  # run out of order, as people do
        shell.run_cell(sources[cell_id], store_history=False, cell_id=cell_id)
    result = shell.run_cell(sources["c-reader"], store_history=False, cell_id="c-reader")
    error = result.error_in_exec or result.error_before_exec
    assert isinstance(error, DuplicateProducerError)  # what `kernelflow run` says of the file
    assert "2 later cells" in str(error)


def test_a_renamed_task_replaces_its_old_name(shell: InteractiveShell) -> None:
    shell.run_cell("%%task old\nv = 1", store_history=False, cell_id="c1")
    shell.run_cell("%%task other\nu = 2", store_history=False, cell_id="c2")
    shell.run_cell("%%task new\nv = 1", store_history=False, cell_id="c1")
    assert list(open_kernel_session(shell).cells) == ["new", "other"]
