"""Heartbeats: how a machine tells that a run started on another machine has died.

A run's process is judged by its pid only on the host that started it
(:mod:`kernelflow.store._liveness`). Elsewhere (a teammate's machine reading a
shared run database) a ``running`` run whose process was killed would stay
``running`` forever. So while a run runs, a daemon thread of its process stamps
``runs.heartbeat_ts`` every :data:`HEARTBEAT_SECONDS`; a reader on another host
reports a run ``died`` once its stamp is older than :data:`STALE_AFTER_SECONDS`.

The margin is wide because the stamp is written by a Python thread: a task that
holds the GIL in C code for minutes delays it. A run wrongly seen as died is
set back by its own end (``finish_run`` overrides the verdict). A run that died
before its first stamp is judged only by its own host, as before heartbeats.
"""

from __future__ import annotations

import contextlib
import threading
import time
import weakref
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kernelflow.store.runs import RunStore

HEARTBEAT_SECONDS = 15.0
STALE_AFTER_SECONDS = 120.0


def stale(heartbeat_ts: float | None, now: float | None = None) -> bool:
    """Whether a run last stamped at ``heartbeat_ts`` has stopped stamping."""
    if heartbeat_ts is None:
        return False
    return (now if now is not None else time.time()) - heartbeat_ts > STALE_AFTER_SECONDS


class Heartbeat:
    """Stamps the runs this process runs, until they finish. Holds its store weakly."""

    def __init__(self, store: RunStore) -> None:
        self.runs: set[str] = set()
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        thread = threading.Thread(
            target=self._loop, args=(weakref.ref(store),), name="kernelflow-heartbeat", daemon=True
        )
        thread.start()

    def add(self, run_id: str) -> None:
        with self._lock:
            self.runs.add(run_id)

    def discard(self, run_id: str) -> None:
        with self._lock:
            self.runs.discard(run_id)

    def stop(self) -> None:
        self._stopped.set()

    def _loop(self, store_ref: weakref.ref[RunStore]) -> None:
        while not self._stopped.wait(HEARTBEAT_SECONDS):
            store = store_ref()
            if store is None:
                return
            with self._lock:
                running = sorted(self.runs)
            for run_id in running:
                with contextlib.suppress(Exception):  # a stamp missed is made next time
                    store.beat(run_id)
            del store
