"""The engine's event stream: what happened in a run, for whoever listens.

Progress widgets, the CLI's progress line and tests are all listeners; the engine
knows none of them. A listener is any callable taking an :class:`Event`. A
listener that raises is reported once as a warning and never breaks the run.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from kernelflow._core.errors import KernelflowWarning

EventKind = Literal[
    "run_started",
    "task_started",
    "task_cached",
    "task_finished",
    "task_retrying",
    "task_failed",
    "task_skipped",
    "task_progress",
    "task_waiting",
    "run_finished",
]


@dataclass(frozen=True)
class Event:
    """One thing that happened. Fields that do not apply to a kind are None.

    ``nodes`` (run_started) lists the node ids the run will execute, in order;
    ``saved`` (task_cached) is the compute time the cache hit saved, in seconds;
    ``done``/``total`` (task_progress) count the items of a map node;
    ``waiting_for`` (task_waiting) says what a started node waits for (a signal, a
    duration): ``sleep``, ``wait_for_input`` and ``approve`` nodes; ``gate`` is
    which of the three, and ``signal`` the name a value is sent under (so a front
    end can offer a text box, or Approve and Reject).
    """

    kind: EventKind
    run_id: str
    workflow: str
    time: float
    node: str | None = None
    task: str | None = None
    attempt: int | None = None
    duration: float | None = None
    saved: float | None = None
    error: str | None = None
    status: str | None = None
    nodes: tuple[str, ...] | None = None
    done: int | None = None
    total: int | None = None
    waiting_for: str | None = None
    gate: str | None = None
    signal: str | None = None


Listener = Callable[[Event], None]


# What a front end shows for runs started without listeners of their own
# (``kernelflow.start`` in a Jupyter kernel: a progress view): each factory sees
# the run's target and returns a listener, or None to stay out.
_ambient: list[Callable[[object], Listener | None]] = []


def add_ambient_listener(factory: Callable[[object], Listener | None]) -> None:
    """Offer a listener to every started run that was given none (until removed)."""
    if factory not in _ambient:
        _ambient.append(factory)


def remove_ambient_listener(factory: Callable[[object], Listener | None]) -> None:
    if factory in _ambient:
        _ambient.remove(factory)


def ambient_listeners(target: object) -> list[Listener]:
    """What the registered factories offer for a run of ``target``."""
    offered = (factory(target) for factory in list(_ambient))
    return [listener for listener in offered if listener is not None]


class EventBus:
    """Delivers events to listeners, in subscription order, on the engine's thread."""

    def __init__(self, run_id: str, workflow: str, listeners: Iterable[Listener] = ()) -> None:
        self.run_id = run_id
        self.workflow = workflow
        self.listeners = list(listeners)
        self._broken: set[int] = set()

    def emit(self, kind: EventKind, **payload: object) -> None:
        if not self.listeners:
            return
        event = Event(kind, self.run_id, self.workflow, time.time(), **payload)  # type: ignore[arg-type]
        for listener in self.listeners:
            if id(listener) in self._broken:
                continue
            try:
                listener(event)
            except Exception as error:  # a broken progress bar must not fail the run
                self._broken.add(id(listener))
                warnings.warn(
                    f"progress listener {listener!r} failed and was detached: {error!r}",
                    KernelflowWarning,
                    stacklevel=2,
                )
