"""Flyte's ``flytekit.types.error``: the error an ``on_failure`` task receives."""

from kernelflow.types.error.error import FlyteError

__all__ = ["FlyteError"]
