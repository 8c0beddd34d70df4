"""``api.lineage_table``: the rows of ``%workflow lineage``, for runs made anywhere.

The kernel's side (which of its runs, constants a cell read) is in
``test_magics.py``; here the runs are a notebook file run without a kernel.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

from kernelflow import api


def _run_flow(tmp_path: Path, n: int) -> str:
    cells = [
        new_code_cell("n = 3", metadata={"tags": ["parameters"]}),
        new_code_cell("%%task make\nxs = list(range(n))"),
        new_code_cell("%%task add\ntotal: int = sum(xs)"),
    ]
    path = tmp_path / "flow.ipynb"
    nbformat.write(new_notebook(cells=cells), path)
    result = api.run(path, {"n": n})
    assert result.status == "succeeded"
    return result.run_id


def test_rows_name_the_value_its_inputs_their_producers_and_parameters(tmp_path: Path) -> None:
    run_id = _run_flow(tmp_path, 4)
    rows = {row["name"]: row for row in api.lineage_table("total")}
    assert set(rows) == {"total", "xs"}
    assert (rows["total"]["role"], rows["total"]["value"], rows["total"]["type"]) == (
        "output",
        "6",
        "int",
    )
    assert (rows["total"]["task"], rows["total"]["run"]) == ("add", run_id)
    assert (rows["xs"]["role"], rows["xs"]["value"], rows["xs"]["task"]) == (
        "input",
        "[0, 1, 2, 3]",
        "make",
    )
    make = api.lineage_table("make")
    assert [(r["role"], r["name"], r["value"], r["task"]) for r in make] == [
        ("output", "xs", "[0, 1, 2, 3]", "make"),
        ("input", "n", "4", "parameter"),
    ]
    assert all(list(row) == list(api.LINEAGE_COLUMNS) for row in make)


def test_the_newest_run_answers_and_a_lost_value_is_said_not_raised(
    tmp_path: Path, store_home: Path
) -> None:
    _run_flow(tmp_path, 2)
    newest = _run_flow(tmp_path, 2000)  # xs is large: kept in a file, not in the run store
    [output, n] = api.lineage_table("xs")
    assert (output["run"], output["value"], n["value"]) == (newest, "list of 2000 items", "2000")
    shutil.rmtree(store_home / "artifacts")
    [output, n] = api.lineage_table("xs")
    assert output["value"] == "(not readable: missing)" and output["task"] == "make"
