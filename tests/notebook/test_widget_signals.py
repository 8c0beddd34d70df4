"""The progress view answers a waiting node: a text box and Send, Approve and Reject (issue 14).

Real ipywidgets models, clicked as ipywidgets' own tests click them; the run waits
in a thread, as it would in a kernel left free to handle the clicks.
"""

from __future__ import annotations

import importlib
import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from conftest import EXAMPLES

import kernelflow
from kernelflow import approve, task, workflow
from kernelflow_jupyter.signals import SignalLine
from kernelflow_jupyter.widgets import ProgressView

WAIT = timedelta(minutes=2)  # a bound in case the test breaks, never reached when it passes


@pytest.fixture
def review(monkeypatch: pytest.MonkeyPatch) -> Any:
    """``review`` of examples/flyte_lifecycle/signals.py: waits for ``extra``, then an approval."""
    monkeypatch.setenv("SIGNALS_TIMEOUT", str(WAIT.total_seconds()))
    monkeypatch.syspath_prepend(str(EXAMPLES / "flyte_lifecycle"))
    import signals

    return importlib.reload(signals).review  # the timeout is read when the module loads


def _line(view: ProgressView, node: str) -> SignalLine:
    """The controls of ``node``, once it waits (polled; bounded, not a timing claim)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = view.signals.lines.get(node)
        if line is not None:
            return line
        time.sleep(0.02)
    raise AssertionError(f"{node} never showed its controls")


def _recorded(run_id: str, signal: str) -> None:
    """Wait until the node has recorded what it waits for (the type a value is checked by)."""
    deadline = time.monotonic() + 60
    while not any(w["name"] == signal for w in kernelflow.api.waiting_nodes(run_id)):
        assert time.monotonic() < deadline, f"{signal} was never recorded as waiting"
        time.sleep(0.02)


def test_send_and_approve_from_the_progress_view(review: Any) -> None:
    view = ProgressView(review.graph, "workflow review")
    results: list[Any] = []
    runner = threading.Thread(  # a daemon: a failing assertion does not wait for the run
        target=lambda: results.append(kernelflow.run(review, {"base": 2}, listeners=[view])),
        daemon=True,
    )
    runner.start()
    extra = _line(view, "extra")
    assert "extra</b> waits for signal 'extra' (int)" in extra.label.value
    assert view.rows["extra"].summary() == "waiting for signal 'extra' (int)"
    [send] = extra.buttons
    assert send.description == "Send"

    _recorded(extra.run_id, "extra")  # the row shows as the node starts; it records its type
    extra.text.value = "five"  # the same check as `kernelflow signal`: refused, shown
    send.click()
    assert "waits for signal 'extra' as int, got 'five'" in extra.message.value
    assert not send.disabled
    extra.text.value = "5"
    send._handle_button_msg(None, {"event": "click"}, [])  # as the browser sends it
    assert extra.message.value == "sent 5" and send.disabled

    proposal = _line(view, "proposal-ok")
    assert [b.description for b in proposal.buttons] == ["Approve", "Reject"]
    assert proposal.text is None
    proposal.buttons[0].click()
    runner.join(timeout=120)
    result = results[0]
    assert result.status == "succeeded", result.error
    assert result.outputs["o0"] == 25  # 2 * 10, approved, + 5
    assert view.signals.lines == {}  # the lines went with the waits
    view.finish()


@task
def propose(base: int) -> int:
    return base * 10


def test_reject_fails_the_approve_node() -> None:
    @workflow
    def gate_only(base: int = 1) -> int:
        return approve(propose(base=base), "go", timeout=WAIT)

    view = ProgressView(gate_only.graph, "workflow gate_only")
    results: list[Any] = []
    runner = threading.Thread(
        target=lambda: results.append(kernelflow.run(gate_only, {}, listeners=[view])),
        daemon=True,
    )
    runner.start()
    _line(view, "go").buttons[1].click()
    runner.join(timeout=120)
    assert results[0].status == "failed"
    assert "approval 'go' was rejected" in str(results[0].tasks["go"].error)
    view.finish()
