"""The run store: run history, node executions, the cache index and lineage, in SQLite.

Why SQLite and not files: run history is queried (newest runs of a workflow, the
last unfinished run, every attempt of a node) and written from several threads and
processes at once (parallel runs sharing ``$KERNELFLOW_HOME``). WAL mode lets
readers and one writer proceed together; ``synchronous=NORMAL`` makes a commit a
write to the WAL without an fsync, which keeps :meth:`RunStore.record_node` (called
for every task) to one INSERT whose commit writes two pages. A power cut may lose
the last commits; neither it nor a killed process corrupts the file.

Values go in as JSON text; anything JSON cannot encode is stored as its ``repr()``,
because the store describes runs and must never make one fail.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

from kernelflow.errors import KernelflowError, StoreError

RunStatus = Literal["running", "succeeded", "failed", "interrupted", "died"]
NodeStatus = Literal["running", "succeeded", "cached", "failed", "skipped"]

SCHEMA_VERSION = 1
_RUN_STATUSES = frozenset(("running", "succeeded", "failed", "interrupted", "died"))
_NODE_STATUSES = frozenset(("running", "succeeded", "cached", "failed", "skipped"))
_DONE = ("succeeded", "cached")
_BUSY_RETRY_SECONDS = 120.0  # on top of SQLite's own 30 s busy timeout per attempt
_PID_REUSE_SLACK = 10.0  # a process started this long after its run cannot be its owner
_ABANDONED: list[sqlite3.Connection] = []  # connections inherited through fork()
_ENCODE = json.JSONEncoder(default=repr).encode  # for values plain JSON refuses
_T = TypeVar("_T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, workflow TEXT NOT NULL, version TEXT NOT NULL,
    status TEXT NOT NULL, started TEXT NOT NULL, started_ts REAL NOT NULL,
    finished TEXT, finished_ts REAL, params TEXT NOT NULL, environment TEXT NOT NULL,
    outputs TEXT, error TEXT, pid INTEGER, host TEXT, boot_id TEXT, resumed_from TEXT);
CREATE INDEX IF NOT EXISTS runs_by_workflow ON runs (workflow, started_ts);
CREATE INDEX IF NOT EXISTS runs_by_start ON runs (started_ts);
CREATE TABLE IF NOT EXISTS node_executions (
    id INTEGER PRIMARY KEY, run_id TEXT NOT NULL, node TEXT NOT NULL,
    task TEXT NOT NULL, attempt INTEGER NOT NULL, status TEXT NOT NULL,
    cache_hit INTEGER NOT NULL, cache_key TEXT, code_hash TEXT NOT NULL,
    inputs TEXT NOT NULL, outputs TEXT NOT NULL, started TEXT NOT NULL,
    started_ts REAL NOT NULL, duration REAL NOT NULL, error TEXT);
CREATE INDEX IF NOT EXISTS node_executions_by_run ON node_executions (run_id);
CREATE TABLE IF NOT EXISTS cache (
    key TEXT PRIMARY KEY, task TEXT NOT NULL, outputs TEXT NOT NULL, manifest TEXT NOT NULL,
    duration REAL, created TEXT NOT NULL, created_ts REAL NOT NULL,
    hits INTEGER NOT NULL DEFAULT 0, last_used TEXT, last_used_ts REAL);
CREATE INDEX IF NOT EXISTS cache_by_task ON cache (task);
"""

_INSERT_NODE = (
    "INSERT INTO node_executions (run_id, node, task, attempt, status, cache_hit, cache_key,"
    " code_hash, inputs, outputs, started, started_ts, duration, error)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_NODE_COLUMNS = (
    "run_id, node, task, attempt, status, cache_hit, cache_key, code_hash, inputs, outputs,"
    " started, started_ts, duration, error"
)


class RunStore:
    """Run history, node executions, cache index and lineage in one SQLite file.

    One connection per process, guarded by a lock, so an instance can be shared by
    the engine's threads. It is also safe across ``fork()`` (the child opens its own
    connection on first use) and pickles as its path, so it can be sent to workers.

    Parameters
    ----------
    path:
        The SQLite file; it and its parent directories are created if missing.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._pid = os.getpid()
        import socket  # lazily: only the constructor needs it, and it is slow to import

        self._host = socket.gethostname()
        self._boot_id = _boot_id()
        self._closed = False
        self._connect()

    # -- connection ----------------------------------------------------------------

    def _connect(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _store_error(self.path, exc) from exc
        self._conn = self._retry(self._open)

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, timeout=30.0, isolation_level=None, check_same_thread=False
        )
        try:
            conn.execute("PRAGMA busy_timeout = 30000")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            _ensure_schema(conn, self.path)
        except BaseException:
            conn.close()
            raise
        return conn

    def _connection(self) -> sqlite3.Connection:
        if self._pid != os.getpid():  # forked: the parent's connection is not ours
            if self._conn is not None:
                _ABANDONED.append(self._conn)  # closing it here could drop the parent's locks
            self._conn, self._pid, self._lock = None, os.getpid(), threading.Lock()
            if not self._closed:
                self._connect()
        if self._conn is None:
            raise StoreError(
                f"the run store {self.path} is closed", fix="open a new RunStore", path=self.path
            )
        return self._conn

    def close(self) -> None:
        """Close the connection; later calls raise :class:`StoreError`."""
        self._closed = True
        if self._conn is not None and self._pid != os.getpid():
            _ABANDONED.append(self._conn)  # inherited through fork: the parent's to close
        elif self._conn is not None:
            with self._lock:
                self._conn.close()
        self._conn = None

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, object]:
        return {"path": str(self.path)}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__init__(str(state["path"]))  # type: ignore[misc]

    def _retry(self, action: Callable[[], _T]) -> _T:
        """Run ``action``, retrying while another process holds the database lock.

        SQLite's busy timeout covers most waits, but a WAL read transaction that
        must become a write one fails at once with ``database is locked``; waiting
        and retrying is then the only way through.
        """
        deadline, delay = time.monotonic() + _BUSY_RETRY_SECONDS, 0.005
        while True:
            try:
                return action()
            except sqlite3.IntegrityError:
                raise
            except sqlite3.OperationalError as exc:
                busy = "locked" in str(exc) or "busy" in str(exc)
                if not busy or time.monotonic() > deadline:
                    raise _store_error(self.path, exc) from exc
            except sqlite3.DatabaseError as exc:
                raise _store_error(self.path, exc) from exc
            time.sleep(delay)
            delay = min(delay * 2, 0.25)

    def _write(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        try:  # the hot path: no retry machinery unless SQLite complains
            return self._write_once(sql, params)
        except sqlite3.IntegrityError:
            raise
        except sqlite3.DatabaseError:
            return self._retry(functools.partial(self._write_once, sql, params))

    def _write_once(self, sql: str, params: tuple[Any, ...]) -> int:
        conn = self._connection()
        with self._lock:
            return conn.execute(sql, params).rowcount

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        def action() -> list[dict[str, Any]]:
            conn = self._connection()
            with self._lock:
                cursor = conn.execute(sql, params)
                names = [d[0] for d in cursor.description]
                return [dict(zip(names, row)) for row in cursor.fetchall()]

        return self._retry(action)

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
    ) -> None:
        """Record a run as ``running``; ``pid`` lets a later reader see that it died."""
        now = time.time()
        row = (run_id, workflow, version, _iso(now), now, _dumps(params), _dumps(environment))
        host = (pid, self._host, self._boot_id, resumed_from)
        try:
            self._write(
                "INSERT INTO runs (run_id, workflow, version, status, started, started_ts,"
                " params, environment, pid, host, boot_id, resumed_from)"
                " VALUES (?, ?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?)",
                row + host,
            )
        except sqlite3.IntegrityError as exc:
            raise StoreError(
                f"run {run_id!r} is already in the run store {self.path}",
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
    ) -> None:
        """Record how a run ended (this also overrides a 'died' verdict made meanwhile)."""
        _check_status(status, _RUN_STATUSES, "run")
        now = time.time()
        encoded = None if outputs is None else _dumps(outputs)
        changed = self._write(
            "UPDATE runs SET status = ?, finished = ?, finished_ts = ?, error = ?, outputs = ?"
            " WHERE run_id = ?",
            (status, _iso(now), now, error, encoded, run_id),
        )
        if not changed:
            raise StoreError(
                f"cannot finish run {run_id!r}: it is not in the run store {self.path}",
                fix="call start_run() first, with the same run_id",
                run_id=run_id,
            )

    def get_run(self, run_id: str) -> dict[str, object] | None:
        """Every column of one run, JSON decoded; ``None`` when the id is unknown."""
        rows = self._query("SELECT * FROM runs WHERE run_id = ?", (run_id,))
        return self._run_dict(rows[0]) if rows else None

    def last_run(
        self, workflow: str | None = None, *, unfinished: bool = False
    ) -> dict[str, object] | None:
        """The newest run (of ``workflow``, if given), all columns.

        With ``unfinished=True``: the newest run that can be resumed, that is one
        that did not succeed and whose process is not still running it.
        """
        where, params = _workflow_filter(workflow)
        if unfinished:
            where += (" AND " if where else " WHERE ") + "status != 'succeeded'"
        for row in self._query(
            f"SELECT * FROM runs{where} ORDER BY started_ts DESC, rowid DESC", params
        ):
            run = self._run_dict(row)
            if not unfinished or run["status"] != "running" or not self._verifiable(row):
                return run
        return None

    def list_runs(self, workflow: str | None = None, limit: int | None = None) -> list[dict]:
        """Runs, newest first, with ``duration`` in seconds (``None`` while unfinished).

        A ``running`` run whose process is gone from this host is reported, and
        recorded, as ``died``.
        """
        where, params = _workflow_filter(workflow)
        sql = f"SELECT * FROM runs{where} ORDER BY started_ts DESC, rowid DESC"
        if limit is not None:
            sql, params = sql + " LIMIT ?", (*params, int(limit))
        keys = ("run_id", "workflow", "version", "status", "started", "finished", "params")
        runs = []
        for row in self._query(sql, params):
            run = self._run_dict(row)
            brief = {key: run[key] for key in keys}
            brief.update(error=run["error"], duration=run["duration"])
            runs.append(brief)
        return runs

    def _run_dict(self, row: dict[str, Any]) -> dict[str, object]:
        if row["status"] == "running" and self._verifiable(row) and self._is_dead(row):
            error = f"process {row['pid']} on {row['host']} ended without finishing the run"
            self._write(
                "UPDATE runs SET status = 'died', error = COALESCE(error, ?)"
                " WHERE run_id = ? AND status = 'running'",
                (error, row["run_id"]),
            )
            row = {**row, "status": "died", "error": row["error"] or error}
        run = dict(row)
        for column in ("params", "environment", "outputs"):
            run[column] = _loads(row[column])
        end = row["finished_ts"]
        run["duration"] = None if end is None else end - row["started_ts"]
        return run

    def _verifiable(self, row: Mapping[str, Any]) -> bool:
        """Whether this host can tell if the run's process is alive."""
        return row["pid"] is not None and row["host"] == self._host and os.name == "posix"

    def _is_dead(self, row: Mapping[str, Any]) -> bool:
        if row["boot_id"] and self._boot_id and row["boot_id"] != self._boot_id:
            return True  # the machine rebooted since the run started
        return not _pid_alive(int(row["pid"]), float(row["started_ts"]))

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
        outputs: Mapping[str, Mapping[str, object]],
        started: float,
        duration: float,
        error: str | None = None,
    ) -> None:
        """Record one attempt of one node: a single prepared INSERT, committed at once.

        Committing each attempt is what lets ``resume`` trust every succeeded row
        after a crash.
        """
        if status not in _NODE_STATUSES:
            _check_status(status, _NODE_STATUSES, "node")
        self._write(
            _INSERT_NODE,
            (
                run_id, node, task, attempt, status, cache_hit, cache_key, code_hash,
                _dumps(inputs), _dumps(outputs), _iso(started), started, duration, error,
            ),
        )  # fmt: skip

    def node_executions(self, run_id: str) -> list[dict]:
        """Every attempt of every node of a run, in the order they were recorded."""
        sql = f"SELECT {_NODE_COLUMNS} FROM node_executions WHERE run_id = ? ORDER BY id"
        return [_node_dict(row) for row in self._query(sql, (run_id,))]

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

    def cache_get(self, key: str) -> dict[str, object] | None:
        """The outputs manifest stored under a cache key, or ``None`` on a miss."""
        rows = self._query("SELECT * FROM cache WHERE key = ?", (key,))
        return _cache_dict(rows[0]) if rows else None

    def cache_put(
        self,
        key: str,
        *,
        task: str,
        outputs: Mapping[str, Mapping[str, object]],
        manifest: Mapping[str, object],
        duration: float,
    ) -> None:
        """Index outputs under ``key``; concurrent writers of one key: the last one wins."""
        now = time.time()
        self._write(
            "INSERT OR REPLACE INTO cache (key, task, outputs, manifest, duration, created,"
            " created_ts, hits) VALUES (?, ?, ?, ?, ?, ?, ?, 0)",
            (key, task, _dumps(outputs), _dumps(manifest), duration, _iso(now), now),
        )

    def cache_hit(self, key: str) -> None:
        """Count a hit, so ``cache ls`` and pruning can tell used entries from dead ones."""
        now = time.time()
        self._write(
            "UPDATE cache SET hits = hits + 1, last_used = ?, last_used_ts = ? WHERE key = ?",
            (_iso(now), now, key),
        )

    def cache_entries(self, task: str | None = None) -> list[dict]:
        """Cache entries (of ``task``, if given), newest first."""
        where, params = ("", ()) if task is None else (" WHERE task = ?", (task,))
        sql = f"SELECT * FROM cache{where} ORDER BY created_ts DESC, key"
        return [_cache_dict(row) for row in self._query(sql, params)]

    def cache_delete(self, *, task: str | None = None, key: str | None = None) -> int:
        """Remove entries matching ``task`` and/or ``key`` (all when neither); return count."""
        clauses = [c for c, v in (("task = ?", task), ("key = ?", key)) if v is not None]
        where = " WHERE " + " AND ".join(clauses) if clauses else ""
        values = tuple(v for v in (task, key) if v is not None)
        return self._write(f"DELETE FROM cache{where}", values)

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
        return _build_lineage(best, _resolve_node(best, run_id, node, self.path))


# -- helpers --------------------------------------------------------------------------


def _ensure_schema(conn: sqlite3.Connection, path: Path) -> None:
    """Create the tables once; refuse a file written by a newer kernelflow."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version == SCHEMA_VERSION:
        return
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"the run store {path} has schema version {version}; this kernelflow reads "
            f"version {SCHEMA_VERSION}",
            fix="upgrade kernelflow, or point KERNELFLOW_HOME at another directory",
            path=path,
        )
    conn.execute("BEGIN IMMEDIATE")  # one process creates, the others wait and see it done
    try:
        if conn.execute("PRAGMA user_version").fetchone()[0] == 0:
            for statement in filter(str.strip, _SCHEMA.split(";")):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        raise


def _store_error(path: Path, exc: BaseException) -> StoreError:
    return StoreError(
        f"the run store {path} cannot be used: {exc}",
        fix="check that the directory is writable and the file is a kernelflow run store; "
        "move a damaged file aside and kernelflow starts a new one",
        path=path,
    )


def _check_status(status: str, allowed: frozenset[str], kind: str) -> None:
    if status not in allowed:
        raise KernelflowError(
            f"{status!r} is not a {kind} status",
            fix=f"use one of {', '.join(sorted(allowed))}",
            status=status,
        )


def _workflow_filter(workflow: str | None) -> tuple[str, tuple[Any, ...]]:
    return ("", ()) if workflow is None else (" WHERE workflow = ?", (workflow,))


def _iso(timestamp: float) -> str:
    """ISO-8601 UTC with milliseconds; the seconds part is cached, as calls come in bursts."""
    seconds = int(timestamp // 1)
    return f"{_iso_second(seconds)}.{int((timestamp - seconds) * 1000):03d}+00:00"


@functools.lru_cache(maxsize=64)
def _iso_second(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _dumps(value: object) -> str:
    try:
        return json.dumps(value)  # the shared default encoder is the fastest path
    except (TypeError, ValueError):
        pass
    try:
        return _ENCODE(value)
    except (TypeError, ValueError):  # non-string keys, circular references
        return _ENCODE(_jsonable(value, 0))


def _jsonable(value: object, depth: int) -> object:
    if depth > 64:
        return repr(value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v, depth + 1) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return repr(value)


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _node_dict(row: dict[str, Any]) -> dict[str, Any]:
    row["cache_hit"] = bool(row["cache_hit"])
    row["inputs"] = json.loads(row["inputs"])
    row["outputs"] = json.loads(row["outputs"])
    return row


def _cache_dict(row: dict[str, Any]) -> dict[str, object]:
    keys = ("key", "task", "created", "hits", "duration", "last_used")
    entry: dict[str, object] = {k: row[k] for k in keys}
    entry.update(outputs=json.loads(row["outputs"]), manifest=json.loads(row["manifest"]))
    return entry


def _resolve_node(best: Mapping[str, dict], run_id: str, node: str, path: Path) -> str:
    """The node id ``node`` names: a node id, else the one node running that task."""
    if node in best:
        return node
    matches = sorted(n for n, row in best.items() if row["task"] == node)
    if len(matches) == 1:
        return matches[0]
    nodes = ", ".join(sorted(best)) or "none"
    if matches:
        message = f"task {node!r} ran as several nodes in run {run_id!r}: {', '.join(matches)}"
        fix = "ask for one of these node ids"
    elif best:
        message = f"run {run_id!r} has no node or task {node!r}; its nodes are: {nodes}"
        fix = "ask for one of these nodes or their task names"
    else:
        message = f"run {run_id!r} has no recorded nodes in the run store {path}"
        fix = "check the run id with `kernelflow runs`"
    raise KernelflowError(message, fix=fix, run_id=run_id, node=node, nodes=sorted(best))


def _build_lineage(best: Mapping[str, dict], root: str) -> dict[str, object]:
    """Lineage dicts for ``root`` and its ancestors, built bottom-up without recursion.

    Deep chains would overflow Python's recursion limit; a diamond's shared
    ancestor is built once and referenced from both sides. A cycle (only in a
    damaged store) ends in ``lineage: None``.
    """
    built: dict[str, dict[str, object]] = {}
    on_path: set[str] = set()
    stack: list[tuple[str, bool]] = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if node in built:
            continue
        if expanded:
            on_path.discard(node)
            built[node] = _lineage_entry(best[node], built)
            continue
        on_path.add(node)
        stack.append((node, True))
        for upstream in _upstream(best[node]):
            if upstream in best and upstream not in built and upstream not in on_path:
                stack.append((upstream, False))
    return built[root]


def _upstream(row: Mapping[str, Any]) -> list[str]:
    sources = (info.get("source") for info in row["inputs"].values())
    return [s["node"] for s in sources if isinstance(s, Mapping) and "node" in s]


def _lineage_entry(row: Mapping[str, Any], built: Mapping[str, dict]) -> dict[str, object]:
    inputs: dict[str, object] = {}
    for name, info in row["inputs"].items():
        source = info.get("source")
        upstream = source.get("node") if isinstance(source, Mapping) else None
        lineage = built.get(upstream) if upstream is not None else None
        inputs[name] = {"hash": info.get("hash"), "source": source, "lineage": lineage}
    keys = ("run_id", "node", "task", "code_hash", "cache_key", "status", "cache_hit")
    entry: dict[str, object] = {k: row[k] for k in keys}
    entry.update(inputs=inputs, outputs=row["outputs"], started=row["started"])
    return entry


@functools.cache
def _boot_id() -> str | None:
    """This boot of this machine (Linux); a run from an earlier boot is certainly dead."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None


@functools.cache
def _boot_time() -> float | None:
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("btime "):
                return float(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def _proc_status(pid: int) -> tuple[str, float] | None:
    """(state letter, start time in epoch seconds) from Linux's /proc, else ``None``."""
    boot = _boot_time()
    if boot is None:
        return None
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
        fields = data[data.rindex(b")") + 2 :].split()  # the name may hold spaces
        return fields[0].decode(), boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _pid_alive(pid: int, since: float) -> bool:
    """Whether the process that started a run at ``since`` still runs (POSIX only).

    A zombie is dead, and so is a process that started well after the run: its
    pid was reused. ``os.kill(pid, 0)`` is the fallback off Linux.
    """
    status = _proc_status(pid)
    if status is not None:
        state, start = status
        return state != "Z" and start <= since + _PID_REUSE_SLACK
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists but belongs to someone else
        return True
    return True
