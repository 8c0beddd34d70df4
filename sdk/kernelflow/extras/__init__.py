"""``kernelflow.extras``: Flyte's ``flytekit.extras`` path (shell tasks)."""

from kernelflow.exceptions.unsupported import refuse


def __getattr__(name: str) -> object:
    refuse(__name__, name)
