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


@pytest.mark.parametrize("which", ["quickstart", "sales_cleanup", "patterns", "deferred"])
def test_kernel_then_command_line_is_all_cache_hits(
    tmp_path: Path, which: str, capsys: pytest.CaptureFixture[str]
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    path = next(p for p in _notebooks(tmp_path) if p.stem == which)
    copy = shutil.copy(path, work / path.name)
    execute(nbformat.read(copy, as_version=4), cwd=work)
    os.chdir(work)
    assert main(["run", str(copy), "--quiet"]) == 0
    history = kernelflow.runs()
    run_id = history.run_id[0]
    statuses = {
        row["node"]: row["status"]
        for row in kernelflow.api.open_store().runs.node_executions(run_id)
    }
    expected = _cached_tasks(Path(copy))
    assert expected, "the notebook has cached tasks"
    assert {t for t in expected if statuses.get(t) != "cached"} == set()
    capsys.readouterr()


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
