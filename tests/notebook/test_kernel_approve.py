"""A workflow started in a real kernel's cell waits for approval; a click on Approve answers.

``FlyteRemote.execute`` (Flyte's way) returns at once and the run goes on in the
background, so the kernel is free and handles the Approve button's message, as
it does in JupyterLab. The test is the front end: it starts a kernel, runs the
cell, finds the Approve button among the widget models the kernel opens, and
clicks it with the message a browser sends.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from jupyter_client.manager import start_new_kernel

FLOW = """
from datetime import timedelta

from kernelflow import approve, task, workflow


@task
def propose(x: int) -> int:
    return x * 10


@task
def apply(v: int) -> int:
    return v + 1


@workflow
def reviewed(x: int) -> int:
    return apply(v=approve(propose(x=x), "ok", timeout=timedelta(seconds=90)))
"""

START = """
from kernelflow.configuration import Config
from kernelflow.remote import FlyteRemote
from flow import reviewed

remote = FlyteRemote(Config.auto())
execution = remote.execute(reviewed, inputs={"x": 2})
print("STARTED", execution.is_done)
"""


def _messages(kc: Any, deadline: float) -> Iterator[dict[str, Any]]:
    """The kernel's IOPub messages until ``deadline``."""
    while time.monotonic() < deadline:
        try:
            yield kc.get_iopub_msg(timeout=1)
        except queue.Empty:
            continue


def _approve_button(kc: Any, deadline: float) -> tuple[str, str]:
    """The comm id of the Approve button the kernel opens, and what the cell printed."""
    printed = ""
    for message in _messages(kc, deadline):
        if message["msg_type"] == "stream":
            printed += message["content"]["text"]
        if message["msg_type"] != "comm_open":
            continue
        state = message["content"]["data"].get("state", {})
        if state.get("_model_name") == "ButtonModel" and state.get("description") == "Approve":
            return str(message["content"]["comm_id"]), printed
    raise AssertionError("no Approve button was shown while the workflow waited")


def _run(kc: Any, code: str, deadline: float) -> str:
    """Execute ``code``; what it printed (it must succeed)."""
    msg_id = kc.execute(code)
    printed = ""
    for message in _messages(kc, deadline):
        if message["parent_header"].get("msg_id") != msg_id:
            continue
        if message["msg_type"] == "stream":
            printed += message["content"]["text"]
        elif message["msg_type"] == "error":
            raise AssertionError(f"the cell failed: {message['content']['evalue']}")
        elif message["msg_type"] == "status" and message["content"]["execution_state"] == "idle":
            return printed
    raise AssertionError("the cell did not finish")


def test_approve_clicked_in_the_notebook_lets_the_started_workflow_finish(tmp_path: Path) -> None:
    (tmp_path / "flow.py").write_text(FLOW)
    km, kc = start_new_kernel(kernel_name="python3", cwd=str(tmp_path))
    try:
        deadline = time.monotonic() + 120
        _run(
            kc, f"%load_ext kernelflow\nimport sys\nsys.path.insert(0, {str(tmp_path)!r})", deadline
        )
        kc.execute(START)
        button, printed = _approve_button(kc, deadline)
        assert "STARTED False" in printed or "STARTED" not in printed  # not finished: it waits
        click = {"method": "custom", "content": {"event": "click"}}
        kc.shell_channel.send(kc.session.msg("comm_msg", {"comm_id": button, "data": click}))
        done = _run(kc, "print('RESULT', remote.wait(execution).outputs['o0'])", deadline)
        assert "RESULT 21" in done  # 2 * 10, approved, + 1
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
