"""What one task printed and displayed during ``%workflow run``, kept for its row.

Outputs arrive one ``write`` at a time, from the thread that runs the task, so
they are kept here (consecutive text of one stream merged into one output, as
Jupyter does) and handed to the widget in batches (``widgets.py``): a task
printing 10,000 lines must not send 10,000 growing widget updates.
"""

from __future__ import annotations

import threading
from typing import Any

Output = dict[str, Any]


class CapturedOutputs:
    """The nbformat outputs of one task, safe to add to from any thread."""

    def __init__(self) -> None:
        self._outputs: list[Output] = []
        self._lock = threading.Lock()
        self._changed = False

    def add(self, output: Output) -> None:
        """Append an output, merge a stream write, or apply an update or a clear."""
        with self._lock:
            self._changed = True
            kind = output.get("output_type")
            if kind == "clear":
                self._outputs.clear()
            elif kind == "stream":
                self._add_text(output)
            elif output.get("update"):
                self._replace(output)
            else:
                self._outputs.append(dict(output))

    def _add_text(self, output: Output) -> None:
        last = self._outputs[-1] if self._outputs else None
        if last is not None and last["output_type"] == "stream" and last["name"] == output["name"]:
            last["text"] += output["text"]
        else:
            self._outputs.append(dict(output))

    def _replace(self, output: Output) -> None:
        display_id = (output.get("transient") or {}).get("display_id")
        for index, old in enumerate(self._outputs):
            if display_id and (old.get("transient") or {}).get("display_id") == display_id:
                self._outputs[index] = {k: v for k, v in output.items() if k != "update"}

    @property
    def changed(self) -> bool:
        """Whether outputs came since :meth:`outputs` was last read."""
        return self._changed

    def outputs(self) -> tuple[Output, ...]:
        """The outputs as nbformat has them (without the display ids kept for updates)."""
        with self._lock:
            self._changed = False
            return tuple(
                {k: v for k, v in output.items() if k != "transient"} for output in self._outputs
            )

    def __len__(self) -> int:
        return len(self._outputs)
