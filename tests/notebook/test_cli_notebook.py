"""``kernelflow run NOTEBOOK``: no kernel needed; wrong parameters exit 2 before any task."""

from __future__ import annotations

from pathlib import Path

from conftest import ROOT
from notebook_runner import make_notebook, write
from test_cli import kernelflow_cli

import kernelflow

QUICKSTART = str(ROOT / "notebooks" / "quickstart.ipynb")


def test_quickstart_runs_from_the_command_line(tmp_path: Path) -> None:
    out = tmp_path / "out.ipynb"
    done = kernelflow_cli(
        "run", QUICKSTART, "-p", "n_rows", "400", "-p", "noise", "1.0", "--output", str(out)
    )
    assert done.returncode == 0, done.stderr
    mse = float(done.stdout.split("mse = ")[1].split()[0])
    assert 0.6 < mse < 1.5  # noise 1.0: the error is about its variance
    outputs = kernelflow.read_outputs(out)
    assert outputs["mse"] == mse and len(outputs["df"]) == 400


def test_wrong_parameter_type_exits_2_before_any_task(tmp_path: Path, store_home: Path) -> None:
    done = kernelflow_cli("run", QUICKSTART, "-p", "n_rows", "many")
    assert done.returncode == 2
    assert "parameter 'n_rows'" in done.stderr and "int" in done.stderr
    assert not (store_home / "runs.sqlite").exists()  # nothing ran, nothing recorded


def test_unknown_parameter_exits_2(tmp_path: Path) -> None:
    done = kernelflow_cli("run", QUICKSTART, "-p", "rows", "5")
    assert done.returncode == 2 and "no parameter 'rows'" in done.stderr


def test_structure_errors_exit_2_and_no_task_runs(tmp_path: Path) -> None:
    log = tmp_path / "ran.log"
    path = write(
        make_notebook(
            [
                f"def log(name):\n    open({str(log)!r}, 'a').write(name)",
                "%%task c\ny = x",
                "%%task a\nlog('a')\nx = 1",
                "%%task b\nlog('b')\nx = 2\nz = missing",
            ]
        ),
        tmp_path / "bad.ipynb",
    )
    done = kernelflow_cli("run", str(path))
    assert done.returncode == 2
    assert "2 problems in the notebook" in done.stderr
    assert "order cannot decide" in done.stderr and "'missing'" in done.stderr
    assert "cell 2 (task 'c')" in done.stderr  # the notebook's own cell numbers
    assert not log.exists()


def test_show_prints_tasks_types_and_edges(tmp_path: Path) -> None:
    svg = tmp_path / "dag.svg"
    done = kernelflow_cli("show", QUICKSTART, "--svg", str(svg))
    assert done.returncode == 0, done.stderr
    assert "parameter n_rows: int = 1000" in done.stdout
    assert "in  df: pandas.DataFrame <- make_dataset.df" in done.stdout
    assert "outputs: mse <- evaluate.mse" in done.stdout
    assert svg.read_text().startswith("<svg")
