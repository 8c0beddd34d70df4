"""Flyte's ``flytekit.exceptions.eager``: the error an eager workflow's body can catch."""

from __future__ import annotations

from kernelflow.workflows.eager import EagerException

__all__ = ["EagerException"]
