"""Answering a waiting node from the progress view: a text box and Send, or Approve/Reject.

A ``wait_for_input`` or ``approve`` node that starts waiting gets a line of
controls under the progress bar, naming the node and its signal. A click sends
the value through :func:`kernelflow.api.send_signal`, the function behind
``kernelflow signal`` and ``kernelflow approve``, so a value is checked the same
way (a wrong type is refused, and the message shows on the line). The line goes
when the node finishes.

A kernel handles a click when it is not busy running a cell: the buttons answer
a run that does not hold the kernel, one started with ``kernelflow.start`` or
Flyte's ``FlyteRemote.execute`` (without ``wait``), which show this view in
the cell that started them. While a cell blocks on a run (``wf()``,
``kernelflow.run``), send the value from a terminal with the command the node's
row names: ipykernel 7 takes no widget message while a cell runs (tried:
``jupyter_ui_poll`` needs ``Kernel.do_one_iteration``, which ipykernel 7 lacks).
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

from kernelflow.api import Event, send_signal
from kernelflow.errors import KernelflowError

Send = Callable[[str, str, str], None]


class SignalLine:
    """The controls of one waiting node, and the outcome of the last click."""

    def __init__(self, event: Event, send: Send) -> None:
        import ipywidgets as widgets

        assert event.signal is not None and event.node is not None
        self.run_id, self.signal, self.send = event.run_id, event.signal, send
        self.label = widgets.HTML(
            f"<b>{html.escape(event.node)}</b> waits for "
            + html.escape(event.waiting_for or "", quote=False)
        )
        self.message = widgets.HTML("")
        self.text: Any = None
        if event.gate == "approve":
            approve = widgets.Button(description="Approve", button_style="success")
            reject = widgets.Button(description="Reject", button_style="danger")
            approve.on_click(lambda _: self.click("true"))
            reject.on_click(lambda _: self.click("false"))
            self.buttons = [approve, reject]
            inputs: list[Any] = [approve, reject]
        else:
            self.text = widgets.Text(placeholder="value", description=event.signal)
            send_button = widgets.Button(description="Send", button_style="primary")
            send_button.on_click(lambda _: self.click(self.text.value))
            self.buttons = [send_button]
            inputs = [self.text, send_button]
        self.box = widgets.HBox([self.label, *inputs, self.message])

    def click(self, value: str) -> None:
        """Send ``value``; say what happened on the line (a refusal names the fix)."""
        try:
            self.send(self.run_id, self.signal, value)
        except KernelflowError as error:
            self.message.value = (
                f"<span style='color:#b00'>{html.escape(str(error), quote=False)}</span>"
            )
            return
        self.message.value = f"sent {html.escape(value)}"
        for button in self.buttons:
            button.disabled = True

    def close(self) -> None:
        for widget in (*self.buttons, self.text, self.label, self.message, self.box):
            if widget is not None:
                widget.close()


class SignalPanel:
    """The lines of the nodes of a run waiting for a signal now, in a ``VBox``."""

    def __init__(self, send: Send = send_signal) -> None:
        import ipywidgets as widgets

        self.send = send
        self.lines: dict[str, SignalLine] = {}
        self.box = widgets.VBox([])

    def __call__(self, event: Event) -> None:
        """Take in an engine event: a node starts waiting, or a waiting node ends."""
        if event.node is None:
            return
        if event.kind == "task_waiting" and event.signal is not None:
            if event.node not in self.lines:
                self.lines[event.node] = SignalLine(event, self.send)
                self._lay_out()
        elif event.kind in ("task_finished", "task_failed", "task_skipped"):
            line = self.lines.pop(event.node, None)
            if line is not None:
                line.close()
                self._lay_out()

    def close(self) -> None:
        for line in self.lines.values():
            line.close()
        self.lines.clear()
        self.box.close()

    def _lay_out(self) -> None:
        self.box.children = [line.box for line in self.lines.values()]
