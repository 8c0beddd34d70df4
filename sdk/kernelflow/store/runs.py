"""The run store: run history, node executions, the cache index and lineage, in a database.

Why a database and not files: run history is queried (newest runs of a workflow,
the last unfinished run, every attempt of a node) and written from several threads
and processes at once (parallel runs sharing ``$KERNELFLOW_HOME``, or a team
sharing one server). The database is a SQLite file in the store (the default), or
a PostgreSQL server named by ``$KERNELFLOW_RUNS``; what differs between the two is
in :mod:`kernelflow.store._database` and :mod:`kernelflow.store._postgres`, and the
logic here is the same for both.

A commit costs more than a quick task (a write to SQLite's log; a round trip to a
server), so the engine defers the records of quick tasks, and a run's start and
end: they are journaled on this machine (:mod:`kernelflow.store._journal`) and
committed together by a background thread at most :data:`MAX_DEFER_SECONDS`
later, or sooner by the next read in this process, the record of a slow task, or
the interpreter's exit. A killed process loses none of them: the next store opened
on this machine with the same database replays its journal. A power cut may lose
the last commits to SQLite; neither it nor a killed process corrupts the records.

Values go in as JSON text; anything JSON cannot encode is stored as its ``repr()``,
because the store describes runs and must never make one fail.

:class:`RunStore` is the whole public API. The tables and the encoding of their
columns are in :mod:`kernelflow.store._schema`, lineage building in
:mod:`kernelflow.store._lineage`, and the check that a run's process is still
alive in :mod:`kernelflow.store._liveness`.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import heapq
import os
import threading
import time
import warnings
import weakref
from collections.abc import Callable, Collection, Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from kernelflow._core.errors import KernelflowError, KernelflowWarning, StoreError
from kernelflow._core.scope import Scope, current_scope
from kernelflow._core.status import NODE_STATUSES, RUN_STATUSES, NodeStatus, RunStatus
from kernelflow.store._database import Database, file_error, open_database
from kernelflow.store._heartbeat import Heartbeat, stale
from kernelflow.store._journal import Journal, Line, crash_point, orphans, read
from kernelflow.store._lineage import build_lineage, resolve_node
from kernelflow.store._liveness import boot_id, pid_alive
from kernelflow.store._maintenance import Forgotten, forget, referenced
from kernelflow.store._schema import (
    CACHE_COLUMNS,
    CACHE_PUT,
    CACHE_PUT_V3,
    CLAIM_ENTRY,
    HITS_OF_RUN,
    INSERT_HIT,
    INSERT_NODE,
    NODE_COLUMNS,
    REPLAY_NODE,
    RUN_COLUMNS,
    SCHEMA_VERSION,
    Encoded,
    cache_dict,
    dumps,
    dumps_record,
    hit_dict,
    iso,
    loads,
    loads_record,
    node_dict,
)

__all__ = ["SCHEMA_VERSION", "CacheHit", "Encoded", "NodeStatus", "RunStatus", "RunStore"]


_RUN_STATUSES = RUN_STATUSES
_NODE_STATUSES = NODE_STATUSES
_DONE = ("succeeded", "cached")
_BUSY_RETRY_SECONDS = 120.0  # on top of SQLite's own 30 s busy timeout per attempt
_ABANDONED: list[Database] = []  # connections inherited through fork()
_T = TypeVar("_T")


class CacheHit(NamedTuple):
    """A cache entry as a hit uses it: outputs by name, the same as stored JSON, and
    the duration of the run that produced them (what the hit saves)."""

    outputs: dict[str, dict[str, Any]]
    outputs_json: Encoded
    duration: float


_CACHE_PUT = CACHE_PUT
_PROMOTION_COLUMNS = (
    "project, workflow, version, from_domain, to_domain, promoted_by, promoted, promoted_ts"
)
_INSERT_RUN = (
    "INSERT INTO runs (run_id, workflow, version, status, started, started_ts,"
    " params, environment, pid, host, boot_id, resumed_from, project, domain)"
    " VALUES (?, ?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# A run's start as a journal written before schema version 4 holds it: in the
# default project and domain, where everything was then.
_INSERT_RUN_V3 = (
    "INSERT OR IGNORE INTO runs (run_id, workflow, version, status, started, started_ts,"
    " params, environment, pid, host, boot_id, resumed_from)"
    " VALUES (?, ?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?)"
)
# The statements that may be deferred, by the name they have in a journal file.
_FINISH_RUN = (
    "UPDATE runs SET status = ?, finished = ?, finished_ts = ?, error = ?, outputs = ?"
    " WHERE run_id = ?"
)
_DEFERRABLE = {
    _INSERT_RUN: "scoped_run",
    INSERT_NODE: "node",
    _CACHE_PUT: "scoped_cache_put",
    _FINISH_RUN: "run_finish",
}
# How a journal line of each kind is replayed: idempotently, because a journal may
# end with lines its process committed just before dying, and a replay cut short
# after its commit is done again.
_REPLAYED = {
    **{kind: sql for sql, kind in _DEFERRABLE.items()},
    "scoped_run": _INSERT_RUN.replace("INSERT", "INSERT OR IGNORE", 1),
    "node": REPLAY_NODE,
    "run": _INSERT_RUN_V3,
    "cache_put": CACHE_PUT_V3,
}
# Not a statement: a cache hit, written by RunStore._insert_hit as a compact hit, or
# as a full node record when its entry no longer holds what the hit used.
_HIT = "cache hit"
_WITH_DEFERRED: weakref.WeakSet[RunStore] = weakref.WeakSet()  # committed at exit
MAX_DEFER_SECONDS = 0.05  # a deferred write is committed at most this much later


class RunStore:
    """Run history, node executions, cache index and lineage in one database.

    One connection per process, guarded by a lock, so an instance can be shared by
    the engine's threads. It is also safe across ``fork()`` (the child opens its own
    connection on first use) and pickles as its location, so it can be sent to
    workers.

    Parameters
    ----------
    path:
        The SQLite file (a path or ``sqlite:///PATH``; it and its parent
        directories are created if missing), or a ``postgresql://`` URL.
    home:
        For a PostgreSQL URL, the local store directory that keeps this machine's
        journal of deferred writes (default ``$KERNELFLOW_HOME``).
    """

    def __init__(
        self, path: str | os.PathLike[str], *, home: str | os.PathLike[str] | None = None
    ) -> None:
        self._target, self._home = os.fspath(path), None if home is None else Path(home)
        self._db = open_database(self._target, home=self._home)
        self.location = self._db.location  # for messages: a path, or a URL without password
        self.path: Path | None = getattr(self._db, "path", None)  # the SQLite file, if one
        self._lock = threading.Lock()
        self._connected = False
        self._pid = os.getpid()
        import socket  # lazily: only the constructor needs it, and it is slow to import

        self._host = socket.gethostname()
        self._boot_id = boot_id()
        self._closed = False
        self._deferred: list[tuple[str, tuple[Any, ...]]] = []
        self._deferred_since = 0.0
        # Deferred cache entries, (project, domain, key) -> (outputs JSON, duration),
        # for cache_lookup.
        self._pending_cache: dict[tuple[str, str, str], tuple[str, float]] = {}
        self._journal = Journal(self._db.journal)
        self._pending = threading.Lock()  # the deferred list and the journal
        self._flushing = threading.Lock()  # one batch at a time, in the order deferred
        self._flusher: _Flusher | None = None
        self._heartbeat: Heartbeat | None = None  # made when this process starts a run
        self._connect()
        self._replay_orphans()

    # -- connection ----------------------------------------------------------------

    def _connect(self) -> None:
        self._retry(self._db.connect)
        self._connected = True

    def _connection(self) -> Database:
        if self._pid != os.getpid():  # forked: the parent's connection is not ours
            if self._connected:  # closing it here could drop the parent's locks
                _ABANDONED.append(self._db)
            self._db, self._connected = self._db.fresh(), False
            self._pid, self._lock = os.getpid(), threading.Lock()
            self._deferred, self._journal = [], Journal(self._db.journal)
            self._pending_cache = {}
            self._pending, self._flushing = threading.Lock(), threading.Lock()
            self._flusher = self._heartbeat = None  # threads do not survive a fork
            if not self._closed:
                self._connect()
        if not self._connected:
            raise StoreError(
                f"the run store {self.location} is closed",
                fix="open a new RunStore",
                path=self.location,
            )
        return self._db

    def close(self) -> None:
        """Close the connection (writing deferred records first); later calls raise."""
        if self._deferred and not self._closed:
            self.flush()
        if self._heartbeat is not None:
            self._heartbeat.stop()
        self._journal.close()
        self._closed = True
        if self._flusher is not None:
            self._flusher.stop()
        if self._connected and self._pid != os.getpid():
            _ABANDONED.append(self._db)  # inherited through fork: the parent's to close
        elif self._connected:
            with self._lock:
                self._db.close()
        self._connected = False

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, object]:
        return {"path": self._target, "home": self._home}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__init__(str(state["path"]), home=state.get("home"))  # type: ignore[misc]

    def _retry(self, action: Callable[[], _T]) -> _T:
        """Run ``action``, retrying while the failure is transient (:meth:`Database.busy`:
        another process holds SQLite's lock; two PostgreSQL transactions conflicted)."""
        deadline, delay = time.monotonic() + _BUSY_RETRY_SECONDS, 0.005
        while True:
            try:
                return action()
            except self._db.IntegrityError:
                raise
            except self._db.Error as exc:  # self._db: the action may have reopened it
                if not self._db.busy(exc) or time.monotonic() > deadline:
                    raise self._db.failure(exc) from exc
            time.sleep(delay)
            delay = min(delay * 2, 0.25)

    def _write(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        db = self._db
        try:  # the hot path: no retry machinery unless the database complains
            return self._write_once(sql, params)
        except db.IntegrityError:
            raise
        except db.Error:
            return self._retry(functools.partial(self._write_once, sql, params))

    def _write_once(self, sql: str, params: tuple[Any, ...]) -> int:
        conn = self._connection()
        with self._lock:
            return conn.execute(sql, params).rowcount

    # -- deferred writes -------------------------------------------------------------

    def _defer(self, sql: str, params: tuple[Any, ...], *, journal: bool = True) -> None:
        with self._pending:
            first = not self._deferred
            if first:
                self._deferred_since = time.monotonic()
            self._deferred.append((sql, params))
            if journal:
                try:
                    self._journal.append(_DEFERRABLE[sql], params)
                except OSError as exc:  # kept in memory: the next flush may still commit it
                    raise file_error(self._journal.path, exc) from exc
        if first:  # committed within MAX_DEFER_SECONDS even if the engine is busy
            if self._flusher is None:
                self._flusher = _Flusher(self)
                _WITH_DEFERRED.add(self)
            self._flusher.wake()

    def sync(self) -> None:
        """Make the deferred writes survive this process's death (they are in its journal).

        The engine calls this before it runs user code, which may kill the process,
        and when a run ends: a batch of records costs one write to the OS.
        """
        with self._pending:
            try:
                self._journal.sync()
            except OSError as exc:
                raise file_error(self._journal.path, exc) from exc

    def _replay_orphans(self) -> None:
        """Commit what processes that died had journaled but not yet written.

        A replay cut short (Ctrl-C, a kill, a full disk) is done again by the next
        store opened: the journal is given back, or its claim outlives this process.
        """
        for claim in orphans(self._journal.directory):
            try:
                lines, problems = read(claim.path)
                refused = self._retry(functools.partial(self._replay, lines))
            except BaseException:
                claim.release()
                raise
            claim.done()
            for problem in [*problems, *refused]:
                warnings.warn(
                    f"the journal {claim.original}: {problem}; that record was skipped, "
                    "the others were replayed",
                    KernelflowWarning,
                    stacklevel=2,
                )

    def _replay(self, lines: list[Line]) -> list[str]:
        """Journal lines in one transaction; why each line the database refused was."""
        db = self._connection()
        refused = []
        with self._lock, db.transaction():  # rolled back after a Ctrl-C too
            for line in lines:
                try:
                    with db.savepoint():
                        db.execute(_REPLAYED[line.kind], line.params)
                except db.refused as exc:
                    refused.append(f"line {line.number} is refused by the database ({exc})")
                crash_point("mid-insert")
        return refused

    @property
    def deferred(self) -> int:
        """How many writes wait for :meth:`flush`."""
        return len(self._deferred)

    def flush_due(self, *, max_age: float = MAX_DEFER_SECONDS, max_count: int = 256) -> bool:
        """Whether deferred writes are old or many enough that they should be flushed now."""
        return bool(self._deferred) and (
            len(self._deferred) >= max_count or time.monotonic() - self._deferred_since >= max_age
        )

    def flush(self) -> None:
        """Write every deferred record in one transaction.

        A commit costs tens of microseconds, more than a tiny task; the engine
        defers a run's start and end and the records of quick tasks, and they
        are committed together, by a background thread at most
        :data:`MAX_DEFER_SECONDS` after the first of them, or sooner by this
        call (a read in this process makes it first). Until then they are in this
        process's journal, which survives a crash.
        """
        self._flush_with(None)

    def _flush_with(self, last: tuple[str, tuple[Any, ...]] | None) -> int:
        """Write the deferred records, then ``last``, in one transaction; its row count."""
        with self._flushing:  # batches taken in order are written in that order
            with self._pending:
                pending, self._deferred = self._deferred, []
                mark = self._journal.mark()
            statements = pending if last is None else [*pending, last]
            if not statements:
                return 0
            try:
                changed = self._retry(functools.partial(self._write_batch, statements))
            except BaseException:
                with self._pending:  # not lost: they stay deferred (and journaled)
                    self._deferred[:0] = pending
                raise
        if pending:
            with self._pending:
                self._journal.drop_until(mark)
                for sql, params in pending:  # the index has them now
                    if sql is _CACHE_PUT:
                        entry = (params[7], params[8], params[0])
                        if self._pending_cache.get(entry, (None,))[0] is params[2]:
                            del self._pending_cache[entry]
        return changed

    def _write_batch(self, statements: list[tuple[str, tuple[Any, ...]]]) -> int:
        """The statements in one transaction; the row count of the last one."""
        db = self._connection()
        changed = 0
        numbers: dict[str, int] = {}  # run id -> its number in run_numbers, for hits
        with self._lock, db.transaction():
            for sql, params in statements:
                if sql is _HIT:
                    changed = _insert_hit(db, params, numbers)
                else:
                    changed = db.execute(sql, params).rowcount
        return changed

    def _query(
        self, sql: str, params: tuple[Any, ...] = (), *, fresh: bool = True
    ) -> list[dict[str, Any]]:
        if fresh and self._deferred:  # a reader in this process sees what it wrote
            self.flush()

        def action() -> list[dict[str, Any]]:
            db = self._connection()
            with self._lock:
                cursor = db.execute(sql, params)
                names = [d[0] for d in cursor.description]
                return [dict(zip(names, row)) for row in cursor.fetchall()]

        return self._retry(action)

    # -- the other tables of a shared database ------------------------------------

    @property
    def shared(self) -> bool:
        """Whether the database is a server that many machines share (PostgreSQL), which
        then also keeps signals and launch plans (``_schema.SHARED_STATE``)."""
        return self.path is None

    def select(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        """Rows of one query (SQLite dialect) on those tables, by column name.

        Deferred run records are not flushed first: these tables are not theirs.
        """
        return self._query(sql, params, fresh=False)

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        """One statement (SQLite dialect) on those tables, committed at once (retried
        while the database is busy); the number of rows it changed."""
        return self._write(sql, params)

    # -- runs ----------------------------------------------------------------------

    def start_run(
        self,
        *,
        run_id: str,
        workflow: str,
        version: str,
        params: Mapping[str, object],
        environment: Mapping[str, object],
        pid: int | None = None,
        resumed_from: str | None = None,
        defer: bool = False,
        scope: Scope | None = None,
    ) -> None:
        """Record a run as ``running``; ``pid`` lets a later reader see that it died.

        ``defer`` (for a run id that is new for sure) journals the row and commits
        it with the run's first batch of records. The run belongs to ``scope``
        (default: the current project and domain, :mod:`kernelflow._core.scope`),
        checked before anything is written.
        """
        scope = scope or current_scope()
        now = time.time()
        row = (run_id, workflow, version, iso(now), now, dumps(params), dumps(environment))
        host = (pid, self._host, self._boot_id, resumed_from, scope.project, scope.domain)
        if pid is not None:  # this process runs it: stamp it while it runs
            if self._heartbeat is None:
                self._heartbeat = Heartbeat(self)
            self._heartbeat.add(run_id)
        if defer:
            self._defer(_INSERT_RUN, row + host)
            return
        try:
            self._write(_INSERT_RUN, row + host)
        except self._db.IntegrityError as exc:
            raise StoreError(
                f"run {run_id!r} is already in the run store {self.location}",
                fix="start every run with a new run_id; resumed_from= links it to the run "
                "it resumes",
                run_id=run_id,
            ) from exc

    def finish_run(
        self,
        run_id: str,
        *,
        status: RunStatus,
        error: str | None = None,
        outputs: Mapping[str, object] | None = None,
        defer: bool = False,
    ) -> None:
        """Record how a run ended (this also overrides a 'died' verdict made meanwhile).

        Deferred records are written in the same transaction: one commit, not two.
        ``defer`` (for a run this process started) journals the end instead, to be
        committed with the deferred records, off the caller's path: in a kernel,
        after the cell has returned.
        """
        _check_status(status, _RUN_STATUSES, "run")
        if self._heartbeat is not None:
            self._heartbeat.discard(run_id)
        now = time.time()
        encoded = None if outputs is None else dumps(outputs)
        params = (status, iso(now), now, error, encoded, run_id)
        if defer:
            self._defer(_FINISH_RUN, params)
            return
        changed = self._flush_with((_FINISH_RUN, params))
        if not changed:
            raise StoreError(
                f"cannot finish run {run_id!r}: it is not in the run store {self.location}",
                fix="call start_run() first, with the same run_id",
                run_id=run_id,
            )

    def beat(self, run_id: str) -> None:
        """Stamp a running run as alive now (the heartbeat thread calls it)."""
        self._write(
            "UPDATE runs SET heartbeat_ts = ? WHERE run_id = ? AND status = 'running'",
            (time.time(), run_id),
        )

    def get_run(self, run_id: str) -> dict[str, object] | None:
        """Every column of one run, JSON decoded; ``None`` when the id is unknown."""
        rows = self._query(f"SELECT {RUN_COLUMNS} FROM runs WHERE run_id = ?", (run_id,))
        return self._run_dict(rows[0]) if rows else None

    def last_run(
        self,
        workflow: str | None = None,
        *,
        unfinished: bool = False,
        project: str | None = None,
        domain: str | None = None,
    ) -> dict[str, object] | None:
        """The newest run (of ``workflow``, if given; in ``project`` and ``domain``, if
        given), all columns.

        With ``unfinished=True``: the newest run that can be resumed, that is one
        that did not succeed and whose process is not still running it.
        """
        where, params = _runs_filter(workflow, project, domain)
        if unfinished:
            where += (" AND " if where else " WHERE ") + "status != 'succeeded'"
        for row in self._query(
            f"SELECT {RUN_COLUMNS} FROM runs{where} ORDER BY started_ts DESC, rowid DESC", params
        ):
            run = self._run_dict(row)
            if not unfinished or run["status"] != "running" or not self._verifiable(row):
                return run
        return None

    def resumed_by(self, run_id: str) -> list[dict[str, object]]:
        """The runs that resumed ``run_id`` itself, oldest first, all columns."""
        sql = f"SELECT {RUN_COLUMNS} FROM runs WHERE resumed_from = ? ORDER BY started_ts, rowid"
        return [self._run_dict(row) for row in self._query(sql, (run_id,))]

    def list_runs(
        self,
        workflow: str | None = None,
        limit: int | None = None,
        *,
        project: str | None = None,
        domain: str | None = None,
    ) -> list[dict]:
        """Runs, newest first, with ``duration`` in seconds (``None`` while unfinished)
        and the run each resumed (``resumed_from``). Only those of ``workflow``,
        ``project`` and ``domain`` where given: every run of the store where not
        (``kernelflow gc`` sees them all).

        A ``running`` run whose process is gone from this host is reported, and
        recorded, as ``died``.
        """
        where, params = _runs_filter(workflow, project, domain)
        sql = f"SELECT {RUN_COLUMNS} FROM runs{where} ORDER BY started_ts DESC, rowid DESC"
        if limit is not None:
            sql, params = sql + " LIMIT ?", (*params, int(limit))
        keys = ("run_id", "workflow", "version", "status", "started", "finished", "params")
        keys += ("started_ts", "resumed_from", "project", "domain")
        runs = []
        for row in self._query(sql, params):
            run = self._run_dict(row)
            brief = {key: run[key] for key in keys}
            brief.update(error=run["error"], duration=run["duration"])
            runs.append(brief)
        return runs

    def _run_dict(self, row: dict[str, Any]) -> dict[str, object]:
        error = self._death(row) if row["status"] == "running" else None
        if error is not None:
            self._write(
                "UPDATE runs SET status = 'died', error = COALESCE(error, ?)"
                " WHERE run_id = ? AND status = 'running'",
                (error, row["run_id"]),
            )
            row = {**row, "status": "died", "error": row["error"] or error}
        run = dict(row)
        for column in ("params", "environment", "outputs"):
            run[column] = loads(row[column])
        end = row["finished_ts"]
        run["duration"] = None if end is None else end - row["started_ts"]
        return run

    def _death(self, row: Mapping[str, Any]) -> str | None:
        """Why a ``running`` run is dead, or None while it may be alive: on its own host
        its process is looked at; elsewhere, its heartbeat (store/_heartbeat.py)."""
        if self._verifiable(row):
            if not self._is_dead(row):
                return None
            return f"process {row['pid']} on {row['host']} ended without finishing the run"
        beat = row.get("heartbeat_ts")
        if not stale(beat):
            return None
        return (
            f"process {row['pid']} on {row['host']} stopped reporting at {iso(float(beat))} "
            "and did not finish the run"
        )

    def _verifiable(self, row: Mapping[str, Any]) -> bool:
        """Whether this host can tell if the run's process is alive."""
        return row["pid"] is not None and row["host"] == self._host and os.name == "posix"

    def _is_dead(self, row: Mapping[str, Any]) -> bool:
        if row["boot_id"] and self._boot_id and row["boot_id"] != self._boot_id:
            return True  # the machine rebooted since the run started
        return not pid_alive(int(row["pid"]), float(row["started_ts"]))

    # -- node executions -----------------------------------------------------------

    def record_node(
        self,
        *,
        run_id: str,
        node: str,
        task: str,
        attempt: int,
        status: NodeStatus,
        cache_hit: bool,
        cache_key: str | None,
        code_hash: str,
        inputs: Mapping[str, Mapping[str, object]],
        outputs: Mapping[str, Mapping[str, object]] | Encoded,
        started: float,
        duration: float,
        error: str | None = None,
        defer: bool = False,
    ) -> None:
        """Record one attempt of one node: one INSERT, committed at once.

        Committing each attempt is what lets ``resume`` trust every succeeded row
        after a crash. ``defer`` queues the row for the next :meth:`flush`
        instead (the engine does so for quick tasks). ``outputs`` may be JSON
        already (:class:`CacheHit.outputs_json`), stored as it is.
        """
        if status not in _NODE_STATUSES:
            _check_status(status, _NODE_STATUSES, "node")
        row = (
            run_id, node, task, attempt, status, cache_hit, cache_key, code_hash,
            dumps_record(inputs), dumps_record(outputs), iso(started), started, duration, error,
        )  # fmt: skip
        if defer:
            # A deferred cache hit is not journaled: were it lost in a crash, the
            # resumed run would only look the cache up again.
            self._defer(INSERT_NODE, row, journal=not cache_hit)
        else:
            self._write(INSERT_NODE, row)

    def record_hit(
        self,
        *,
        run_id: str,
        node: str,
        task: str,
        cache_key: str,
        code_hash: str,
        inputs: Mapping[str, Mapping[str, object]],
        outputs: Mapping[str, Mapping[str, object]] | Encoded,
        started: float,
        defer: bool = False,
        scope: Scope | None = None,
    ) -> None:
        """Record a node restored from the cache entry under ``cache_key``, by reference.

        Read back, it is the record :meth:`record_node` would have written (status
        ``cached``); stored, it names the entry and the run by number, and its node
        and inputs only where they differ from those of the node that filled the
        entry: about 60 bytes, not 700. When the entry no longer holds ``outputs``
        (replaced or deleted meanwhile) it is written as a full record. Never
        journaled: were it lost in a crash, the resumed run would only look the
        cache up again. The entry is the one :meth:`cache_lookup` found in ``scope``.
        """
        scope = scope or current_scope()
        row = (
            run_id, node, task, 1, "cached", True, cache_key, code_hash, dumps_record(inputs),
            dumps_record(outputs), iso(started), started, 0.0, None,
            scope.project, scope.domain, scope.cache_from,
        )  # fmt: skip
        if defer:
            self._defer(_HIT, row, journal=False)
        else:
            self._flush_with((_HIT, row))

    def node_executions(self, run_id: str) -> list[dict]:
        """Every attempt of every node of a run, in the order they were recorded.

        Compact cache hits are merged in by their start time (full records keep the
        order they were written in, which is the order of their ends).
        """
        sql = f"SELECT {NODE_COLUMNS} FROM node_executions WHERE run_id = ? ORDER BY id"
        rows = [node_dict(row) for row in self._query(sql, (run_id,))]
        hits = [hit_dict(run_id, row) for row in self._query(HITS_OF_RUN, (run_id,), fresh=False)]
        if not hits:
            return rows
        return list(heapq.merge(rows, hits, key=lambda row: row["started_ts"]))

    def finished_nodes(self, run_id: str) -> dict[str, dict]:
        """Node id -> its last succeeded or cached execution, for resuming ``run_id``.

        Runs that ``run_id`` itself resumed are included (older runs first, so the
        newest success wins): resuming a resumed run must not redo what its
        ancestor finished.
        """
        finished: dict[str, dict] = {}
        for row in self._chain_executions(run_id):
            if row["status"] in _DONE:
                finished[row["node"]] = row
        return finished

    def latest_execution(self, name: str, *, output_hash: str | None = None) -> dict | None:
        """The newest finished execution of a node or task ``name``, or with an output ``name``.

        With ``output_hash``, only an execution whose output ``name`` has that
        content hash: the producer of a value that reached a task as a constant
        (a kernel variable a task cell made). For ``%workflow lineage NAME``.
        """
        done = ", ".join(f"'{status}'" for status in _DONE)
        by_name = "" if output_hash else "task = ? OR node = ? OR "
        sql = (
            f"SELECT {NODE_COLUMNS} FROM node_executions WHERE status IN ({done})"
            f" AND ({by_name}outputs LIKE ?) ORDER BY started_ts DESC, id DESC LIMIT 100"
        )
        key = f'%"{name}"%{output_hash}%' if output_hash else f'%"{name}"%'
        params = (key,) if output_hash else (name, name, key)
        for row in map(node_dict, self._query(sql, params)):  # LIKE only narrows them down
            output = row["outputs"].get(name)
            if output_hash is None and name in (row["task"], row["node"]):
                return row
            if isinstance(output, Mapping) and output_hash in (None, output.get("hash")):
                return row
        return None

    def chain_root(self, run_id: str) -> str:
        """The first run of the resume chain ``run_id`` belongs to (itself if it resumed none).

        What a chain shares is kept under this id: checkpoints, and signals.
        """
        return self._run_chain(run_id)[0]

    def _run_chain(self, run_id: str) -> list[str]:
        """``run_id`` and the runs it resumed, oldest first."""
        chain: list[str] = []
        current: str | None = run_id
        while current is not None and current not in chain:
            chain.append(current)
            rows = self._query("SELECT resumed_from FROM runs WHERE run_id = ?", (current,))
            current = rows[0]["resumed_from"] if rows else None
        return chain[::-1]

    def _chain_executions(self, run_id: str) -> Iterator[dict]:
        for member in self._run_chain(run_id):
            yield from self.node_executions(member)

    # -- cache index ---------------------------------------------------------------

    def cache_get(
        self, key: str, *, project: str | None = None, domain: str | None = None
    ) -> dict[str, object] | None:
        """The entry stored under a cache key (in ``project`` and ``domain``, default the
        current ones), with its hits, or ``None`` on a miss."""
        scope = current_scope(project, domain)
        sql = f"SELECT {CACHE_COLUMNS} FROM cache WHERE project = ? AND domain = ? AND key = ?"
        rows = self._query(sql, (scope.project, scope.domain, key))
        return cache_dict(rows[0]) if rows else None

    def cache_lookup(self, key: str, *, scope: Scope | None = None) -> CacheHit | None:
        """What a cache hit needs (outputs, and the duration it saves); None on a miss.

        Entries are looked up in the project and domain of ``scope`` (default the
        current one), then in its ``cache_from`` domain if it names one: never in
        any other domain. The engine's hot path: one narrow SELECT, without the
        fields of :meth:`cache_get`.
        """
        scope = scope or current_scope()
        row = self._lookup(scope.project, scope.domain, key)
        if row is None and scope.cache_from is not None:
            row = self._lookup(scope.project, scope.cache_from, key)
        if row is None:
            return None
        text, duration = row
        return CacheHit(loads_record(text), Encoded(text), float(duration or 0.0))

    def _lookup(self, project: str, domain: str, key: str) -> tuple[str, float] | None:
        # Entries this process has not committed yet are looked up in memory:
        # flushing here would cost a commit per task.
        row = self._pending_cache.get((project, domain, key))
        if row is not None:
            return row
        db = self._connection()
        sql = "SELECT outputs, duration FROM cache WHERE project = ? AND domain = ? AND key = ?"

        def action() -> tuple[str, float] | None:
            with self._lock:
                return db.execute(sql, (project, domain, key)).fetchone()

        return self._retry(action)

    def cache_put(
        self,
        key: str,
        *,
        task: str,
        outputs: Mapping[str, Mapping[str, object]],
        manifest: Mapping[str, object],
        duration: float,
        defer: bool = False,
        scope: Scope | None = None,
    ) -> None:
        """Index outputs under ``key`` in the project and domain of ``scope`` (never in
        its ``cache_from`` domain, which is read only); concurrent writers of one
        key: the last one wins."""
        scope = scope or current_scope()
        now = time.time()
        params = (
            key, task, dumps_record(outputs), dumps_record(manifest), duration, iso(now), now,
            scope.project, scope.domain,
        )  # fmt: skip
        if not defer:
            self._write(_CACHE_PUT, params)
            return
        self._defer(_CACHE_PUT, params)
        self._pending_cache[(scope.project, scope.domain, key)] = (params[2], duration)

    def cache_entries(
        self, task: str | None = None, *, project: str | None = None, domain: str | None = None
    ) -> list[dict]:
        """Cache entries (of ``task``, ``project`` and ``domain``, where given), newest first."""
        where, params = _where(("task", task), ("project", project), ("domain", domain))
        sql = f"SELECT {CACHE_COLUMNS} FROM cache{where} ORDER BY created_ts DESC, key"
        return [cache_dict(row) for row in self._query(sql, params)]

    def cache_delete(
        self,
        *,
        task: str | None = None,
        key: str | None = None,
        project: str | None = None,
        domain: str | None = None,
    ) -> int:
        """Remove entries matching what is given (all when nothing is); return the count."""
        where, values = _where(
            ("task", task), ("key", key), ("project", project), ("domain", domain)
        )
        self.flush()  # entries not yet committed are deleted too
        return self._write(f"DELETE FROM cache{where}", values)

    # -- promotions ----------------------------------------------------------------

    def record_promotion(
        self,
        *,
        project: str,
        workflow: str,
        version: str,
        from_domain: str,
        to_domain: str,
        promoted_by: str,
    ) -> dict[str, object]:
        """Record that ``promoted_by`` promoted an exported version to ``to_domain`` now."""
        now = time.time()
        row = (project, workflow, version, from_domain, to_domain, promoted_by, iso(now), now)
        self.flush()
        self._write(
            f"INSERT INTO promotions ({_PROMOTION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", row
        )
        return dict(zip(_PROMOTION_COLUMNS.split(", "), row, strict=True))

    def promotions(
        self, workflow: str | None = None, *, project: str | None = None
    ) -> list[dict[str, object]]:
        """Promotions (of ``workflow`` and ``project``, where given), newest first."""
        where, params = _where(("workflow", workflow), ("project", project))
        sql = (
            f"SELECT {_PROMOTION_COLUMNS} FROM promotions{where} ORDER BY promoted_ts DESC, id DESC"
        )
        return self._query(sql, params)

    # -- maintenance (kernelflow gc) ------------------------------------------------

    def forget_runs(self, run_ids: Collection[str], *, dry_run: bool = False) -> Forgotten:
        """Remove these runs' records (run, node records, cache hits), never one whose
        row still says ``running``; which runs may go is the caller's policy
        (:mod:`kernelflow.store.gc`). ``dry_run`` counts and removes nothing."""
        self._replay_orphans()  # a dead process's last records belong to its run
        return self._maintain(functools.partial(forget, run_ids=run_ids, dry_run=dry_run))

    def artifact_paths(self, *, without: Collection[str] = ()) -> set[str]:
        """The artifact files that the records (but those of the runs ``without``) and
        the cache entries name."""
        return self._maintain(functools.partial(referenced, without=without))

    def compact(self) -> None:
        """Give the space of removed records back (VACUUM)."""
        self._maintain(lambda db: db.compact())

    def file_size(self) -> int:
        """Bytes the records take: SQLite's file and its write-ahead log, or the tables
        (indexes included) on a PostgreSQL server."""
        return self._maintain(lambda db: db.size())

    def _maintain(self, action: Callable[[Database], _T]) -> _T:
        self.flush()
        db = self._connection()

        def locked() -> _T:
            with self._lock:
                return action(db)

        return self._retry(locked)

    # -- lineage -------------------------------------------------------------------

    def lineage(self, run_id: str, node: str) -> dict[str, object]:
        """Where a node's outputs came from, recursively through its upstream nodes.

        ``node`` is a node id or a task name. Each level names the run that
        recorded it, which differs from ``run_id`` for nodes finished by a run that
        ``run_id`` resumed.
        """
        best: dict[str, dict] = {}
        for row in self._chain_executions(run_id):
            previous = best.get(row["node"])
            if previous is None or row["status"] in _DONE or previous["status"] not in _DONE:
                best[row["node"]] = row
        return build_lineage(best, resolve_node(best, run_id, node, self.location))


# -- helpers --------------------------------------------------------------------------


def _insert_hit(db: Database, row: tuple[Any, ...], numbers: dict[str, int]) -> int:
    """Write a cache hit (a node record's parameters) compactly, else as a full record."""
    run_id = row[0]
    number = numbers.get(run_id)
    if number is None:
        db.execute("INSERT OR IGNORE INTO run_numbers (run_id) VALUES (?)", (run_id,))
        found = db.execute("SELECT number FROM run_numbers WHERE run_id = ?", (run_id,))
        number = numbers[run_id] = found.fetchone()[0]
    db.execute(CLAIM_ENTRY, (row[1], row[8], row[6]))
    hit = (number, row[1], row[2], row[6], row[7], row[8], row[9], row[11])
    project, domain, cache_from = row[14:]
    # The entry of the run's own domain, as the lookup preferred it; else the one
    # of the domain it may also read.
    for entry_domain in (domain,) if cache_from is None else (domain, cache_from):
        if db.execute(INSERT_HIT, (*hit, project, entry_domain)).rowcount:
            return 1
    return int(db.execute(INSERT_NODE, row[:14]).rowcount)


def _check_status(status: str, allowed: frozenset[str], kind: str) -> None:
    if status not in allowed:
        raise KernelflowError(
            f"{status!r} is not a {kind} status",
            fix=f"use one of {', '.join(sorted(allowed))}",
            status=status,
        )


def _runs_filter(
    workflow: str | None, project: str | None = None, domain: str | None = None
) -> tuple[str, tuple[Any, ...]]:
    """A WHERE clause on what is given (``None``: any) and its parameters."""
    return _where(("workflow", workflow), ("project", project), ("domain", domain))


def _where(*columns: tuple[str, str | None]) -> tuple[str, tuple[Any, ...]]:
    given = [(column, value) for column, value in columns if value is not None]
    if not given:
        return "", ()
    clause = " AND ".join(f"{column} = ?" for column, _ in given)
    return f" WHERE {clause}", tuple(value for _, value in given)


class _Flusher:
    """A daemon thread that commits a store's deferred writes at most
    :data:`MAX_DEFER_SECONDS` after they were deferred, so that a run's start and
    its quick tasks show up while a long task runs. It holds the store weakly and
    ends with it.

    While writes keep coming it polls; after a quiet second it sleeps until woken.
    Waking a thread costs a cell in a kernel ~0.1 ms, so a burst of cells wakes
    it once, not once a cell.
    """

    QUIET_POLLS = int(1.0 / MAX_DEFER_SECONDS)

    def __init__(self, store: RunStore) -> None:
        self._event = threading.Event()
        self._stopped = False
        self._sleeping = False
        store_ref = weakref.ref(store)
        thread = threading.Thread(
            target=self._loop, args=(store_ref,), name="kernelflow-flush", daemon=True
        )
        thread.start()

    def wake(self) -> None:
        if self._sleeping:  # read after the write was deferred: see _loop
            self._event.set()

    def stop(self) -> None:
        self._stopped = True
        self._event.set()

    def _loop(self, store_ref: weakref.ref[RunStore]) -> None:
        quiet = 0
        while not self._stopped:
            time.sleep(MAX_DEFER_SECONDS)
            store = store_ref()
            if store is None or self._stopped:
                return
            if store.deferred:
                quiet = 0
                with contextlib.suppress(Exception):  # kept deferred: the engine reports it
                    store.flush()
            else:
                quiet += 1
            if quiet >= self.QUIET_POLLS:
                quiet = 0
                self._event.clear()
                self._sleeping = True  # set before looking: a write deferred after the
                if not store.deferred:  # look sees it, and wakes this thread
                    del store
                    self._sleep_until_woken(store_ref)
                self._sleeping = False
            store = None

    def _sleep_until_woken(self, store_ref: weakref.ref[RunStore]) -> None:
        while not self._event.wait(timeout=5.0):
            if store_ref() is None or self._stopped:
                return


@atexit.register
def _flush_at_exit() -> None:
    """What is still deferred when the interpreter exits is committed, not left to
    the journal (a process that dies without exiting leaves it to the journal)."""
    for store in list(_WITH_DEFERRED):
        if not store._closed:
            with contextlib.suppress(Exception):
                store.flush()
                store._journal.close()  # all committed: nothing to replay
