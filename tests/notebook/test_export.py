"""Export → validate → papermill with -p → read_outputs; versions, diffs, the cache, errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from notebook_runner import make_notebook, write
from test_cli import kernelflow_cli

import kernelflow
from kernelflow.notebook.export import export
from kernelflow.notebook.versions import diff, versions

pytestmark = pytest.mark.notebook

TASK_TOTAL = "%%task total --cache\nlog('total')\ntotal: int = sum(values) * factor"


def _source(tmp_path: Path, task_total: str = TASK_TOTAL) -> Path:
    log = tmp_path / "ran.log"
    notebook = make_notebook(
        [
            ("count: int = 3\nfactor: int = 1", ["parameters"]),
            "%load_ext kernelflow\n"
            f"def log(name):\n    with open({str(log)!r}, 'a') as handle:\n"
            "        handle.write(name + '\\n')",
            task_total,
            "%%task values --cache\nlog('values')\nvalues = list(range(count))",
            ("label: str = f'total={total}'\nlog('label')", ["task:label"]),
        ],
        name="summing",
    )
    return write(notebook, tmp_path / "summing.ipynb")


def _papermill(exported: Path, out: Path, *params: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "papermill", str(exported), str(out), "--no-progress-bar", *params],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=180,
        cwd=exported.parent,
    )


def _ran(tmp_path: Path) -> list[str]:
    log = tmp_path / "ran.log"
    lines = log.read_text().splitlines() if log.exists() else []
    log.unlink(missing_ok=True)
    return lines


def test_export_then_papermill_then_read_outputs(tmp_path: Path, store_home: Path) -> None:
    os.environ["KERNELFLOW_TEST_SECRET"] = "do-not-leak-4242"
    done = export(_source(tmp_path), tmp_path / "exports")
    assert done.new and done.path == tmp_path / "exports" / "summing" / f"{done.version}.ipynb"
    notebook = nbformat.read(done.path, as_version=4)
    nbformat.validate(notebook)
    assert "do-not-leak-4242" not in done.path.read_text()
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert code[0].metadata.tags == ["parameters"]
    assert "start_exported_run" in code[1].source
    assert [c.metadata.tags for c in code[3:]] == [["task:values"], ["task:total"], ["task:label"]]
    assert all(c.source.startswith("%%task ") for c in code[3:])
    meta = notebook.metadata.kernelflow
    assert (meta.workflow, meta.version, meta.outputs) == ("summing", done.version, ["label"])
    assert meta.inputs == {"count": "int", "factor": "int"} and "created" in meta

    out = tmp_path / "out.ipynb"
    first = _papermill(done.path, out, "-p", "count", "5", "-p", "factor", "2")
    assert first.returncode == 0, first.stderr
    assert kernelflow.read_outputs(out) == {
        "values": [0, 1, 2, 3, 4],
        "total": 20,
        "label": "total=20",
    }
    assert _ran(tmp_path) == ["values", "total", "label"]
    history = kernelflow.runs()
    assert (history.workflow[0], history.version[0], history.status[0]) == (
        "summing",
        done.version,
        "succeeded",
    )

    second = _papermill(
        done.path, tmp_path / "again.ipynb", "-p", "count", "5", "-p", "factor", "2"
    )
    assert second.returncode == 0, second.stderr
    assert _ran(tmp_path) == ["label"]  # the cached tasks did not run again


def test_a_wrongly_typed_parameter_fails_before_any_task(tmp_path: Path) -> None:
    done = export(_source(tmp_path), tmp_path / "exports")
    failed = _papermill(done.path, tmp_path / "out.ipynb", "-p", "count", "many")
    assert failed.returncode != 0
    assert "parameter 'count'" in failed.stderr and "expects int" in failed.stderr
    assert _ran(tmp_path) == []


UNTYPED = [
    ("fit_intercept = None\nalpha = None\nlabel = None", ["parameters"]),
    "%load_ext kernelflow",
    "%%task report\nseen: dict = {'fit_intercept': fit_intercept, 'alpha': alpha, 'label': label}",
]
AS_PAPERMILL_TAKES_THEM = ("-p", "fit_intercept", "False", "-p", "alpha", "0.5", "-p", "label", "x")


def test_untyped_parameters_read_the_same_in_kernelflow_run_and_papermill(tmp_path: Path) -> None:
    """``x = None`` parameters: ``-p x False`` is a bool on both paths (issue 11, point 6)."""
    source = write(make_notebook(UNTYPED, name="untyped"), tmp_path / "untyped.ipynb")
    expected = {"fit_intercept": False, "alpha": 0.5, "label": "x"}
    ran = kernelflow_cli(
        "run", str(source), *AS_PAPERMILL_TAKES_THEM, "--output", str(tmp_path / "ran.ipynb")
    )
    assert ran.returncode == 0, ran.stderr
    assert repr(expected) in ran.stdout  # the task's output, as `run` prints it
    exported = kernelflow_cli("export", str(source), "--out", str(tmp_path / "exports"))
    assert exported.returncode == 0, exported.stderr
    exported_path = Path(exported.stdout.splitlines()[-1])
    papermill = _papermill(exported_path, tmp_path / "pm.ipynb", *AS_PAPERMILL_TAKES_THEM)
    assert papermill.returncode == 0, papermill.stderr
    for out in (tmp_path / "ran.ipynb", tmp_path / "pm.ipynb"):
        seen = kernelflow.read_outputs(out)["seen"]
        assert seen == expected, out.name
        assert {k: type(v) for k, v in seen.items()} == {k: type(v) for k, v in expected.items()}


def test_versions_are_stable_and_new_code_is_a_new_version(tmp_path: Path) -> None:
    source = _source(tmp_path)
    first = export(source, tmp_path / "exports")
    stamp = first.path.stat().st_mtime_ns
    again = export(source, tmp_path / "exports")
    assert (again.version, again.path, again.new) == (first.version, first.path, False)
    assert first.path.stat().st_mtime_ns == stamp

    _source(tmp_path, TASK_TOTAL.replace("* factor", "* factor + 1"))
    changed = export(source, tmp_path / "exports")
    assert changed.new and changed.version != first.version and first.path.exists()
    listed = versions("summing", tmp_path / "exports")
    assert [v["version"] for v in listed] == [first.version, changed.version]
    assert listed[1]["parent"] == first.version
    assert diff("summing", first.version, changed.version, tmp_path / "exports") == {
        "added": [],
        "removed": [],
        "changed": ["total"],
    }

    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "kernelflow",
            "versions",
            "summing",
            "--out",
            str(tmp_path / "exports"),
        ],
        capture_output=True,
        text=True,
    )
    assert first.version in cli.stdout and changed.version in cli.stdout
    cli_diff = subprocess.run(
        [
            sys.executable,
            "-m",
            "kernelflow",
            "diff",
            "summing",
            first.version,
            changed.version,
            "--out",
            str(tmp_path / "exports"),
        ],
        capture_output=True,
        text=True,
    )
    assert "changed: total" in cli_diff.stdout
    index = json.loads((tmp_path / "exports" / "summing" / "versions.json").read_text())
    assert index["workflow"] == "summing"


def test_control_cells_are_skipped_by_run_and_left_out_of_the_export(tmp_path: Path) -> None:
    """A notebook written as the README teaches, with %workflow cells, goes to production."""
    path = write(
        make_notebook(
            [
                "%load_ext kernelflow",
                ("n: int = 4", ["parameters"]),
                "%%task square\nsq = n * n",
                "%workflow show",
                "%workflow run\n%workflow runs  # history",
            ]
        ),
        tmp_path / "steered.ipynb",
    )
    workflow = kernelflow.load_notebook(path)
    kinds = [cell.kind for cell in workflow.cells]
    assert kinds == ["control", "parameters", "task", "control", "control"]
    assert kernelflow.run(path).outputs == {"sq": 16}
    done = export(path, tmp_path / "exports")
    sources = [c.source for c in nbformat.read(done.path, as_version=4).cells]
    assert not any("%workflow" in source for source in sources)
    out = tmp_path / "out.ipynb"
    ran = _papermill(done.path, out, "-p", "n", "5")
    assert ran.returncode == 0, ran.stderr
    assert kernelflow.read_outputs(out) == {"sq": 25}
