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
    [view] = cells[6].outputs  # the live view became its snapshot: one output, no widget
    assert "application/vnd.jupyter.widget-view+json" not in view["data"]
    assert "3/3 tasks done" in view["data"]["text/plain"]
    assert "numbers: cached" in view["data"]["text/plain"]
    assert "chart" in view["data"]["text/html"] and "image/png" in view["data"]["text/html"]
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


def test_workflow_run_puts_each_tasks_output_in_its_row_and_leaves_a_snapshot(
    tmp_path: Path,
) -> None:
    """Issue 12, point 7: prints, tables and plots in their task's row, HTML at the end."""
    notebook = execute(
        make_notebook(
            [
                "%load_ext kernelflow\n%matplotlib inline",
                "import sys\nimport matplotlib.pyplot as plt\nimport pandas as pd\nn = 3",
                "%%task table --defer\ndf = pd.DataFrame({'x': range(n)})\n"
                "print('table has', len(df), 'rows')\ndf",
                "%%task chart --defer\nprint('charting', file=sys.stderr)\n"
                "fig, ax = plt.subplots()\nax.plot(df['x']);",
                "%%task broken --defer\nprint('about to fail')\nbad = len(df) / 0",
                "%workflow run",
            ]
        ),
        cwd=tmp_path,
        allow_errors=True,
    )
    run_cell = notebook.cells[5]
    # The snapshot, then the one-paragraph error: no task output below the view.
    assert [o.output_type for o in run_cell.outputs] == ["display_data", "error"]
    data = run_cell.outputs[0]["data"]
    assert "application/vnd.jupyter.widget-view+json" not in data
    snapshot = data["text/html"]
    for text in ("table", "chart", "broken", "succeeded", "failed", "table has 3 rows"):
        assert text in snapshot
    assert "charting" in snapshot and "about to fail" in snapshot
    assert "<table border" in snapshot  # the DataFrame's own HTML, in its row
    assert "data:image/png;base64," in snapshot  # the plot, in its row
    assert "<details open><summary>broken" in snapshot and "ZeroDivisionError" in snapshot
    assert "    | table has 3 rows" in data["text/plain"]
    # While the run went on, each task's output was in that task's Output widget.
    by_task = _outputs_by_task(notebook)
    assert by_task["table"][0] == {
        "output_type": "stream",
        "name": "stdout",
        "text": "table has 3 rows\n",
    }
    assert "text/html" in by_task["table"][1]["data"]
    assert [o.get("name") for o in by_task["chart"]] == ["stderr", None]
    assert "image/png" in by_task["chart"][1]["data"]
    assert [o["output_type"] for o in by_task["broken"]] == ["stream", "error"]


def _outputs_by_task(notebook: object) -> dict[str, list[dict]]:
    """The outputs of each task's Output widget, by task name (the accordion's titles)."""
    state = notebook.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    [accordion] = [m["state"] for m in state.values() if m["model_name"] == "AccordionModel"]
    found = {}
    for title, child in zip(accordion["titles"], accordion["children"]):
        found[title.split(":")[0]] = state[child.removeprefix("IPY_MODEL_")]["state"]["outputs"]
    return found


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
