"""The run store's tables: their DDL, the schema version, and how values sit in columns.

Kept apart from :class:`~kernelflow.store.runs.RunStore` so that the layout of the
file can be read (and a migration written) in one place. Values go in as JSON
text; anything JSON cannot encode is stored as its ``repr()``, because the store
describes runs and must never make one fail. Times are stored twice: ISO-8601
text for people and epoch seconds for ordering.
"""

from __future__ import annotations

import contextlib
import functools
import json
import sqlite3
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from kernelflow._core.errors import StoreError

SCHEMA_VERSION = 2
_ENCODE = json.JSONEncoder(default=repr).encode  # for values plain JSON refuses

SCHEMA = """
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
CREATE INDEX IF NOT EXISTS node_executions_hits ON node_executions (cache_key)
    WHERE cache_hit = 1;
CREATE TABLE IF NOT EXISTS cache (
    key TEXT PRIMARY KEY, task TEXT NOT NULL, outputs TEXT NOT NULL, manifest TEXT NOT NULL,
    duration REAL, created TEXT NOT NULL, created_ts REAL NOT NULL);
CREATE INDEX IF NOT EXISTS cache_by_task ON cache (task);
"""
# What turns version N into N + 1, for stores written by an older kernelflow.
_MIGRATIONS: dict[int, str] = {
    # Hits are counted from the cached nodes' own records, not by an UPDATE per hit
    # (which cost a cache hit a fifth of its time); v1's hits columns stay, unused.
    1: "CREATE INDEX IF NOT EXISTS node_executions_hits ON node_executions (cache_key)"
    " WHERE cache_hit = 1",
}
# A cache entry with its use: hits and last use come from the nodes that hit it.
CACHE_COLUMNS = (
    "key, task, outputs, manifest, duration, created,"
    " (SELECT COUNT(*) FROM node_executions n WHERE n.cache_key = cache.key"
    " AND n.cache_hit = 1) AS hits,"
    " (SELECT MAX(n.started) FROM node_executions n WHERE n.cache_key = cache.key"
    " AND n.cache_hit = 1) AS last_used"
)

INSERT_NODE = (
    "INSERT INTO node_executions (run_id, node, task, attempt, status, cache_hit, cache_key,"
    " code_hash, inputs, outputs, started, started_ts, duration, error)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
NODE_COLUMNS = (
    "run_id, node, task, attempt, status, cache_hit, cache_key, code_hash, inputs, outputs,"
    " started, started_ts, duration, error"
)
# INSERT_NODE for a journal being replayed: a record already in the table (committed
# before its process died, or by a replay cut short) is not inserted again.
REPLAY_NODE = (
    f"INSERT INTO node_executions ({NODE_COLUMNS})"
    " SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14"
    " WHERE NOT EXISTS (SELECT 1 FROM node_executions WHERE run_id = ?1 AND node = ?2"
    " AND attempt = ?4 AND status = ?5 AND started_ts = ?12)"
)


def ensure_schema(conn: sqlite3.Connection, path: Path) -> None:
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
        current = conn.execute("PRAGMA user_version").fetchone()[0]
        if current == 0:
            for statement in filter(str.strip, SCHEMA.split(";")):
                conn.execute(statement)
        else:
            for step in range(current, SCHEMA_VERSION):
                conn.execute(_MIGRATIONS[step])
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        raise


def iso(timestamp: float) -> str:
    """ISO-8601 UTC with milliseconds; the seconds part is cached, as calls come in bursts."""
    seconds = int(timestamp // 1)
    return f"{_iso_second(seconds)}.{int((timestamp - seconds) * 1000):03d}+00:00"


@functools.lru_cache(maxsize=64)
def _iso_second(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")


class Encoded(str):
    """JSON text that is stored as it is: a cache hit's outputs, read from the cache
    index, go into its node record without a decode/encode round trip."""


def dumps_record(value: object) -> str:
    """JSON of a record made by kernelflow itself (hashes, refs, names, finite numbers).

    On the hot path of every task: orjson encodes such a record in a tenth of
    the time ``json`` takes. A value orjson refuses (non-string keys, huge
    ints) goes the general way; NaN, which orjson would turn into null, never
    occurs in these records (user values go through :func:`dumps`).
    """
    if isinstance(value, Encoded):
        return value
    try:
        return orjson.dumps(value).decode("utf-8")
    except TypeError:
        return dumps(value)


def dumps(value: object) -> str:
    if isinstance(value, Encoded):
        return value
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


def loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def node_dict(row: dict[str, Any]) -> dict[str, Any]:
    row["cache_hit"] = bool(row["cache_hit"])
    row["inputs"] = json.loads(row["inputs"])
    row["outputs"] = json.loads(row["outputs"])
    return row


def cache_dict(row: dict[str, Any]) -> dict[str, object]:
    keys = ("key", "task", "created", "hits", "duration", "last_used")
    entry: dict[str, object] = {k: row[k] for k in keys}
    entry.update(outputs=json.loads(row["outputs"]), manifest=json.loads(row["manifest"]))
    return entry
