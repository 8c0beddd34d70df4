"""``flytekit.models.types``: ``LiteralType``, ``SimpleType``, ``StructuredDatasetType``."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from kernelflow.exceptions.unsupported import refuse
from kernelflow.models.core.types import BlobType

__all__ = ["LiteralType", "SimpleType", "StructuredDatasetType"]


class SimpleType(enum.IntEnum):
    """Flyte's scalar kinds (the values of ``flyteidl.core.SimpleType``)."""

    NONE = 0
    INTEGER = 1
    FLOAT = 2
    STRING = 3
    BOOLEAN = 4
    DATETIME = 5
    DURATION = 6
    BINARY = 7
    ERROR = 8
    STRUCT = 9


@dataclass
class StructuredDatasetType:
    """The columns and storage format of a structured dataset (``format="parquet"``)."""

    columns: list[Any] = field(default_factory=list)
    format: str = ""
    external_schema_type: str | None = None
    external_schema_bytes: bytes | None = None


@dataclass
class LiteralType:
    """What a transformer says its literals are; one field is set."""

    simple: SimpleType | None = None
    schema: Any = None
    collection_type: LiteralType | None = None
    map_value_type: LiteralType | None = None
    blob: BlobType | None = None
    enum_type: Any = None
    structured_dataset_type: StructuredDatasetType | None = None
    union_type: Any = None
    structure: Any = None
    annotation: Any = None
    metadata: dict[str, Any] | None = None


def __getattr__(name: str) -> Any:
    return refuse(__name__, name)
