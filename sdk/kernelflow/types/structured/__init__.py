"""``flytekit.types.structured``: ``StructuredDataset`` and its encoders and decoders.

The dataset itself is in :mod:`kernelflow.types.structured.structured_dataset`,
at Flyte's path. ``register_csv_handlers()`` (and Flyte's other
``register_*_handlers``) are accepted with no effect: locally a dataset is
Parquet underneath, whatever format annotation it carries (``CSV``).
"""

from __future__ import annotations

from typing import Any

from kernelflow.exceptions.unsupported import refuse
from kernelflow.types.structured.structured_dataset import *  # noqa: F403
from kernelflow.types.structured.structured_dataset import __all__ as _DATASET_NAMES

__all__ = [
    *_DATASET_NAMES,
    "register_arrow_handlers",
    "register_csv_handlers",
    "register_pandas_handlers",
]


def register_csv_handlers() -> None:
    """Flyte's CSV encoder for pandas: accepted; the data stays Parquet underneath."""


def register_pandas_handlers() -> None:
    """Built in: pandas frames are always handled."""


def register_arrow_handlers() -> None:
    """Built in: Arrow tables are always handled."""


def __getattr__(name: str) -> Any:
    return refuse(__name__, name)
