"""``FlyteContext`` and ``FlyteContextManager`` (``flytekit.core.context_manager``), locally.

Flyte's context is its internal state: the blob store, the workflow being
compiled, the task being executed. What of it means something on one machine:

- ``ctx.file_access``: a :class:`~kernelflow.core.data_persistence.FileAccessProvider`
  on local directories (random local and "remote" paths, ``get_data``,
  ``put_data``, ``upload_directory``, ...);
- ``ctx.user_space_params``: the running task's ``current_context()``;
- ``ctx.compilation_state``: while a ``@workflow`` body is being traced, its
  ``nodes`` so far (each supports ``a >> b`` and ``.with_overrides``), else None.

Every other attribute (``execution_state``, ``new_builder``, ``with_context``, ...)
fails with the project's one UnsupportedFeatureError message, naming it.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Any

from kernelflow.core.data_persistence import FileAccessProvider, default_file_access
from kernelflow.engine.context import ExecutionContext, current_context
from kernelflow.exceptions.unsupported import refuse, refuse_attribute
from kernelflow.workflows.imperative import NodeRef
from kernelflow.workflows.workflow import current_builder

__all__ = ["CompilationState", "FlyteContext", "FlyteContextManager", "scoped_file_access"]

# Flyte's names that have no local meaning: refused by name (others: AttributeError).
_CONTEXT_NAMES = frozenset(
    [
        "enter_conditional_section",
        "execution_state",
        "flyte_client",
        "get_deck",
        "get_origin_stackframe",
        "in_a_condition",
        "level",
        "new_builder",
        "new_compilation_state",
        "new_execution_state",
        "output_metadata_tracker",
        "serialization_settings",
        "set_stackframe",
        "with_client",
        "with_compilation_state",
        "with_execution_state",
        "with_file_access",
        "with_new_branch",
        "with_output_metadata_tracker",
        "with_serialization_settings",
        "worker_queue",
    ]
)
_MANAGER_NAMES = frozenset(
    [
        "add_signal_handler",
        "get_origin_stackframe",
        "initialize",
        "pop_context",
        "push_context",
        "size",
        "with_context",
    ]
)
_COMPILATION_NAMES = frozenset(["add_node", "mode", "task_resolver", "with_params"])


class CompilationState:
    """The workflow being defined: its nodes in the order they were added."""

    def __init__(self, builder: Any) -> None:
        self._builder = builder

    @property
    def nodes(self) -> list[NodeRef]:
        builder = self._builder
        return [
            NodeRef(builder, node_id, builder.node(node_id).task.interface)
            for node_id in builder.node_ids()
        ]

    @property
    def prefix(self) -> str:
        return ""

    def __getattr__(self, name: str) -> Any:
        owner = "kernelflow.core.context_manager.CompilationState"
        return refuse_attribute(owner, name, _COMPILATION_NAMES)


class FlyteContext:
    """What a transformer or a workflow decorator asks of Flyte's context (see the module)."""

    def __init__(self, file_access: FileAccessProvider) -> None:
        self._file_access = file_access

    @property
    def file_access(self) -> FileAccessProvider:
        return self._file_access

    @property
    def user_space_params(self) -> ExecutionContext:
        """The running task's context (Flyte's ``ExecutionParameters``)."""
        return current_context()

    @property
    def compilation_state(self) -> CompilationState | None:
        builder = current_builder()
        return None if builder is None else CompilationState(builder)

    @staticmethod
    def current_context() -> FlyteContext:
        return FlyteContextManager.current_context()

    def __getattr__(self, name: str) -> Any:
        return refuse_attribute("kernelflow.FlyteContext", name, _CONTEXT_NAMES)


class _RefusingClass(type):
    """Class attributes Flyte has and kernelflow lacks fail with the one message."""

    def __getattr__(cls, name: str) -> Any:
        return refuse_attribute(f"kernelflow.{cls.__name__}", name, _MANAGER_NAMES)


_scoped: contextvars.ContextVar[FileAccessProvider | None] = contextvars.ContextVar(
    "kernelflow_flyte_file_access", default=None
)


class FlyteContextManager(metaclass=_RefusingClass):
    """Flyte's way to the current :class:`FlyteContext`."""

    @staticmethod
    def current_context() -> FlyteContext:
        return FlyteContext(_scoped.get() or default_file_access())


@contextlib.contextmanager
def scoped_file_access(provider: FileAccessProvider) -> Iterator[FlyteContext]:
    """Within the block, the current context's ``file_access`` is ``provider``."""
    token = _scoped.set(provider)
    try:
        yield FlyteContext(provider)
    finally:
        _scoped.reset(token)


def __getattr__(name: str) -> Any:
    return refuse(__name__, name)
