"""Flyte's ``flytekit.exceptions.user``: errors a task body raises on purpose.

Only :class:`FlyteRecoverableException` changes what the engine does (the task
is retried, within its ``retries``); the others are ordinary exceptions, which
fail the task at once.
"""

from __future__ import annotations

from typing import Any

from kernelflow._core.errors import RecoverableError
from kernelflow.exceptions.unsupported import refuse

__all__ = [
    "FlyteUserException",
    "FlyteRecoverableException",
    "FlyteTypeException",
    "FlyteValueException",
    "FlyteAssertion",
    "FlyteValidationException",
]


class FlyteUserException(Exception):
    """Base of the errors a user raises (not retried)."""


class FlyteRecoverableException(RecoverableError):
    """A failure worth another attempt: the task is retried within its ``retries``."""

    def __init__(self, *args: Any, timestamp: float | None = None) -> None:
        # ``timestamp`` is a field, so that it survives pickling from a worker.
        super().__init__(", ".join(str(arg) for arg in args), timestamp=timestamp)


class FlyteTypeException(FlyteUserException, TypeError):
    """A value of the wrong type."""


class FlyteValueException(FlyteUserException, ValueError):
    """A value that is not allowed."""


class FlyteAssertion(FlyteUserException, AssertionError):
    """A check that failed."""


class FlyteValidationException(FlyteAssertion):
    """An entity that is not valid."""


def __getattr__(name: str) -> Any:
    return refuse(__name__, name)
