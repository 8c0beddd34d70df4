"""What happens when a workflow fails: Flyte's ``on_failure`` and ``failure_policy``.

``@workflow(on_failure=cleanup)`` runs ``cleanup`` (a task or a workflow) after a
failed run, with the workflow's inputs that it declares and ``err``, a
:class:`FlyteError` naming the failure; the run then fails with its own error.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class WorkflowFailurePolicy(enum.Enum):
    """Flyte's policies. The engine always lets independent branches run to the end
    (``FAIL_AFTER_EXECUTABLE_NODES_COMPLETE``); ``FAIL_IMMEDIATELY`` is accepted and
    recorded, and behaves the same: a failure skips only what depends on it."""

    FAIL_IMMEDIATELY = 0
    FAIL_AFTER_EXECUTABLE_NODES_COMPLETE = 1


@dataclass
class FlyteError:
    """The error an ``on_failure`` task receives as ``err``."""

    message: str
    failed_node_id: str = ""


def run_on_failure(cleanup: Any, inputs: Mapping[str, Any], error: BaseException) -> None:
    """Call ``cleanup`` with the inputs it declares and ``err``; its own failure is added
    as a note to the workflow's error, which is what the caller raises."""
    declared = cleanup.interface.inputs
    arguments = {name: value for name, value in inputs.items() if name in declared}
    if "err" in declared:
        failed = getattr(error, "node", None) or getattr(error, "task", None) or ""
        arguments["err"] = FlyteError(getattr(error, "message", str(error)), str(failed))
    try:
        cleanup(**arguments)
    except Exception as cleanup_error:  # the workflow's error is the one to report
        error.add_note(
            f"on_failure {getattr(cleanup, 'name', cleanup)!r} failed too: {cleanup_error}"
        )
