"""One notebook, the ways it runs, one store: the same DAG and the same cache entries.

Each example notebook (and one written with every pattern of real notebooks)
runs cell by cell in a real kernel, then with ``kernelflow run`` on the same
store: every cached task computed in the kernel is a cache hit for the command
line. Then the other way round on a fresh store. Both ways build the DAG with
the same code; this checks they also agree on the cache keys.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

import nbformat
import pytest
from conftest import ROOT
from notebook_runner import execute, make_notebook, outputs_text, write

import kernelflow
from kernelflow.cli import main

PATTERNS = [
    "%load_ext kernelflow",
    ("n: int = 4", ["parameters"]),
    "%%task load --cache\nimport math\ndf = [float(i) for i in range(n)]",
    "%%task clean --cache\ndf = [math.sqrt(v) for v in df]",
    "%%task fix --cache\ndf.append(10.0)",
    "%%task write --cache\nwith open('total.txt', 'w') as handle:\n    handle.write(str(sum(df)))",
    "%%task read --cache\ntotal = round(float(open('total.txt').read()), 3)",
    "%workflow run",
]

# Deferred cells run when a later cell needs them; a --map cell runs per item (issue 12).
DEFERRED = [
    "%load_ext kernelflow",
    ("words = ['kiwi', ' fig', 'banana ']", ["parameters"]),
    "%%task tidy --cache --defer\nclean = [w.strip() for w in words]",
    "%%task lengths --map clean --cache\nsize: int = len(clean)\nupper: str = clean.upper()",
    "%%task longest --cache --defer\nbest = max(size)",
    "%%task report --cache\nsummary = f'{best} of {len(upper)}'",
]


def _notebooks(tmp_path: Path) -> list[Path]:
    paths = sorted((ROOT / "notebooks").glob("*.ipynb"))
    made = write(make_notebook(PATTERNS, name="patterns"), tmp_path / "patterns.ipynb")
    deferred = write(make_notebook(DEFERRED, name="deferred"), tmp_path / "deferred.ipynb")
    return [*paths, made, deferred]


def _cached_tasks(notebook: Path) -> set[str]:
    workflow = kernelflow.load_notebook(notebook)
    return {name for name, task in workflow.built.tasks.items() if task.options.cache}


def test_command_line_then_kernel_cells_say_cached(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    path = write(make_notebook(PATTERNS[:-1], name="patterns"), work / "patterns.ipynb")
    os.chdir(work)
    assert main(["run", str(path), "--quiet"]) == 0
    done = execute(nbformat.read(path, as_version=4), cwd=work)
    task_cells = [c for c in done.cells if c.source.startswith("%%task")]
    lines = [outputs_text(c).strip().splitlines()[-1] for c in task_cells]
    assert all(re.search(r": cached", line) for line in lines), lines


def test_the_export_run_by_papermill_after_the_kernel_is_all_cache_hits(tmp_path: Path) -> None:
    """The fourth way: papermill on the exported notebook, on the same store, reruns nothing."""
    import subprocess
    import sys

    work = tmp_path / "work"
    work.mkdir()
    path = write(make_notebook(PATTERNS[:-1], name="patterns"), work / "patterns.ipynb")
    executed = execute(nbformat.read(path, as_version=4), cwd=work)
    done = kernelflow.export(path, work / "exports")
    out = work / "out.ipynb"
    ran = subprocess.run(
        [sys.executable, "-m", "papermill", str(done.path), str(out), "--no-progress-bar"],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=work,
    )
    assert ran.returncode == 0, ran.stderr
    cells = [c for c in nbformat.read(out, as_version=4).cells if c.source.startswith("%%task")]
    lines = [outputs_text(c).strip().splitlines()[0] for c in cells]
    assert lines and all(": cached" in line for line in lines), lines
    kernel_total = next(
        outputs_text(c) for c in executed.cells if c.source.startswith("%%task read")
    )
    assert ": cached" in kernel_total or ": ran" in kernel_total
    assert kernelflow.read_outputs(out)["total"] == round(sum(v**0.5 for v in range(4)) + 10, 3)


# --- the four ways on one store: same DAG, interfaces, version and cache keys -------------

GRAPH_OF_KERNEL = (
    "import json\nfrom kernelflow.api import open_kernel_session\n"
    "_target = open_kernel_session(get_ipython()).workflow()\n"
    "print('GRAPH', json.dumps({'version': _target.version, 'graph': _shape(_target.graph)}))"
)


def _shape(graph: Any) -> dict[str, Any]:
    """What must agree: each task's upstream, input and output names and types."""
    from kernelflow._core.interface import type_name

    return {
        node: {
            "upstream": sorted(graph.nodes[node].upstream()),
            "inputs": {k: type_name(t) for k, t in graph.nodes[node].task.interface.inputs.items()},
            "outputs": {
                k: type_name(t) for k, t in graph.nodes[node].task.interface.outputs.items()
            },
            "setup data": sorted(graph.nodes[node].task.key_inputs()),
        }
        for node in graph.order
    }


def _deferred(source: str) -> str:
    """A task cell registered without running (for the ``%workflow run`` way)."""
    if not source.startswith("%%task") or "--defer" in source.splitlines()[0]:
        return source
    header, _, body = source.partition("\n")
    return f"{header} --defer\n{body}"


def _latest_run_keys() -> tuple[str, dict[str, tuple[str, str | None]]]:
    """The newest run's version, and each node's (status, cache key)."""
    runs = kernelflow.api.open_store().runs
    run = runs.list_runs(limit=1)[0]
    rows = runs.node_executions(run["run_id"])
    return run["version"], {r["node"]: (r["status"], r["cache_key"]) for r in rows}


@pytest.mark.parametrize("which", ["quickstart", "sales_cleanup", "patterns", "deferred"])
def test_the_four_ways_build_one_workflow_and_share_its_cache(
    tmp_path: Path, which: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import inspect
    import json
    import subprocess
    import sys

    work = tmp_path / "work"
    work.mkdir()
    os.chdir(work)
    source = next(p for p in _notebooks(tmp_path) if p.stem == which)
    path = Path(shutil.copy(source, work / source.name))
    file_workflow = kernelflow.load_notebook(path)
    cached = _cached_tasks(path)

    # 1. cell by cell in a kernel: computes every task
    execute(nbformat.read(path, as_version=4), cwd=work)
    keys_by_cell = {}
    for run in kernelflow.api.open_store().runs.list_runs():
        for row in kernelflow.api.open_store().runs.node_executions(run["run_id"]):
            keys_by_cell.setdefault(row["node"], row["cache_key"])

    # 2. %workflow run in a fresh kernel, the task cells registered first
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        cell.source = _deferred(cell.source)
    helper = "from typing import Any\n" + inspect.getsource(_shape)
    notebook.cells.append(nbformat.v4.new_code_cell("%workflow run"))
    notebook.cells.append(nbformat.v4.new_code_cell(f"{helper}\n{GRAPH_OF_KERNEL}"))
    done = execute(notebook, cwd=work)
    printed = outputs_text(done.cells[-1])
    kernel = json.loads(printed.split("GRAPH", 1)[1])
    version_2, keys_2 = _latest_run_keys()

    # 3. kernelflow run of the saved notebook
    assert main(["run", str(path), "--quiet"]) == 0
    version_3, keys_3 = _latest_run_keys()

    # 4. papermill on the export
    exported = kernelflow.export(path, work / "exports")
    ran = subprocess.run(
        [sys.executable, "-m", "papermill", str(exported.path), str(work / "out.ipynb")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=work,
    )
    assert ran.returncode == 0, ran.stderr
    version_4, keys_4 = _latest_run_keys()
    capsys.readouterr()

    # The one difference: data a plain cell made (FEATURES = [...]) is a parameter of the
    # kernel's workflow, and setup data in the file's, where only the parameters cell makes
    # parameters; both enter the cache key by content, so the keys below are equal.
    file_shape = _shape(file_workflow.graph)
    assert list(kernel["graph"]) == list(file_shape)
    for node, in_kernel in kernel["graph"].items():
        in_file = file_shape[node]
        assert in_kernel["upstream"] == in_file["upstream"], node
        assert in_kernel["outputs"] == in_file["outputs"], node
        assert set(in_kernel["inputs"]) == {*in_file["inputs"], *in_file["setup data"]}, node
        assert {k: in_kernel["inputs"][k] for k in in_file["inputs"]} == in_file["inputs"], node
    # The kernel's workflow has its own version (those parameters, and no setup cells
    # to hash); the file, its export and their runs share one.
    assert kernel["version"] == version_2
    assert version_3 == version_4 == file_workflow.version == exported.version
    for keys in (keys_2, keys_3, keys_4):
        assert {t: keys[t][1] for t in cached} == {t: keys_by_cell[t] for t in cached}
        assert {t for t in cached if keys[t][0] != "cached"} == set()
