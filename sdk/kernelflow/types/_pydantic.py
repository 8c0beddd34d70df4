"""Flyte's types as fields of pydantic models (``class M(BaseModel): file: FlyteFile``).

pydantic (v2) asks a class it does not know for its schema; these classes
answer "an instance of me", so a model holding a file, a directory or a
dataset validates and travels between tasks as Flyte's examples expect.
pydantic is imported only when a model asks, never by kernelflow itself.
"""

from __future__ import annotations

import os
from typing import Any


def instance_schema(cls: type, source: Any, handler: Any) -> Any:
    """Validate by ``isinstance``; in JSON, a path-like value is its path text."""
    from pydantic_core import core_schema

    serialization = None
    if issubclass(cls, os.PathLike):
        serialization = core_schema.plain_serializer_function_ser_schema(
            os.fspath, when_used="json"
        )
    return core_schema.is_instance_schema(cls, serialization=serialization)
