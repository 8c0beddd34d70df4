"""``flytekit.core.task`` at Flyte's path: the ``task`` decorator and ``Echo``."""

from __future__ import annotations

from kernelflow.workflows.conditional import Echo
from kernelflow.workflows.task import task

__all__ = ["Echo", "task"]
