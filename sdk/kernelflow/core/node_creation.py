"""``create_node`` (``flytekit.core.node_creation.create_node``): a task call as a node.

Inside a workflow body, ``create_node(t, x=1)`` adds the node as calling ``t``
would, but returns a :class:`~kernelflow.workflows.imperative.NodeRef`: outputs
as ``node.o0``, ordering with ``a >> b``, and ``node.with_overrides(...)``.
Outside a workflow it runs the task, as calling it would.
"""

from __future__ import annotations

from typing import Any

from kernelflow._core.errors import DefinitionError
from kernelflow._core.task import Task
from kernelflow.workflows.imperative import NodeRef, add_node
from kernelflow.workflows.workflow import current_builder

__all__ = ["NodeRef", "create_node"]


def create_node(entity: Any, *args: Any, **kwargs: Any) -> Any:
    """Add ``entity(**kwargs)`` to the workflow being defined; return its node."""
    if args:
        raise DefinitionError(
            "create_node takes the task's inputs as keyword arguments only",
            fix="call it as create_node(task, name=value, ...)",
        )
    if not isinstance(entity, Task):
        raise DefinitionError(
            f"create_node takes a task, got {type(entity).__name__}",
            fix="pass a @task",
        )
    builder = current_builder()
    if builder is None:
        return entity(**kwargs)
    return add_node(builder, entity, kwargs)
