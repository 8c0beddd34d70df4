"""The store: one directory holding artifacts, checkpoints and the run database.

``$KERNELFLOW_HOME`` names it; the default is ``./.kernelflow``, beside the
notebook or script, like papermill's outputs. Everything a run leaves behind is
here, so deleting the directory resets kernelflow completely, unless one of two
variables moves part of it where a team can share it:

``$KERNELFLOW_STORE`` (any fsspec URL: ``s3://bucket/prefix``,
``file:///shared/mount``, ``memory://name``) moves the artifacts; the home keeps
checkpoints and the signing key unless ``$KERNELFLOW_STORE_KEY`` is set. Which
URL wins: ``kernelflow --store URL`` (it sets the variable for the command),
then ``$KERNELFLOW_STORE``, then the home itself.

``$KERNELFLOW_RUNS`` moves run history to a PostgreSQL server
(``postgresql://user:password@host:port/db``; ``sqlite:///PATH`` names another
SQLite file); on a server, signals and launch plans move there with it
(:mod:`kernelflow.store.small_db`).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from kernelflow._core.errors import ConfigurationError
from kernelflow.store._database import POSTGRES_SCHEMES, SQLITE_SCHEME, mask_url
from kernelflow.store.artifacts import ArtifactStore
from kernelflow.store.blobs import open_blobs
from kernelflow.store.runs import RunStore
from kernelflow.store.signals import SignalStore
from kernelflow.store.small_db import SmallKind, SmallTables, small_tables

HOME_ENV = "KERNELFLOW_HOME"
STORE_ENV = "KERNELFLOW_STORE"
RUNS_ENV = "KERNELFLOW_RUNS"
DEFAULT_HOME = ".kernelflow"


class Store:
    """Artifacts (files, or objects at ``store_url``) and run history (SQLite in the
    home, or the database at ``runs``) of one home.

    The run database is opened first: a server that cannot be reached is reported
    before anything is written.
    """

    def __init__(
        self,
        home: str | os.PathLike[str],
        store_url: str | None = None,
        *,
        runs: str | None = None,
    ) -> None:
        self.home = Path(home).absolute()
        self.store_url = store_url or None
        self.runs = RunStore(runs or self.home / "runs.sqlite", home=self.home)
        self.artifacts = open_artifacts(self.home, self.store_url)
        self.signals = SignalStore(self.home, self.runs)  # where the run history is

    def __repr__(self) -> str:
        where = f", {self.artifacts.location!r}" if self.store_url else ""
        return f"Store({str(self.home)!r}{where})"


_stores: dict[tuple[Path, str | None, str | None], Store] = {}
_artifacts: dict[tuple[Path, str | None], ArtifactStore] = {}
_lock = threading.RLock()  # open_store holds it while Store opens its artifacts


def default_home() -> Path:
    return Path(os.environ.get(HOME_ENV) or DEFAULT_HOME).absolute()


def configured_store_url() -> str | None:
    """``$KERNELFLOW_STORE``, or None for artifacts in the home."""
    return os.environ.get(STORE_ENV) or None


def runs_url() -> str | None:
    """``$KERNELFLOW_RUNS``, checked; ``None`` keeps run history in the store's SQLite file."""
    url = os.environ.get(RUNS_ENV) or None
    if url is not None and not url.startswith((*POSTGRES_SCHEMES, SQLITE_SCHEME)):
        raise ConfigurationError(
            f"{RUNS_ENV}={mask_url(url)} names no run database kernelflow knows",
            fix="use postgresql://USER:PASSWORD@HOST:PORT/DATABASE or sqlite:///PATH, "
            f"or unset {RUNS_ENV} to keep run history in $KERNELFLOW_HOME",
            url=mask_url(url),
        )
    return url


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

    Its artifacts go to ``store_url``, default ``$KERNELFLOW_STORE``, and its run
    history where ``$KERNELFLOW_RUNS`` says (both read now, so a process that
    changes a variable opens the store it names).
    """
    path = Path(home).absolute() if home is not None else default_home()
    url = store_url or configured_store_url()
    runs = runs_url()
    with _lock:
        store = _stores.get((path, url, runs))
        if store is None:
            store = _stores[(path, url, runs)] = Store(path, url, runs=runs)
        return store


def open_tables(kind: SmallKind, home: str | os.PathLike[str] | None = None) -> SmallTables:
    """The small tables of ``kind`` (the launch plans) of the store at ``home`` (default:
    ``$KERNELFLOW_HOME``): in the run database when ``$KERNELFLOW_RUNS`` names a
    server, else in their SQLite file in the home, without opening any run database."""
    path = Path(home).absolute() if home is not None else default_home()
    url = runs_url()
    on_server = url is not None and url.startswith(POSTGRES_SCHEMES)
    return small_tables(kind, path, open_store(path).runs if on_server else None)


def close_stores(runs: str | None = None) -> None:
    """Close the stores :func:`open_store` opened (with run history at ``runs``, if given).

    For a process that is done with a database before it exits: a test whose
    server is about to go, a benchmark. Their deferred records are committed first;
    the next :func:`open_store` opens them again.
    """
    with _lock:
        keys = [key for key in _stores if runs is None or key[2] == runs]
        closing = [_stores.pop(key) for key in keys]
    for store in closing:
        store.runs.close()
