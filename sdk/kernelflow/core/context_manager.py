"""Flyte's ``FlyteContextManager`` and ``FlyteContext`` (``flytekit.core.context_manager``).

Locally one part has a meaning: ``FlyteContextManager.current_context()
.compilation_state`` is None outside a workflow body and, while a workflow is
being defined, holds ``nodes``: the nodes defined so far, in the order they were
defined, each a node reference that orders with ``>>``. Flyte's example of a
decorator that wraps a workflow in setup and teardown nodes reads it. Any other
attribute of the context (file access, serialization settings...) fails with the
one message for what kernelflow does not support.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kernelflow._core.graph import GraphBuilder
from kernelflow.exceptions.unsupported import refuse
from kernelflow.workflows.imperative import NodeRef
from kernelflow.workflows.workflow import current_builder

__all__ = ["CompilationState", "FlyteContext", "FlyteContextManager"]


class CompilationState:
    """The workflow being defined. ``nodes`` is read when asked for, as Flyte's list
    grows: a context taken before the body's calls lists them afterwards."""

    def __init__(self, builder: GraphBuilder) -> None:
        self._builder = builder

    @property
    def nodes(self) -> list[NodeRef]:
        """The nodes defined so far, in the order they were defined."""
        builder = self._builder
        return [
            NodeRef(builder, node_id, builder.node(node_id).task.interface)
            for node_id in builder.node_ids()
        ]


@dataclass(frozen=True)
class FlyteContext:
    """What a program can read of the context it runs in (see the module docstring)."""

    compilation_state: CompilationState | None

    @staticmethod
    def current_context() -> FlyteContext:
        return FlyteContextManager.current_context()

    def __getattr__(self, name: str) -> Any:
        refuse("kernelflow.core.context_manager.FlyteContext", name)


class FlyteContextManager:
    """Gives the current :class:`FlyteContext`."""

    @staticmethod
    def current_context() -> FlyteContext:
        builder = current_builder()
        return FlyteContext(None if builder is None else CompilationState(builder))
