"""Nested runs: a graph built while a task runs, run by the same engine as a part of its run.

A dynamic workflow, a conditional's taken branch and each task an eager
workflow awaits are graphs that exist only once a node is running. The node
hands its graph to :func:`run_nested`, and the graph runs through the engine
like any other: cached, on an executor as wide as the run's, with node ids
under the running node's (``dyn.child``). When the run that started the node is
in this process, the children are recorded in that run and its listeners see
them, so progress shows them as children of the node; in a worker process that
cannot reach the run, they are a run of their own in the same store.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kernelflow._core.graph import Graph
from kernelflow.engine.backends import Executor, SequentialExecutor, ThreadingExecutor
from kernelflow.engine.context import current_context
from kernelflow.engine.events import Event, EventBus, Listener
from kernelflow.engine.results import GraphTarget, RunResult
from kernelflow.store.home import open_store
from kernelflow.store.recorder import RunRecorder


@dataclass(frozen=True)
class ParentRun:
    """What a nested run borrows from the run in this process it belongs to."""

    run_id: str
    workflow: str
    listeners: tuple[Listener, ...]
    workers: int


_parents: dict[str, ParentRun] = {}
_lock = threading.Lock()


def enter_run(parent: ParentRun) -> None:
    """The scheduling loop of ``parent.run_id`` is running in this process."""
    with _lock:
        _parents[parent.run_id] = parent


def leave_run(run_id: str) -> None:
    with _lock:
        _parents.pop(run_id, None)


def parent_run() -> ParentRun | None:
    """The in-process run the running task belongs to, or None (a worker process)."""
    context = current_context()
    with _lock:
        return _parents.get(context.run_id)


class _ChildEvents:
    """Passes a nested run's node events to the parent's listener, not its start and end."""

    def __init__(self, listener: Listener) -> None:
        self.listener = listener

    def __call__(self, event: Event) -> None:
        if event.kind not in ("run_started", "run_finished"):
            self.listener(event)


def run_nested(graph: Graph, name: str, params: Mapping[str, Any] | None = None) -> RunResult:
    """Run ``graph`` (node ids already under the running node's) as part of the current run.

    Must be called from a running task. A failed child does not raise here: the
    caller reads the result (``raise_for_status``).
    """
    from kernelflow.engine.runner import Engine  # the runner imports the loop, which imports this

    context = current_context()
    store = open_store(context.store_root)
    parent = parent_run()
    listeners = [_ChildEvents(listener) for listener in parent.listeners] if parent else []
    workers = parent.workers if parent else 1
    executor: Executor = SequentialExecutor() if workers <= 1 else ThreadingExecutor(workers)
    engine = Engine(store, executor=executor, listeners=listeners)
    try:
        return engine.run(
            GraphTarget(name, graph),
            params,
            run_id=context.run_id if parent else None,
            attach=parent is not None,
        )
    finally:
        executor.close()


def record_skipped(nodes: Iterable[tuple[str, str]]) -> None:
    """Record nodes that will not run (a conditional's untaken branches) as skipped.

    ``nodes`` are (node id, task name) pairs; the parent's listeners are told too.
    """
    parent = parent_run()
    if parent is None:
        return
    context = current_context()
    recorder = RunRecorder(open_store(context.store_root).runs, context.run_id, attached=True)
    bus = EventBus(parent.run_id, parent.workflow, parent.listeners)
    for node, task in nodes:
        recorder.attempt(
            node=node,
            task=task,
            attempt=0,
            status="skipped",
            cache_key=None,
            code_hash="",
            inputs={},
            outputs={},
            started=time.time(),
            duration=0.0,
        )
        bus.emit("task_skipped", node=node, task=task)
