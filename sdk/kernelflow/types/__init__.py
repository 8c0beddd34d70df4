"""Flyte's data types at Flyte's paths: files, directories and structured datasets.

``kernelflow.types.file.FlyteFile``, ``kernelflow.types.directory.FlyteDirectory``
and ``kernelflow.types.structured.StructuredDataset`` (with ``kwtypes``). They sit
above the engine (the workflows layer): the core and the engine know them only
through the protocol of :mod:`kernelflow._core.adapt` (adapt, hash by content,
copy into the store).
"""

from __future__ import annotations

from kernelflow.types.directory import FlyteDirectory
from kernelflow.types.file import FlyteFile
from kernelflow.types.structured import StructuredDataset, kwtypes

__all__ = ["FlyteDirectory", "FlyteFile", "StructuredDataset", "kwtypes"]
