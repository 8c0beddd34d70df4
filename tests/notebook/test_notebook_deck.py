"""A ``%%task NAME --deck`` cell keeps what it displays as its deck (issue 15, point 4)."""

from __future__ import annotations

from pathlib import Path

import pytest
from notebook_runner import execute, make_notebook

import kernelflow
from kernelflow.cli import main
from kernelflow.errors import KernelflowError
from kernelflow.notebook.cells import parse_header, parse_tags

pytestmark = pytest.mark.notebook


def test_a_deck_cell_keeps_its_displays_and_plots(tmp_path: Path) -> None:
    notebook = execute(
        make_notebook(
            [
                "%load_ext kernelflow\n%matplotlib inline",
                "import matplotlib.pyplot as plt\nfrom IPython.display import HTML, display",
                "%%task chart --deck\ndisplay(HTML('<b>rows: 3</b>'))\n"
                "fig, ax = plt.subplots()\nax.plot([1, 2, 3])\nn = 3",
                "%%task plain\nm = n + 1\ndisplay(HTML('<i>quiet</i>'))",
            ]
        ),
        cwd=tmp_path,
    )
    chart = notebook.cells[2].outputs
    assert any("image/png" in o.get("data", {}) for o in chart)  # the cell still shows the plot
    runs = kernelflow.api.runs()
    found = {}
    for run_id in runs["run_id"]:
        for task in ("chart", "plain"):
            try:
                found.setdefault(task, kernelflow.api.deck(run_id, task))
            except KernelflowError:
                pass
    assert "<b>rows: 3</b>" in found["chart"]
    assert '<img src="data:image/png;base64,' in found["chart"]
    assert "plain" not in found  # opt-in: a cell without --deck keeps no deck

    run_id = next(r for r in runs["run_id"] if "chart" in str(kernelflow.api.run_report(r)))
    out = tmp_path / "report.html"
    assert main(["report", run_id, "--out", str(out)]) == 0
    assert "rows: 3" in out.read_text()


def test_the_deck_option_as_a_flag_and_as_a_tag() -> None:
    assert parse_header("chart --deck --cache").deck
    assert not parse_header("chart").deck
    spec = parse_tags(["task:chart", "deck"])
    assert spec is not None and spec.deck
