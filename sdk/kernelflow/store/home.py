"""The store: one directory holding artifacts, checkpoints and the run database.

``$KERNELFLOW_HOME`` names it; the default is ``./.kernelflow``, beside the
notebook or script, like papermill's outputs. Everything a run leaves behind is
here, so deleting the directory resets kernelflow completely.

``$KERNELFLOW_STORE`` (any fsspec URL: ``s3://bucket/prefix``,
``file:///shared/mount``, ``memory://name``) moves the artifacts elsewhere,
where a team can share them; the home keeps the rest (run database,
checkpoints, the signing key unless ``$KERNELFLOW_STORE_KEY`` is set). Which
URL wins: ``kernelflow --store URL`` (it sets the variable for the command),
then ``$KERNELFLOW_STORE``, then the home itself.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from kernelflow.store.artifacts import ArtifactStore
from kernelflow.store.blobs import open_blobs
from kernelflow.store.runs import RunStore

HOME_ENV = "KERNELFLOW_HOME"
STORE_ENV = "KERNELFLOW_STORE"
DEFAULT_HOME = ".kernelflow"


class Store:
    """Artifacts (files, or objects at ``store_url``) and run history (SQLite) of one home."""

    def __init__(self, home: str | os.PathLike[str], store_url: str | None = None) -> None:
        self.home = Path(home).absolute()
        self.store_url = store_url or None
        self.artifacts = open_artifacts(self.home, self.store_url)
        self.runs = RunStore(self.home / "runs.sqlite")

    def __repr__(self) -> str:
        where = f", {self.artifacts.location!r}" if self.store_url else ""
        return f"Store({str(self.home)!r}{where})"


_stores: dict[tuple[Path, str | None], Store] = {}
_artifacts: dict[tuple[Path, str | None], ArtifactStore] = {}
_lock = threading.RLock()  # open_store holds it while Store opens its artifacts


def default_home() -> Path:
    return Path(os.environ.get(HOME_ENV) or DEFAULT_HOME).absolute()


def configured_store_url() -> str | None:
    """``$KERNELFLOW_STORE``, or None for artifacts in the home."""
    return os.environ.get(STORE_ENV) or None


def open_artifacts(
    home: str | os.PathLike[str] | None = None, store_url: str | None = None
) -> ArtifactStore:
    """Only the artifacts of :func:`open_store` (no run database is opened, nor created):
    for a worker's checkpoints, or for reading a notebook's outputs."""
    path = Path(home).absolute() if home is not None else default_home()
    url = store_url or configured_store_url()
    with _lock:
        artifacts = _artifacts.get((path, url))
        if artifacts is None:
            blobs = open_blobs(url, path)
            artifacts = _artifacts[(path, url)] = ArtifactStore(path, blobs=blobs)
        return artifacts


def open_store(home: str | os.PathLike[str] | None = None, store_url: str | None = None) -> Store:
    """The store at ``home`` (default: ``$KERNELFLOW_HOME`` or ``./.kernelflow``), opened once.

    Its artifacts go to ``store_url``, default ``$KERNELFLOW_STORE`` (read now, so
    a process that changes the variable opens the store it names).
    """
    path = Path(home).absolute() if home is not None else default_home()
    url = store_url or configured_store_url()
    with _lock:
        store = _stores.get((path, url))
        if store is None:
            store = _stores[(path, url)] = Store(path, url)
        return store
