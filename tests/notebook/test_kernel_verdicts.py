"""A real kernel and the command line give one verdict on the same notebook.

Each notebook runs top to bottom in a real kernel (nbclient) and through
``kernelflow show``: a notebook with rebound names (versions of ``df``) builds
the same DAG both ways; an order that cannot decide and a cycle are refused
both ways, with the same kind of error naming the same tasks.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest
from notebook_runner import execute, make_notebook, outputs_text, write

import kernelflow
from kernelflow.cli import main

EDGES = (
    "import json\nfrom kernelflow.api import open_kernel_session\n"
    "graph = open_kernel_session(get_ipython()).workflow().graph\n"
    "print('EDGES', json.dumps({n: sorted(graph.nodes[n].upstream()) for n in graph.order}))"
)

REBOUND = [
    "%load_ext kernelflow",
    ("n = 4", ["parameters"]),
    "%%task load\ndf = list(range(n))",
    "%%task clean\ndf = [v * 2 for v in df if v]",
    "%%task extend\ndf.append(100)",
    "%%task total\ntotal = sum(df)",
    "%%task again\ndf = df[:1]\nfirst = df[0]",
]
UNDECIDABLE = [
    "%load_ext kernelflow",
    "%%task reader --defer\nz = w + 1",
    "%%task one\nw = 1",
    "%%task two\nw = 2",
]
CYCLE = [
    "%load_ext kernelflow",
    "%%task first --defer\nx = y + 1",
    "%%task second\ny = x * 2",
]


def _kernel_error(path: Path) -> tuple[str, str] | None:
    """The first error the notebook's cells raised in a real kernel: (name, message)."""
    notebook = execute(nbformat.read(path, as_version=4), cwd=path.parent, allow_errors=True)
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                return output.ename, output.evalue
    return None


def _cli_error(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["show", str(path)])
    return code, capsys.readouterr().err


def test_rebound_names_give_the_same_dag_in_the_kernel_and_the_file(tmp_path: Path) -> None:
    path = write(make_notebook([*REBOUND, EDGES], name="rebound"), tmp_path / "rebound.ipynb")
    notebook = execute(nbformat.read(path, as_version=4), cwd=tmp_path)
    printed = notebook.cells[-1].outputs[0].text
    kernel_edges = json.loads(printed.split("EDGES", 1)[1])
    graph = kernelflow.load_notebook(path).graph
    file_edges = {node: sorted(graph.nodes[node].upstream()) for node in graph.order}
    assert kernel_edges == file_edges
    assert file_edges["total"] == ["extend"] and file_edges["again"] == ["extend"]


@pytest.mark.parametrize(
    ("name", "cells", "error", "names"),
    [
        ("undecidable", UNDECIDABLE, "DuplicateProducerError", ["reader", "one", "two"]),
        ("cycle", CYCLE, "CycleError", ["first", "second"]),
    ],
)
def test_what_the_command_line_refuses_the_kernel_refuses(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    cells: list[str],
    error: str,
    names: list[str],
) -> None:
    path = write(make_notebook(cells, name=name), tmp_path / f"{name}.ipynb")
    code, message = _cli_error(path, capsys)
    assert code == 2
    found = _kernel_error(path)
    assert found is not None, "the kernel ran the notebook without a word"
    ename, evalue = found
    assert ename == error
    for task in names:
        assert task in message and task in evalue


STALENESS = [
    "%load_ext kernelflow",
    "def log(name):\n    with open('ran.log', 'a') as f:\n        f.write(name + ' ')",
    "n = 3",
    "%%task load\nlog('load')\nxs = list(range(n))",
    "%%task double\nlog('double')\nys = [2 * x for x in xs]",
    "%%task total\nlog('total')\nt = sum(ys)",
    "%%task other\nlog('other')\nword = 'kept'",
    "%%task double --defer\nlog('double')\nys = [3 * x for x in xs]",  # edited upstream
    "%workflow status",
    "n = 4",  # a changed parameter
    "%workflow status",
    "open('ran.log', 'w').close()\n%workflow run",
    "print('RAN', open('ran.log').read(), 'T', t)",
    "%workflow lineage total",
    "%workflow lineage t",
]


def test_staleness_reruns_and_lineage_in_a_real_kernel(tmp_path: Path) -> None:
    path = write(make_notebook(STALENESS, name="staleness"), tmp_path / "staleness.ipynb")
    done = execute(nbformat.read(path, as_version=4), cwd=tmp_path)
    after_edit, after_param = (outputs_text(done.cells[i]) for i in (8, 10))
    assert re.search(r"double\s+stale\s+code changed", after_edit)
    assert re.search(r"total\s+stale\s+upstream double is stale", after_edit)
    assert re.search(r"load\s+ran", after_edit)
    assert re.search(r"load\s+stale\s+input n changed", after_param)
    assert re.search(r"other\s+ran", after_param)
    ran_line = outputs_text(done.cells[12])
    assert sorted(ran_line.split("RAN", 1)[1].split("T")[0].split()) == ["double", "load", "total"]
    assert ran_line.strip().endswith("T 18")  # 3 * (0 + 1 + 2 + 3)
    by_task, by_output = (done.cells[i].outputs[0]["data"]["text/plain"] for i in (13, 14))
    for table in (by_task, by_output):
        assert "total" in table and "ys" in table and "double" in table
        assert "base64" not in table and "pickle" not in table


@pytest.mark.parametrize("cells", [UNDECIDABLE, CYCLE], ids=["undecidable", "cycle"])
def test_run_top_to_bottom_the_kernel_refuses_at_the_first_cell(
    tmp_path: Path, cells: list[str]
) -> None:
    """Without ``--defer`` the first cell runs before the kernel has seen the later ones:
    it is refused then, for the name it reads that nothing has made yet."""
    plain = [cell.replace(" --defer", "") for cell in cells]
    path = write(make_notebook(plain, name="plain"), tmp_path / "plain.ipynb")
    found = _kernel_error(path)
    assert found is not None
    ename, evalue = found
    assert ename == "UndefinedNameError" and "not defined in this kernel" in evalue
