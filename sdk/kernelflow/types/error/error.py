"""Flyte's ``flytekit.types.error.error.FlyteError``, at the same path."""

from kernelflow.workflows.failure import FlyteError

__all__ = ["FlyteError"]
