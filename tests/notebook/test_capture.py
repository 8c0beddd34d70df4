"""Issue 12, point 7, in-process: each task's output goes to its row, and a snapshot stays.

A real InteractiveShell with the extension loaded stands in for a kernel (it
gets a ``kernel`` attribute, so the magics draw widgets, and a display publisher
that records what is displayed); the widgets are real ipywidgets models. The
same behaviour on a real kernel is in ``test_kernel_magics.py``.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from IPython.core.displaypub import CapturingDisplayPublisher
from IPython.core.interactiveshell import InteractiveShell
from shell_runner import fails, kernel_shell, run

from kernelflow_jupyter.snapshot import output_html
from kernelflow_jupyter.widgets import ProgressView

COUNT = "%%task {name} --defer\nfor i in range(3):\n    print('{name}', i)\n    time.sleep(0.05)\n"


@pytest.fixture
def kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[InteractiveShell]:
    """A shell that looks like a kernel's, with ``time`` imported."""
    with kernel_shell(tmp_path, monkeypatch) as shell:
        monkeypatch.setattr(shell, "kernel", object(), raising=False)
        monkeypatch.setattr(shell, "display_pub", CapturingDisplayPublisher())
        run(shell, "import time")
        yield shell


@pytest.fixture
def views(monkeypatch: pytest.MonkeyPatch) -> list[ProgressView]:
    """The progress views the runs made, recorded as they finish."""
    seen: list[ProgressView] = []
    finish = ProgressView.finish

    def recording(view: ProgressView) -> None:
        seen.append(view)
        finish(view)

    monkeypatch.setattr(ProgressView, "finish", recording)
    return seen


def printed(view: ProgressView, task: str) -> str:
    """The text of the task's Output widget, as its model holds it now."""
    return "".join(o.get("text", "") for o in view.output_widgets[task].outputs)


def published(shell: InteractiveShell) -> list[dict[str, Any]]:
    return shell.display_pub.outputs


def test_parallel_tasks_print_into_their_own_output_widgets(
    kernel: InteractiveShell, views: list[ProgressView], capsys: pytest.CaptureFixture[str]
) -> None:
    run(kernel, COUNT.format(name="left") + "left_done = True")
    run(kernel, COUNT.format(name="right") + "right_done = True")
    capsys.readouterr()
    run(kernel, "%workflow run --parallel 2")
    assert capsys.readouterr().out == ""  # nothing below the view
    [view] = views
    for name in ("left", "right"):
        [output] = view.output_widgets[name].outputs
        assert output == {
            "output_type": "stream",
            "name": "stdout",
            "text": f"{name} 0\n{name} 1\n{name} 2\n",
        }
    left, right = view.tasks.titles
    assert left.startswith("left: succeeded in") and right.startswith("right: succeeded in")


def test_a_running_tasks_output_reaches_its_widget_before_the_task_ends(
    kernel: InteractiveShell, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shown: list[ProgressView] = []
    show = ProgressView.show
    monkeypatch.setattr(ProgressView, "show", lambda view: (shown.append(view), show(view)))
    release = tmp_path / "release"
    kernel.user_ns["released"] = release.exists  # setup code: a bound method, not a value
    run(
        kernel,
        "%%task slow --defer\nprint('started')\nprint('waiting')\n"
        "deadline = time.monotonic() + 10\n"
        "while not released() and time.monotonic() < deadline:\n    time.sleep(0.01)\n"
        "seen: bool = released()",
    )

    def release_once_printed() -> None:
        while not shown or printed(shown[0], "slow") != "started\nwaiting\n":
            time.sleep(0.01)
        release.touch()

    watcher = threading.Thread(target=release_once_printed, daemon=True)
    watcher.start()
    run(kernel, "%workflow run")
    assert kernel.user_ns["seen"] is True  # the widget had the print while the task waited


def test_the_view_is_replaced_by_a_static_snapshot_when_the_run_ends(
    kernel: InteractiveShell, views: list[ProgressView]
) -> None:
    run(kernel, COUNT.format(name="counts") + "total: int = 3")
    run(kernel, "%%task broken --defer\nprint('about to fail', total)\nbad = total / 0")
    error = fails(kernel, "%workflow run")
    assert "task 'broken' failed" in str(error)
    first, *updates = published(kernel)
    assert "application/vnd.jupyter.widget-view+json" in first["data"]  # live while it ran
    display_id = first["transient"]["display_id"]
    last = updates[-1]
    assert last["update"] and last["transient"]["display_id"] == display_id
    assert set(last["data"]) == {"text/html", "text/plain"}  # no widget left to go missing
    snapshot = last["data"]["text/html"]
    assert "counts" in snapshot and "succeeded" in snapshot and "counts 2" in snapshot
    assert "<details open><summary>broken" in snapshot and "about to fail 3" in snapshot
    assert "broken: failed" in last["data"]["text/plain"]
    assert all(not widget.comm for widget in views[0].output_widgets.values())  # closed


def test_the_streams_and_hooks_are_given_back_after_a_run(kernel: InteractiveShell) -> None:
    stdout, stderr, hook = sys.stdout, sys.stderr, sys.displayhook
    run(kernel, COUNT.format(name="one") + "one_done = True")
    run(kernel, "%%task broken --defer\nbad = 1 / 0")
    fails(kernel, "%workflow run")
    assert (sys.stdout, sys.stderr, sys.displayhook) == (stdout, stderr, hook)
    assert "publish" not in vars(kernel.display_pub)
    assert "_showtraceback" not in vars(kernel)


def test_a_task_cell_run_alone_still_prints_in_its_cell(
    kernel: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    run(kernel, "%%task alone\nprint('printed here')\nx = 1")
    assert "printed here" in capsys.readouterr().out


def test_the_snapshot_keeps_the_tail_of_a_long_output_without_terminal_colours() -> None:
    text = "".join(f"line {i}\n" for i in range(5000)) + "\x1b[31mred\x1b[0m\n"
    shown = output_html({"output_type": "stream", "name": "stdout", "text": text})
    assert "line 4999\nred" in shown and "line 1\n" not in shown
    assert "earlier characters not kept" in shown and "\x1b" not in shown
    image = output_html({"output_type": "display_data", "data": {"image/png": "iVBOR\n"}})
    assert "<img src='data:image/png;base64,iVBOR'/>" in image
