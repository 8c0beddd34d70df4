"""Flyte's ``flytekit.exceptions.base``: the root classes, at the same path."""

from __future__ import annotations

from typing import Any

from kernelflow.exceptions.unsupported import refuse
from kernelflow.exceptions.user import FlyteRecoverableException

__all__ = ["FlyteException", "FlyteRecoverableException"]

FlyteException = Exception  # Flyte's root; every exception a task raises is one


def __getattr__(name: str) -> Any:
    return refuse(__name__, name)
