"""``kernelflow.configuration.Config``: where the remote client finds executions.

Flyte's ``Config`` points ``FlyteRemote`` at a Flyte backend. Here the backend is
the local run store, so every constructor resolves to a store home: ``auto()``
and ``for_sandbox()`` to ``$KERNELFLOW_HOME`` (or ``./.kernelflow``), resolved
when the config is made; ``Config(store=PATH)`` to another store.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kernelflow.api import default_home
from kernelflow.errors import KernelflowError


@dataclass(frozen=True)
class Config:
    """A store home for :class:`kernelflow.remote.FlyteRemote`."""

    store: str = field(default_factory=lambda: str(default_home()))

    @property
    def home(self) -> Path:
        return Path(self.store).absolute()

    @classmethod
    def auto(cls, config_file: str | os.PathLike[str] | None = None) -> Config:
        """The store of ``$KERNELFLOW_HOME`` (or ``./.kernelflow``); Flyte's config file
        has nothing to say about a local store and is ignored."""
        return cls()

    @classmethod
    def for_sandbox(cls) -> Config:
        """The local store: it is this machine's sandbox."""
        return cls()

    @classmethod
    def for_endpoint(cls, endpoint: str, insecure: bool = False, **options: Any) -> Config:
        raise KernelflowError(
            f"kernelflow has no Flyte backend to reach at {endpoint!r}; "
            "its executions are in the local run store",
            fix="use Config.auto() (or Config(store=PATH) for another store)",
        )


__all__ = ["Config"]
