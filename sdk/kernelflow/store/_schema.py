"""The run store's tables: their DDL, the schema version, and how values sit in columns.

Kept apart from :class:`~kernelflow.store.runs.RunStore` so that the layout of the
records can be read (and a migration written) in one place, for both databases:
it is written in SQLite's dialect and read by PostgreSQL through
:mod:`kernelflow.store._dialect`; the one statement no rule translates is
spelled out in :data:`POSTGRES_OVERRIDES`. Values go in as JSON
text; anything JSON cannot encode is stored as its ``repr()``, because the store
describes runs and must never make one fail. Times are stored twice: ISO-8601
text for people and epoch seconds for ordering.
"""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from kernelflow._core.errors import StoreError

if TYPE_CHECKING:
    from kernelflow.store._database import Database

SCHEMA_VERSION = 6
_ENCODE = json.JSONEncoder(default=repr).encode  # for values plain JSON refuses

_RECORDS = """
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
"""
# The cache index (version 3). ``num`` names one version of an entry: replacing an
# entry gives it a new num, so a cache hit recorded earlier still names what it
# used. ``node`` and ``inputs`` are those of the node execution that filled it (or,
# for an entry older than version 3, of its first hit): hits refer to them.
_CACHE_V3 = """
CREATE TABLE IF NOT EXISTS cache (
    num INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL UNIQUE, task TEXT NOT NULL,
    outputs TEXT NOT NULL, manifest TEXT NOT NULL, duration REAL, created TEXT NOT NULL,
    created_ts REAL NOT NULL, node TEXT, inputs TEXT);
CREATE INDEX IF NOT EXISTS cache_by_task ON cache (task);
"""
# Version 4: every entry belongs to a project and a domain (kernelflow._core.scope),
# and a key is unique within them: development and production each keep their own
# entry for the same task on the same inputs.
_CACHE = """
CREATE TABLE IF NOT EXISTS cache (
    num INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL, task TEXT NOT NULL,
    outputs TEXT NOT NULL, manifest TEXT NOT NULL, duration REAL, created TEXT NOT NULL,
    created_ts REAL NOT NULL, node TEXT, inputs TEXT,
    project TEXT NOT NULL DEFAULT 'default', domain TEXT NOT NULL DEFAULT 'development',
    UNIQUE (project, domain, key));
CREATE INDEX IF NOT EXISTS cache_by_task ON cache (task);
CREATE INDEX IF NOT EXISTS cache_by_key ON cache (key);
"""
# Cache hits (version 3), the bulk of an all-cached rerun: about 60 bytes each,
# indexes included, where a full node_executions row took ~700. A hit names the
# run by a small number (run_numbers) and the entry version it used by its num;
# its node and inputs are NULL when they are the entry's own (a rerun of the
# workflow that filled it). Its task, code hash and outputs are the entry's.
#
# Two triggers keep such records whole whatever writes the cache (this process,
# a journal replay, another process): the execution that fills an entry claims
# it (node, inputs), and an entry deleted or replaced while hits name it is kept
# in cache_retired, never again looked up but still read as those hits' record.
# A REPLACE fires the delete trigger only with PRAGMA recursive_triggers on,
# which every connection of RunStore sets.
_HITS = """
CREATE TABLE IF NOT EXISTS cache_retired (
    num INTEGER PRIMARY KEY, key TEXT NOT NULL, task TEXT NOT NULL, outputs TEXT NOT NULL,
    manifest TEXT NOT NULL, node TEXT, inputs TEXT);
CREATE TABLE IF NOT EXISTS run_numbers (number INTEGER PRIMARY KEY, run_id TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS cache_hits (
    id INTEGER PRIMARY KEY, run INTEGER NOT NULL, entry INTEGER NOT NULL, node TEXT,
    inputs TEXT, started_ts REAL NOT NULL);
CREATE INDEX IF NOT EXISTS cache_hits_by_run ON cache_hits (run);
CREATE INDEX IF NOT EXISTS cache_hits_by_entry ON cache_hits (entry, started_ts);
CREATE TRIGGER IF NOT EXISTS cache_claimed AFTER INSERT ON node_executions
    WHEN NEW.status = 'succeeded' AND NEW.cache_key IS NOT NULL
BEGIN
    UPDATE cache SET node = NEW.node, inputs = NEW.inputs
    WHERE key = NEW.cache_key AND node IS NULL;
END;
CREATE TRIGGER IF NOT EXISTS cache_retired_while_used BEFORE DELETE ON cache
    WHEN EXISTS (SELECT 1 FROM cache_hits WHERE entry = OLD.num)
BEGIN
    INSERT OR IGNORE INTO cache_retired (num, key, task, outputs, manifest, node, inputs)
    VALUES (OLD.num, OLD.key, OLD.task, OLD.outputs, OLD.manifest, OLD.node, OLD.inputs);
END;
"""
# Version 4: runs get their project and domain (rows written before are the
# defaults'), and promotions of exported versions from one domain to another are
# recorded: who, when, which version.
_SCOPED = """
ALTER TABLE runs ADD COLUMN project TEXT NOT NULL DEFAULT 'default';
ALTER TABLE runs ADD COLUMN domain TEXT NOT NULL DEFAULT 'development';
CREATE INDEX IF NOT EXISTS runs_by_scope ON runs (project, domain, started_ts);
CREATE TABLE IF NOT EXISTS promotions (
    id INTEGER PRIMARY KEY, project TEXT NOT NULL, workflow TEXT NOT NULL,
    version TEXT NOT NULL, from_domain TEXT NOT NULL, to_domain TEXT NOT NULL,
    promoted_by TEXT NOT NULL, promoted TEXT NOT NULL, promoted_ts REAL NOT NULL);
CREATE INDEX IF NOT EXISTS promotions_by_workflow ON promotions (project, workflow, promoted_ts);
"""
# Rebuilding the cache table keeps each entry's num, which hits name, and numbering
# goes on after every num a hit may name (kept in the cache or in cache_retired), so
# that a new entry never takes a retired one's number. SQLite's AUTOINCREMENT keeps
# its counter in sqlite_sequence; PostgreSQL's, a sequence (POSTGRES_DDL_OVERRIDES).
_GO_ON_NUMBERING = (
    "DELETE FROM sqlite_sequence WHERE name = 'cache';"
    "INSERT INTO sqlite_sequence (name, seq) SELECT 'cache', last FROM (SELECT MAX(num) AS last"
    " FROM (SELECT num FROM cache UNION ALL SELECT num FROM cache_retired) AS used) AS top"
    " WHERE last IS NOT NULL;"
)
_CACHE_V4 = (
    # The triggers name the table being rebuilt: made again by _HITS.
    "DROP TRIGGER IF EXISTS cache_claimed; DROP TRIGGER IF EXISTS cache_retired_while_used;"
    "ALTER TABLE cache RENAME TO cache_v3; DROP INDEX IF EXISTS cache_by_task;"
    + _CACHE
    + "INSERT INTO cache (num, key, task, outputs, manifest, duration, created, created_ts,"
    " node, inputs) SELECT num, key, task, outputs, manifest, duration, created, created_ts,"
    " node, inputs FROM cache_v3 ORDER BY num; DROP TABLE cache_v3;" + _GO_ON_NUMBERING + _HITS
)
# Version 5: the state machines share besides run history. Signals and the nodes
# that wait for them (kernelflow.store.signals), and launch plans with their run
# lock (kernelflow.schedule.plans): on a server (PostgreSQL) these tables are in
# the run database, so that every machine using it sees the same. With SQLite
# they stay in files of their own in the home (SQLiteDatabase leaves them out of
# runs.sqlite), where a node polling for a signal or a scheduler polling plans
# does not contend with a run's writes; those files are made from the same text.
SIGNAL_TABLES = """
CREATE TABLE IF NOT EXISTS signals (
    run_id TEXT NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL, created_ts REAL NOT NULL,
    PRIMARY KEY (run_id, name));
CREATE TABLE IF NOT EXISTS waits (
    run_id TEXT NOT NULL, name TEXT NOT NULL, node TEXT NOT NULL, type TEXT NOT NULL,
    since_ts REAL NOT NULL, deadline_ts REAL, state TEXT NOT NULL, root TEXT, spec TEXT,
    PRIMARY KEY (run_id, name));
"""
# A plan's lock: since when, and which process on which host holds it until when
# (lease_until_ts); see PlanStore.try_lock.
PLAN_TABLES = """
CREATE TABLE IF NOT EXISTS plans (
    name TEXT PRIMARY KEY, notebook TEXT NOT NULL, cron TEXT NOT NULL,
    params TEXT NOT NULL, timezone TEXT NOT NULL, created TEXT NOT NULL,
    last_tick TEXT, last_status TEXT, last_error TEXT, last_run_file TEXT, last_run_at TEXT,
    running_since TEXT, running_since_ts REAL, pid INTEGER, lock_token TEXT,
    project TEXT NOT NULL DEFAULT 'default', domain TEXT NOT NULL DEFAULT 'development',
    host TEXT, lease_until_ts REAL);
"""
# Columns the files' tables gained after their first release, by table: an older
# signals.sqlite or schedules.sqlite gets them when it is opened.
ADDED_COLUMNS: dict[str, dict[str, str]] = {
    "waits": {"root": "TEXT", "spec": "TEXT"},
    "plans": {
        "project": "TEXT NOT NULL DEFAULT 'default'",
        "domain": "TEXT NOT NULL DEFAULT 'development'",
        "host": "TEXT",
        "lease_until_ts": "REAL",
    },
}
SHARED_STATE = SIGNAL_TABLES + PLAN_TABLES
# Version 6: a running run's process stamps it (store/_heartbeat.py), so that a
# machine other than the one running it can tell when it died.
_HEARTBEAT = "ALTER TABLE runs ADD COLUMN heartbeat_ts REAL;"
SCHEMA = _RECORDS + _SCOPED + _CACHE + _HITS + SHARED_STATE + _HEARTBEAT
TABLES = (
    "runs", "node_executions", "cache", "cache_retired", "run_numbers", "cache_hits", "promotions"
)  # fmt: skip
RUN_COLUMNS = (
    "run_id, workflow, version, status, started, started_ts, finished, finished_ts, params,"
    " environment, outputs, error, pid, host, boot_id, resumed_from, project, domain,"
    " heartbeat_ts"
)
# What turns version N into N + 1, for stores written by an older kernelflow.
_MIGRATIONS: dict[int, str] = {
    # Hits are counted from the cached nodes' own records, not by an UPDATE per hit
    # (which cost a cache hit a fifth of its time); v1's hits columns stay, unused.
    1: "CREATE INDEX IF NOT EXISTS node_executions_hits ON node_executions (cache_key)"
    " WHERE cache_hit = 1",
    # Cache hits get a compact table of their own, which names entries by num: the
    # cache table is rebuilt with it (SQLite cannot add a primary key in place).
    # Hits recorded before stay full node_executions rows, and are read as before.
    2: "ALTER TABLE cache RENAME TO cache_v2; DROP INDEX IF EXISTS cache_by_task;"
    + _CACHE_V3
    + "INSERT INTO cache (key, task, outputs, manifest, duration, created, created_ts)"
    " SELECT key, task, outputs, manifest, duration, created, created_ts FROM cache_v2"
    " ORDER BY created_ts; DROP TABLE cache_v2;" + _HITS,
    # Projects and domains (kernelflow._core.scope): what was recorded before is in
    # the default project's development domain.
    3: _SCOPED + _CACHE_V4,
    # Signals and plans in the run database, when it is a server (SHARED_STATE).
    4: SHARED_STATE,
    5: _HEARTBEAT,
}
# A cache entry with its use: hits and last use come from the nodes that hit it,
# recorded as full rows (before version 3, or a hit whose entry changed meanwhile)
# or as compact hits of this version of the entry.
CACHE_COLUMNS = (
    "key, task, outputs, manifest, duration, created, project, domain,"
    " (SELECT COUNT(*) FROM node_executions n WHERE n.cache_key = cache.key"
    " AND n.cache_hit = 1)"
    " + (SELECT COUNT(*) FROM cache_hits h WHERE h.entry = cache.num) AS hits,"
    " (SELECT MAX(n.started) FROM node_executions n WHERE n.cache_key = cache.key"
    " AND n.cache_hit = 1) AS last_used,"
    " (SELECT MAX(h.started_ts) FROM cache_hits h WHERE h.entry = cache.num) AS last_hit"
)

# A new entry, or a new version of an entry (a new num: hits recorded before keep
# naming the version they used; the retire trigger keeps it for them).
CACHE_PUT = (
    "INSERT OR REPLACE INTO cache (key, task, outputs, manifest, duration, created,"
    " created_ts, project, domain) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# The same, as a journal written before version 4 holds it: in the default scope.
CACHE_PUT_V3 = (
    "INSERT OR REPLACE INTO cache (key, task, outputs, manifest, duration, created,"
    " created_ts) VALUES (?, ?, ?, ?, ?, ?, ?)"
)
# PostgreSQL has no REPLACE (a delete and an insert): an upsert that renumbers the
# entry is its concurrency-safe equivalent, and the retire trigger fires on that
# renumbering as SQLite's fires on the delete.
_UPSERT = (
    " ON CONFLICT (project, domain, key) DO UPDATE SET"
    " num = nextval(pg_get_serial_sequence('cache', 'num')), task = excluded.task,"
    " outputs = excluded.outputs, manifest = excluded.manifest, duration = excluded.duration,"
    " created = excluded.created, created_ts = excluded.created_ts, node = NULL, inputs = NULL"
)
POSTGRES_OVERRIDES = {
    CACHE_PUT: CACHE_PUT.replace("INSERT OR REPLACE", "INSERT", 1) + _UPSERT,
    CACHE_PUT_V3: CACHE_PUT_V3.replace("INSERT OR REPLACE", "INSERT", 1) + _UPSERT,
}
# Schema statements no rule translates, by their SQLite text (without the final
# semicolon): PostgreSQL's numbering is a sequence, set once to go on after the
# last num in use (the second statement has nothing to do there).
POSTGRES_DDL_OVERRIDES: dict[str, tuple[str, ...]] = {
    "DELETE FROM sqlite_sequence WHERE name = 'cache'": (
        "SELECT setval(pg_get_serial_sequence('cache', 'num'), COALESCE(MAX(num), 0) + 1, false)"
        " FROM (SELECT num FROM cache UNION ALL SELECT num FROM cache_retired) AS used",
    ),
    _GO_ON_NUMBERING.split(";")[1]: (),
}
POSTGRES_TRIGGER_EVENTS = {"cache_retired_while_used": "DELETE OR UPDATE OF num"}

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

# An entry that no execution claimed (made before version 3) is claimed by its first
# hit, so that the hits after it are compact too. Parameters: node, inputs, cache key.
CLAIM_ENTRY = "UPDATE cache SET node = ?1, inputs = ?2 WHERE key = ?3 AND node IS NULL"
# A cache hit as a reference to the entry version it used, for the run numbered ?1:
# inserted only if that entry still holds exactly these outputs, for this task and
# code (else the hit is recorded as a full row). Parameters: run number, node,
# task, cache key, code hash, inputs, outputs, start time, and the project and
# domain of the entry (the run's own, or the one it reads with --cache-from).
INSERT_HIT = (
    "INSERT INTO cache_hits (run, entry, node, inputs, started_ts)"
    " SELECT ?1, num, CASE WHEN node IS ?2 THEN NULL ELSE ?2 END,"
    " CASE WHEN inputs IS ?6 THEN NULL ELSE ?6 END, ?8 FROM cache"
    " WHERE project = ?9 AND domain = ?10 AND key = ?4 AND outputs = ?7 AND task = ?3"
    " AND json_extract(manifest, '$.code_hash') = ?5"
)
# The hits of one run, with what they share with their entry filled in from it.
HITS_OF_RUN = (
    "SELECT h.id, COALESCE(h.node, c.node, r.node) AS node, COALESCE(c.task, r.task) AS task,"
    " COALESCE(c.key, r.key) AS cache_key,"
    " json_extract(COALESCE(c.manifest, r.manifest), '$.code_hash') AS code_hash,"
    " COALESCE(h.inputs, c.inputs, r.inputs) AS inputs,"
    " COALESCE(c.outputs, r.outputs) AS outputs, h.started_ts"
    " FROM cache_hits h LEFT JOIN cache c ON c.num = h.entry"
    " LEFT JOIN cache_retired r ON r.num = h.entry"
    " WHERE h.run = (SELECT number FROM run_numbers WHERE run_id = ?)"
    " AND (c.num IS NOT NULL OR r.num IS NOT NULL) ORDER BY h.id"
)


def ensure_schema(db: Database) -> None:
    """Create the tables once, or migrate them; refuse records written by a newer kernelflow."""
    version = db.schema_version()
    if version == SCHEMA_VERSION:
        return
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"the run store {db.location} has schema version {version}; this kernelflow reads "
            f"version {SCHEMA_VERSION}",
            fix="upgrade kernelflow, or point KERNELFLOW_HOME at another directory",
            path=db.location,
        )
    with db.transaction(write=True):  # one process creates, the others wait and see it done
        db.lock_schema()
        current = db.schema_version()
        scripts = [SCHEMA] if current == 0 else map(_MIGRATIONS.get, range(current, SCHEMA_VERSION))
        for script in scripts:
            for statement in _statements(str(script)):
                for sql in db.ddl(statement):
                    db.execute(sql)
        db.set_schema_version(SCHEMA_VERSION)


def server_only(statement: str) -> bool:
    """Whether ``statement`` (of the schema) makes a table kept in the run database only
    on a server: with SQLite, signals and plans have files of their own."""
    return statement.strip() in _SERVER_ONLY


def _statements(script: str) -> Iterator[str]:
    """The statements of a script, one by one (a trigger's body holds semicolons too).

    ``executescript`` would commit the transaction the schema is made in.
    """
    buffer = ""
    for piece in script.split(";"):
        buffer += piece + ";"
        if sqlite3.complete_statement(buffer):
            if buffer.strip(" \n;"):
                yield buffer
            buffer = ""


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


def loads_record(text: str) -> Any:
    """A record made by :func:`dumps_record`, read back in a third of ``json``'s time
    (``cache ls`` reads two per entry); what orjson refuses (NaN) goes the general way."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def node_dict(row: dict[str, Any]) -> dict[str, Any]:
    row["cache_hit"] = bool(row["cache_hit"])
    row["inputs"] = loads_record(row["inputs"])
    row["outputs"] = loads_record(row["outputs"])
    return row


def hit_dict(run_id: str, row: dict[str, Any]) -> dict[str, Any]:
    """A compact cache hit (a row of :data:`HITS_OF_RUN`) as the node record it stands for."""
    started = row["started_ts"]
    return {
        "run_id": run_id, "node": row["node"], "task": row["task"], "attempt": 1,
        "status": "cached", "cache_hit": True, "cache_key": row["cache_key"],
        "code_hash": row["code_hash"], "inputs": loads_record(row["inputs"]),
        "outputs": loads_record(row["outputs"]), "started": iso(started),
        "started_ts": started, "duration": 0.0, "error": None,
    }  # fmt: skip


def cache_dict(row: dict[str, Any]) -> dict[str, object]:
    keys = ("key", "task", "created", "hits", "duration", "last_used", "project", "domain")
    entry: dict[str, object] = {k: row[k] for k in keys}
    if row["last_hit"] is not None:  # ISO texts of one format compare as times do
        entry["last_used"] = max(filter(None, (row["last_used"], iso(row["last_hit"]))))
    entry.update(outputs=loads_record(row["outputs"]), manifest=loads_record(row["manifest"]))
    return entry


_SERVER_ONLY = frozenset(statement.strip() for statement in _statements(SHARED_STATE))
