"""What the kernel knows about each task across all its runs: ran, cached, failed, stale.

After every run in a kernel (a ``%%task`` cell on its own or ``%workflow run``),
each task that ran keeps the code hash and the input hashes it ran with, and
where its outputs are. A task is *stale* when its code, what it uses from setup
code, or an input value changed since then, or when a task it reads from is
stale or has made new values since; a task with no such record has *never run*.
``%workflow status`` lists them with the reason, ``%workflow show`` colours
them, and ``%workflow run`` without names runs only what is stale or missing,
restoring the rest from the outputs they last made.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from kernelflow._core.graph import Const, NodeOutput, Param
from kernelflow._core.hashing import hash_or_none
from kernelflow.engine.results import GraphTarget, RunResult
from kernelflow.store.home import open_store

KernelState = Literal["ran", "cached", "failed", "stale", "never run"]


@dataclass(frozen=True)
class TaskRecord:
    """How a task last ran in this kernel."""

    status: Literal["ran", "cached", "failed"]
    code_hash: str
    inputs: Mapping[str, str | None]  # input name -> the content hash it ran with
    outputs: Mapping[str, str | None]  # output name -> content hash of what it made
    execution: Mapping[str, Any] | None  # its record in the store, to restore it from


@dataclass(frozen=True)
class TaskStatus:
    """A task's state now, and why (for stale tasks)."""

    state: KernelState
    why: str = ""


@dataclass
class TaskStates:
    """The latest record of each task that ran in this kernel."""

    records: dict[str, TaskRecord] = field(default_factory=dict)
    pending: list[tuple[GraphTarget, RunResult]] = field(default_factory=list)

    def record(self, target: GraphTarget, result: RunResult) -> None:
        """Remember a run; it is read when a state is asked for, not on every cell."""
        self.pending.append((target, result))

    def settle(self) -> None:
        """Read the runs recorded since the last look."""
        while self.pending:
            target, result = self.pending.pop(0)
            self._read(target, result)

    def _read(self, target: GraphTarget, result: RunResult) -> None:
        """What each task of ``result`` ran with, from the run store's records."""
        runs = open_store().runs
        executions = {row["node"]: row for row in runs.node_executions(result.run_id)}
        finished = runs.finished_nodes(result.run_id)
        for node, task_run in result.tasks.items():
            row = executions.get(node)
            if task_run.status not in ("succeeded", "cached", "failed") or row is None:
                continue
            status = {"succeeded": "ran", "cached": "cached", "failed": "failed"}[task_run.status]
            outputs = finished.get(node, {}).get("outputs") or {}
            self.records[node] = TaskRecord(
                status=status,  # type: ignore[arg-type]
                code_hash=target.graph.nodes[node].task.code_hash,
                inputs={k: v.get("hash") for k, v in (row.get("inputs") or {}).items()},
                outputs={k: v.get("hash") for k, v in outputs.items()},
                execution=finished.get(node),
            )

    def statuses(
        self, target: GraphTarget, params: Mapping[str, Any] | None = None
    ) -> dict[str, TaskStatus]:
        """Each task's state now, in graph order; a stale upstream makes its readers stale.

        ``params`` are the values a run is about to use (``-p``), where they differ
        from the parameters' current values.
        """
        self.settle()
        graph = target.graph
        found: dict[str, TaskStatus] = {}
        for node_id in graph.order:
            found[node_id] = self._status(target, node_id, found, params or {})
        return found

    def _status(
        self,
        target: GraphTarget,
        node_id: str,
        found: Mapping[str, TaskStatus],
        params: Mapping[str, Any],
    ) -> TaskStatus:
        record = self.records.get(node_id)
        if record is None:
            return TaskStatus("never run")
        if record.status == "failed":
            return TaskStatus("failed")
        node = target.graph.nodes[node_id]
        if node.task.code_hash != record.code_hash:
            return TaskStatus("stale", "code changed")
        for name, binding in node.bindings.items():
            why = self._input_change(target, name, binding, record, found, params)
            if why:
                return TaskStatus("stale", why)
        return TaskStatus(record.status)

    def _input_change(
        self,
        target: GraphTarget,
        name: str,
        binding: Any,
        record: TaskRecord,
        found: Mapping[str, TaskStatus],
        params: Mapping[str, Any],
    ) -> str:
        if isinstance(binding, NodeOutput):
            upstream = found.get(binding.node)
            if upstream is not None and upstream.state in ("stale", "never run", "failed"):
                return f"upstream {binding.node} is {upstream.state}"
            made = self.records.get(binding.node)
            now = made.outputs.get(binding.output) if made is not None else None
        elif isinstance(binding, Param):
            default = target.graph.params[binding.name].default
            now = hash_or_none(params.get(binding.name, default))
        elif isinstance(binding, Const):
            now = hash_or_none(binding.value)
        else:
            return ""
        if now != record.inputs.get(name):
            return f"input {name} changed"
        return ""

    def fresh_executions(
        self, target: GraphTarget, params: Mapping[str, Any] | None = None
    ) -> dict[str, Mapping[str, Any]]:
        """The store records of the tasks up to date for ``params``: a run restores them."""
        statuses = self.statuses(target, params)
        return {
            node: record.execution
            for node, record in self.records.items()
            if record.execution is not None
            and node in statuses
            and statuses[node].state in ("ran", "cached")
        }
