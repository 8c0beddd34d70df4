"""Flyte's ``flytekit.exceptions`` at the same path: the errors a task raises on purpose.

``kernelflow.exceptions.user.FlyteRecoverableException`` is the one the engine
treats specially: raised in a task, it spends one of the task's ``retries``
(any other exception fails the task at once, as in Flyte). Other Flyte names
here resolve where kernelflow has a meaning for them; the rest fail with one
message that points to README "Flyte compatibility".
"""

from __future__ import annotations

from typing import Any

from kernelflow.exceptions.unsupported import refuse


def __getattr__(name: str) -> Any:
    return refuse(__name__, name)
