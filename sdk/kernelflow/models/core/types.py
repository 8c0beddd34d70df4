"""``flytekit.models.core.types``: ``BlobType``, the type of a file or a directory literal."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from kernelflow.exceptions.unsupported import refuse

__all__ = ["BlobType"]


@dataclass
class BlobType:
    """A blob's format (``"csv"``, ``"binary"``) and whether it is one file or a directory."""

    class BlobDimensionality(enum.IntEnum):
        SINGLE = 0
        MULTIPART = 1

    format: str
    dimensionality: int = BlobDimensionality.SINGLE


def __getattr__(name: str) -> Any:
    return refuse(__name__, name)
