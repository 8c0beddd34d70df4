"""The states of runs and of node executions, as the engine reports them and the store keeps them.

One definition, so that a status the engine returns in a ``RunResult`` is one
the run store accepts and ``kernelflow runs`` shows.
"""

from __future__ import annotations

from typing import Literal

RunStatus = Literal["running", "succeeded", "failed", "interrupted", "died"]
"""``died``: recorded by a reader that finds the run's process gone without finishing it."""

NodeStatus = Literal["running", "succeeded", "cached", "failed", "skipped"]
"""One attempt of one node, as recorded in the run store."""

RUN_STATUSES: frozenset[str] = frozenset(RunStatus.__args__)  # type: ignore[attr-defined]
NODE_STATUSES: frozenset[str] = frozenset(NodeStatus.__args__)  # type: ignore[attr-defined]
