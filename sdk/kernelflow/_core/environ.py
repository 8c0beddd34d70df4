"""Setting an environment variable for a while: how a command's option reaches its workers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def environment_variable(name: str, value: str | None) -> Iterator[None]:
    """``$name`` is ``value`` inside the block (unchanged when ``value`` is None), and is
    put back afterwards: processes started inside inherit it, and a caller that runs in
    the same process as others (tests, a scheduler loop) leaves no trace."""
    if value is None:
        yield
        return
    before = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before
