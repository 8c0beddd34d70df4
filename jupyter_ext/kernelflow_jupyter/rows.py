"""One task's line in the progress view: its state, as the engine's events tell it.

Shared by the live widgets and the static snapshot that replaces them, so the two
can never say different things about a task.
"""

from __future__ import annotations

from dataclasses import dataclass

from kernelflow.api import Event
from kernelflow.render import seconds

_STATE_OF_EVENT = {
    "task_started": "running",
    "task_finished": "succeeded",
    "task_cached": "cached",
    "task_failed": "failed",
    "task_skipped": "skipped",
    "task_retrying": "running",
    "task_waiting": "waiting",  # a wait_for_input/approve/sleep node (issue 14)
}
FINISHED = ("succeeded", "cached", "failed", "skipped")


@dataclass
class Row:
    state: str = "pending"
    duration: float | None = None
    cached: bool = False
    error: str = ""
    items: str = ""  # "300/10000 items" while a map node runs
    waiting_for: str = ""  # "signal 'extra' (int)" while a gate node waits

    def apply(self, event: Event) -> None:
        """Take in a task event of this row's node."""
        if event.kind == "task_progress":
            self.items = f"{event.done}/{event.total} items"
            return
        self.state = _STATE_OF_EVENT.get(event.kind, self.state)
        if event.kind == "task_waiting":
            self.waiting_for = event.waiting_for or ""
        if event.kind == "task_cached":
            self.cached, self.duration = True, event.saved
        elif event.kind in ("task_finished", "task_failed"):
            self.duration = event.duration
        if event.error:
            self.error = event.error.splitlines()[0]

    @property
    def finished(self) -> bool:
        return self.state in FINISHED

    def summary(self) -> str:
        """``succeeded in 1.2 s``, ``cached (saved 3.0 s)``, ``failed: ZeroDivisionError...``."""
        items = f" [{self.items}]" if self.items else ""
        if self.duration is None:
            detail = ""
        elif self.cached:
            detail = f" (saved {seconds(self.duration)})"
        else:
            detail = f" in {seconds(self.duration)}"
        error = f": {self.error}" if self.error else ""
        waiting = f" for {self.waiting_for}" if self.state == "waiting" and self.waiting_for else ""
        return f"{self.state}{waiting}{items}{detail}{error}"
