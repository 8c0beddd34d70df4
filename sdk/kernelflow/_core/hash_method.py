"""Flyte's ``HashMethod``: an output whose cache identity is a function of its value.

``Annotated[pd.DataFrame, HashMethod(fn)]`` declares that the output's hash, the
one downstream cache keys are made from, is ``fn(value)`` rather than the hash
of the value's content. A downstream task is then a cache hit when ``fn`` gives
the same answer for a changed value (a frame with new rows but the same
summary, say). The engine asks :func:`output_hash` for every persisted output.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, get_origin

from kernelflow._core.hashing import combine, hash_or_none

__all__ = ["HashMethod", "output_hash"]


class HashMethod:
    """The hash of an output, computed by ``function(value)`` (Flyte's ``flytekit.HashMethod``)."""

    def __init__(self, function: Callable[[Any], Any]) -> None:
        self._function = function

    def calculate(self, obj: Any) -> Any:
        """What the function says of ``obj`` (Flyte's name for the call)."""
        return self._function(obj)

    def __repr__(self) -> str:
        return f"HashMethod({getattr(self._function, '__qualname__', self._function)!r})"


def hash_method_of(declared: Any) -> HashMethod | None:
    """The ``HashMethod`` in an ``Annotated[...]`` type, if there is one."""
    if declared is None or isinstance(declared, type):  # the usual case: a plain class
        return None
    if get_origin(declared) is not Annotated:
        return None
    for meta in declared.__metadata__:
        if isinstance(meta, HashMethod):
            return meta
    return None


def output_hash(value: Any, declared: Any) -> str | None:
    """The hash an output stands for downstream: ``HashMethod``'s when declared, else its content's.

    What the function returns is made a string; it is tagged, so that it never
    equals the content hash of some other value.
    """
    method = hash_method_of(declared)
    if method is None:
        return hash_or_none(value)
    return combine("HashMethod", str(method.calculate(value)))
