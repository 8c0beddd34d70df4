"""``flytekit.extend``: what a Flyte program uses to extend Flyte, where kernelflow has it.

``TypeEngine`` and ``TypeTransformer`` (a type of your own, stored, hashed and
read back through your transformer: :mod:`kernelflow.core.type_engine`),
``FlyteContext`` and ``FlyteContextManager`` (:mod:`kernelflow.core.context_manager`),
``TypeTransformerFailedError``. Flyte's other extension points (custom task
types, plugins of its backend) fail with the one UnsupportedFeatureError message.
"""

from __future__ import annotations

from typing import Any

from kernelflow.core.context_manager import FlyteContext, FlyteContextManager
from kernelflow.core.data_persistence import FileAccessProvider
from kernelflow.core.type_engine import TypeEngine, TypeTransformer, TypeTransformerFailedError
from kernelflow.exceptions.unsupported import refuse

__all__ = [
    "FileAccessProvider",
    "FlyteContext",
    "FlyteContextManager",
    "TypeEngine",
    "TypeTransformer",
    "TypeTransformerFailedError",
]


def __getattr__(name: str) -> Any:
    return refuse(__name__, name)
