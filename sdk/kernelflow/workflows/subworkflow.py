"""A nested workflow with its own ``on_failure``: one node of its parent that runs it.

A nested workflow is usually copied into its parent's graph (``sub.t1``, ...);
then nothing marks where it starts and ends, and its own ``on_failure`` could not
run. One that declares ``on_failure`` is instead a node whose body runs its graph
through the engine as part of the run (its nodes still show as ``sub.t1``), so
that when it fails its handler runs with the sub-workflow's own inputs, as in
Flyte. The parent then fails too, and a handler of the parent runs after it: in
Flyte's example both clean-ups run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from kernelflow._core.task import Task, TaskOptions
from kernelflow.engine.context import current_context
from kernelflow.engine.nested import run_nested
from kernelflow.workflows.dynamic import under
from kernelflow.workflows.failure import run_on_failure

if TYPE_CHECKING:
    from kernelflow.workflows.workflow import Workflow


class SubWorkflowTask(Task):
    """Runs ``workflow`` as one node; its ``on_failure`` handles a failure inside it."""

    def __init__(self, workflow: Workflow) -> None:
        self.workflow = workflow
        self.name = workflow.name
        self.interface = workflow.interface
        self.options = TaskOptions()

    @property
    def code_hash(self) -> str:
        handler = self.workflow.on_failure
        handler_hash = getattr(handler, "code_hash", None) or getattr(handler, "version", "")
        text = f"subworkflow:{self.workflow.version}:{handler_hash}"
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    @property
    def modules(self) -> Mapping[str, str]:
        found: dict[str, str] = {}
        for node in self.workflow.graph.nodes.values():
            found.update(node.task.modules)
        return found

    @property
    def portable(self) -> bool:
        return all(node.task.portable for node in self.workflow.graph.nodes.values())

    def run(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        prefix = current_context().node
        result = run_nested(under(self.workflow.graph, prefix), prefix, inputs)
        if result.error is not None:
            run_on_failure(self.workflow.on_failure, inputs, result.error)
        result.raise_for_status()
        return dict(result.outputs)
