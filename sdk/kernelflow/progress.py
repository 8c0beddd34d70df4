"""Text progress for terminals, logs and papermill: a listener of the engine's events.

On a terminal it redraws one status line; elsewhere (a log file, a papermill
cell, CI) it prints one line per finished task, so the output reads well after
the fact.
"""

from __future__ import annotations

import sys
from typing import TextIO

from kernelflow.api import Event
from kernelflow.render import seconds


class TextProgress:
    """Prints the progress of a run to ``stream`` (default: standard error)."""

    def __init__(self, stream: TextIO | None = None, *, live: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self.total = 0
        self.done = 0
        self.nodes: set[str] = set()
        self._line_open = False

    def __call__(self, event: Event) -> None:
        handler = getattr(self, f"_on_{event.kind}", None)
        if handler is not None:
            handler(event)

    def _on_run_started(self, event: Event) -> None:
        self.total = len(event.nodes or ())
        self.nodes = set(event.nodes or ())
        self.done = 0
        self._say(f"run {event.run_id} of {event.workflow}: {self.total} tasks")

    def _on_task_started(self, event: Event) -> None:
        if self.live:
            self._status(f"{event.node} running")

    def _count(self, event: Event) -> None:
        """A node of the run counts; a node a running one built (``dyn.child``) is only shown."""
        if event.node in self.nodes:
            self.done += 1

    def _on_task_cached(self, event: Event) -> None:
        self._count(event)
        self._finished(f"{event.node} cached, saved {_seconds(event.saved)}")

    def _on_task_finished(self, event: Event) -> None:
        self._count(event)
        self._finished(f"{event.node} ran in {_seconds(event.duration)}")

    def _on_task_progress(self, event: Event) -> None:
        if self.live:
            self._status(f"{event.node} {event.done}/{event.total} items")

    def _on_task_waiting(self, event: Event) -> None:
        self._say(f"{event.node} waiting for {event.waiting_for}")

    def _on_task_retrying(self, event: Event) -> None:
        self._say(
            f"{event.node} failed (attempt {event.attempt}), retrying in "
            f"{_seconds(event.duration)}: {_first_line(event.error)}"
        )

    def _on_task_failed(self, event: Event) -> None:
        self._count(event)
        self._finished(f"{event.node} FAILED: {_first_line(event.error)}")

    def _on_task_skipped(self, event: Event) -> None:
        self._count(event)
        why = " (an upstream task failed)" if event.node in self.nodes else ""
        self._finished(f"{event.node} skipped{why}")

    def _on_run_finished(self, event: Event) -> None:
        self._say(f"run {event.run_id} {event.status} in {_seconds(event.duration)}")

    # --- drawing ------------------------------------------------------------------

    def _finished(self, text: str) -> None:
        if self.live:
            self._status(text)
        else:
            self._say(f"[{self.done:>{len(str(self.total))}}/{self.total}] {text}")

    def _status(self, text: str) -> None:
        width = 24
        filled = width * self.done // self.total if self.total else width
        bar = "#" * filled + "-" * (width - filled)
        self.stream.write(f"\r[{bar}] {self.done}/{self.total} {text}"[:120].ljust(120))
        self.stream.flush()
        self._line_open = True

    def _say(self, text: str) -> None:
        if self._line_open:
            self.stream.write("\n")
            self._line_open = False
        self.stream.write(text + "\n")
        self.stream.flush()


def _seconds(value: float | None) -> str:
    return seconds(value, unknown="?")


def _first_line(text: str | None) -> str:
    return (text or "").splitlines()[0] if text else ""
