"""``kernelflow.extras.tasks``: Flyte's ``flytekit.extras.tasks`` path."""

from kernelflow.exceptions.unsupported import refuse


def __getattr__(name: str) -> object:
    refuse(__name__, name)
