"""``flytekit.models.literals``: the values a ``TypeTransformer`` turns a Python value into.

A transformer returns a :class:`Literal` from ``to_literal`` and reads one in
``to_python_value`` (``lv.scalar.blob.uri``, ``lv.scalar.primitive.integer``,
``lv.scalar.binary.value``, ``lv.collection.literals``, ``lv.map.literals``).
The bytes the store keeps, and the content hash, are made from the literal:
a blob's ``uri`` stands for the content of the file or directory it names.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

from kernelflow.exceptions.unsupported import refuse
from kernelflow.models.core.types import BlobType
from kernelflow.models.types import StructuredDatasetType

__all__ = [
    "Binary",
    "Blob",
    "BlobMetadata",
    "Literal",
    "LiteralCollection",
    "LiteralMap",
    "Primitive",
    "Scalar",
    "StructuredDataset",
    "StructuredDatasetMetadata",
    "Void",
]


@dataclass
class Primitive:
    """One of: ``integer``, ``float_value``, ``string_value``, ``boolean``, ``datetime``,
    ``duration``."""

    integer: int | None = None
    float_value: float | None = None
    string_value: str | None = None
    boolean: bool | None = None
    datetime: datetime.datetime | None = None
    duration: datetime.timedelta | None = None

    @property
    def value(self) -> Any:
        return _first_set(self)


@dataclass
class BlobMetadata:
    type: BlobType


@dataclass
class Blob:
    """A file (``SINGLE``) or a directory (``MULTIPART``) at ``uri``."""

    metadata: BlobMetadata
    uri: str


@dataclass
class Binary:
    """Bytes a transformer serialized itself, with a tag saying how."""

    value: bytes
    tag: str = ""


@dataclass
class Void:
    """The literal of ``None``."""


@dataclass
class StructuredDatasetMetadata:
    structured_dataset_type: StructuredDatasetType | None = None


@dataclass
class StructuredDataset:
    """A dataset stored at ``uri`` (the literal, not ``kernelflow.types.structured``'s class)."""

    uri: str
    metadata: StructuredDatasetMetadata | None = None


@dataclass
class Scalar:
    """One of: ``primitive``, ``blob``, ``binary``, ``none_type``, ``generic`` (a dict),
    ``structured_dataset``."""

    primitive: Primitive | None = None
    blob: Blob | None = None
    binary: Binary | None = None
    schema: Any = None
    union: Any = None
    none_type: Void | None = None
    error: Any = None
    generic: dict[str, Any] | None = None
    structured_dataset: StructuredDataset | None = None

    @property
    def value(self) -> Any:
        return _first_set(self)


@dataclass
class LiteralCollection:
    literals: list[Literal] = field(default_factory=list)


@dataclass
class LiteralMap:
    literals: dict[str, Literal] = field(default_factory=dict)


@dataclass
class Literal:
    """A value in Flyte's type system: a ``scalar``, a ``collection`` or a ``map``."""

    scalar: Scalar | None = None
    collection: LiteralCollection | None = None
    map: LiteralMap | None = None
    hash: str | None = None
    metadata: dict[str, str] | None = None

    @property
    def value(self) -> Any:
        return self.scalar or self.collection or self.map


def _first_set(model: Any) -> Any:
    for name in model.__dataclass_fields__:
        value = getattr(model, name)
        if value is not None:
            return value
    return None


def __getattr__(name: str) -> Any:
    return refuse(__name__, name)
