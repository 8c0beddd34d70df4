"""The store: one directory holding artifacts, checkpoints and the run database.

``$KERNELFLOW_HOME`` names it; the default is ``./.kernelflow``, beside the
notebook or script, like papermill's outputs. Everything a run leaves behind is
here, so deleting the directory resets kernelflow completely, unless
``$KERNELFLOW_RUNS`` moves run history to a PostgreSQL server that a team shares
(``postgresql://user:password@host:port/db``; ``sqlite:///PATH`` names another
SQLite file).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from kernelflow._core.errors import StoreConfigurationError
from kernelflow.store._database import POSTGRES_SCHEMES, SQLITE_SCHEME, mask_url
from kernelflow.store.artifacts import ArtifactStore
from kernelflow.store.runs import RunStore

HOME_ENV = "KERNELFLOW_HOME"
RUNS_ENV = "KERNELFLOW_RUNS"
DEFAULT_HOME = ".kernelflow"


class Store:
    """Artifacts (files) and run history (SQLite, or PostgreSQL) under one root directory.

    The run database is opened first: a server that cannot be reached is reported
    before anything is written.
    """

    def __init__(self, home: str | os.PathLike[str], *, runs: str | None = None) -> None:
        self.home = Path(home).absolute()
        self.runs = RunStore(runs or self.home / "runs.sqlite", home=self.home)
        self.artifacts = ArtifactStore(self.home)

    def __repr__(self) -> str:
        return f"Store({str(self.home)!r})"


_stores: dict[tuple[Path, str | None], Store] = {}
_lock = threading.Lock()


def default_home() -> Path:
    return Path(os.environ.get(HOME_ENV) or DEFAULT_HOME).absolute()


def runs_url() -> str | None:
    """``$KERNELFLOW_RUNS``, checked; ``None`` keeps run history in the store's SQLite file."""
    url = os.environ.get(RUNS_ENV) or None
    if url is not None and not url.startswith((*POSTGRES_SCHEMES, SQLITE_SCHEME)):
        raise StoreConfigurationError(
            f"{RUNS_ENV}={mask_url(url)} names no run database kernelflow knows",
            fix="use postgresql://USER:PASSWORD@HOST:PORT/DATABASE or sqlite:///PATH, "
            f"or unset {RUNS_ENV} to keep run history in $KERNELFLOW_HOME",
            url=mask_url(url),
        )
    return url


def open_store(home: str | os.PathLike[str] | None = None) -> Store:
    """The store at ``home`` (default: ``$KERNELFLOW_HOME`` or ``./.kernelflow``), with
    run history where ``$KERNELFLOW_RUNS`` says, opened once."""
    path = Path(home).absolute() if home is not None else default_home()
    runs = runs_url()
    with _lock:
        store = _stores.get((path, runs))
        if store is None:
            store = _stores[path, runs] = Store(path, runs=runs)
        return store


def close_stores(runs: str | None = None) -> None:
    """Close the stores :func:`open_store` opened (with run history at ``runs``, if given).

    For a process that is done with a database before it exits: a test whose
    server is about to go, a benchmark. Their deferred records are committed first;
    the next :func:`open_store` opens them again.
    """
    with _lock:
        keys = [key for key in _stores if runs is None or key[1] == runs]
        closing = [_stores.pop(key) for key in keys]
    for store in closing:
        store.runs.close()
