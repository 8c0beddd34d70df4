"""%%task and %workflow in a real kernel: outputs, pictures, widgets, errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from notebook_runner import execute, make_notebook, outputs_text

pytestmark = pytest.mark.notebook


def _widget_states(notebook: object) -> list[dict]:
    state = notebook.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]
    return [model["state"] for model in state["state"].values()]


def test_show_run_lineage_cache_and_displays(tmp_path: Path) -> None:
    notebook = execute(
        make_notebook(
            [
                "%load_ext kernelflow\n%matplotlib inline",
                "import matplotlib.pyplot as plt\nscale = 2",
                "%%task numbers --cache\nxs = [1, 2, 3]\nprint('made', len(xs))",
                "%%task doubled --defer\nys = [x * scale for x in xs]",
                "%%task chart\nfig, ax = plt.subplots()\nax.plot(ys)\nlen(ys)",
                "%workflow show",
                "%workflow run -p scale 10",
                "print(ys)",
                "%workflow lineage chart",
                "%workflow cache ls",
                "%workflow runs",
                "%workflow",
            ]
        ),
        cwd=tmp_path,
    )
    cells = notebook.cells
    assert "made 3" in outputs_text(cells[2])
    assert "doubled: registered" in outputs_text(cells[3])
    chart_outputs = cells[4].outputs
    assert any("image/png" in o.get("data", {}) for o in chart_outputs)  # the plot shows
    assert any(o.get("data", {}).get("text/plain") == "3" for o in chart_outputs)
    svg = cells[5].outputs[0]["data"]["image/svg+xml"]
    assert "<svg" in svg and "numbers" in svg and "doubled" in svg and "chart" in svg
    view = cells[6].outputs[0]["data"]
    assert "application/vnd.jupyter.widget-view+json" in view
    assert "3/3 tasks done" in view["text/plain"]
    assert "numbers: cached" in view["text/plain"]
    bars = [s for s in _widget_states(notebook) if s.get("_model_name") == "IntProgressModel"]
    assert bars and bars[-1]["value"] == 3 and bars[-1]["max"] == 3
    assert "[10, 20, 30]" in outputs_text(cells[7])  # -p scale 10 reached the task
    lineage = outputs_text(cells[8])  # a table: the task, its input ys and who made it
    assert "chart" in lineage and "ys" in lineage and "doubled" in lineage
    html = cells[8].outputs[0]["data"]["text/html"]
    assert "<table" in html and "inline" not in html and "gAWV" not in html  # no pickle bytes
    assert "numbers" in outputs_text(cells[9])
    assert "succeeded" in outputs_text(cells[10])
    usage = outputs_text(cells[11])
    assert usage.startswith("usage: %workflow") and "lineage" in usage and "required" not in usage


def test_failures_and_wrong_types_are_one_paragraph_naming_the_task(tmp_path: Path) -> None:
    notebook = execute(
        make_notebook(
            [
                "%load_ext kernelflow",
                "%%task broken\nvalue = 1 / 0",
                "%%task typed\ncount: int = 'three'",
                "%%task reads_nothing\nresult = undefined_name + 1",
                "%%task ok\nfine = 1",
                "%%task quiet\nfine * 2;",
            ]
        ),
        cwd=tmp_path,
        allow_errors=True,
    )
    broken = outputs_text(notebook.cells[1])
    assert "ZeroDivisionError" in broken and "task 'broken' failed" in broken
    [user_error] = [o for o in notebook.cells[1].outputs if o.get("ename") == "ZeroDivisionError"]
    traceback = re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(user_error.traceback))
    assert "value = 1 / 0" in traceback  # the user's line, as in a cell's traceback
    assert "kernelflow" not in traceback  # and none of the engine's frames
    typed = outputs_text(notebook.cells[2])
    assert "'typed'" in typed and "'count'" in typed and "expected int" in typed
    assert "str" in typed
    missing = outputs_text(notebook.cells[3])
    assert "'undefined_name'" in missing and "not defined in this kernel" in missing
    assert "ok: ran in" in outputs_text(notebook.cells[4])
    assert [o.output_type for o in notebook.cells[5].outputs] == ["stream"]  # ';': no value


def test_every_example_notebook_runs(tmp_path: Path) -> None:
    import nbformat

    root = Path(__file__).resolve().parents[2] / "notebooks"
    paths = sorted(root.glob("*.ipynb"))
    assert paths, "notebooks/ has no example notebooks"
    for path in paths:
        notebook = execute(nbformat.read(path, as_version=4), cwd=tmp_path)
        errors = [
            o for c in notebook.cells for o in c.get("outputs", []) if o.output_type == "error"
        ]
        assert not errors, f"{path.name}: {json.dumps(errors)[:500]}"
