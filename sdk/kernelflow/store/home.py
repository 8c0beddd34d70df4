"""The store: one directory holding artifacts, checkpoints and the run database.

``$KERNELFLOW_HOME`` names it; the default is ``./.kernelflow``, beside the
notebook or script, like papermill's outputs. Everything a run leaves behind is
here, so deleting the directory resets kernelflow completely.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from kernelflow.store.artifacts import ArtifactStore
from kernelflow.store.runs import RunStore

HOME_ENV = "KERNELFLOW_HOME"
DEFAULT_HOME = ".kernelflow"


class Store:
    """Artifacts (files) and run history (SQLite) under one root directory."""

    def __init__(self, home: str | os.PathLike[str]) -> None:
        self.home = Path(home).absolute()
        self.artifacts = ArtifactStore(self.home)
        self.runs = RunStore(self.home / "runs.sqlite")

    def __repr__(self) -> str:
        return f"Store({str(self.home)!r})"


_stores: dict[Path, Store] = {}
_lock = threading.Lock()


def default_home() -> Path:
    return Path(os.environ.get(HOME_ENV) or DEFAULT_HOME).absolute()


def open_store(home: str | os.PathLike[str] | None = None) -> Store:
    """The store at ``home`` (default: ``$KERNELFLOW_HOME`` or ``./.kernelflow``), opened once."""
    path = Path(home).absolute() if home is not None else default_home()
    with _lock:
        store = _stores.get(path)
        if store is None:
            store = _stores[path] = Store(path)
        return store
