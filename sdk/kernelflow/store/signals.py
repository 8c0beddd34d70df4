"""Signals: values a person (or a program) gives a waiting node of a running run.

``wait_for_input`` and ``approve`` nodes record here that they wait (so ``kernelflow
runs`` can show it), then poll for their value; ``kernelflow signal RUN NAME VALUE``
and ``kernelflow approve RUN NAME`` write it. The file is ``<home>/signals.sqlite``,
apart from ``runs.sqlite`` as the schedules are: a node polling every fraction of
a second must not contend with the run's own writes.

A value is stored as the text the user typed; the waiting node parses it by the
type it expects, so the sender needs no knowledge of the workflow's code. The
node also records that type (``spec``, :mod:`kernelflow._core.type_spec`), so
that a sender can refuse a value the node would not take.

Signals are kept under the first run of a resume chain (``root``): a run that
waits, dies and is resumed under a new id gets a value sent to either id.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from kernelflow.store.small_db import small_database

SIGNALS_FILE = "signals.sqlite"
WaitState = Literal["waiting", "received", "timed_out", "failed"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS signals (
    run_id TEXT NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL, created_ts REAL NOT NULL,
    PRIMARY KEY (run_id, name));
CREATE TABLE IF NOT EXISTS waits (
    run_id TEXT NOT NULL, name TEXT NOT NULL, node TEXT NOT NULL, type TEXT NOT NULL,
    since_ts REAL NOT NULL, deadline_ts REAL, state TEXT NOT NULL, root TEXT, spec TEXT,
    PRIMARY KEY (run_id, name));
"""
# Columns added since the first release of the file: (name, SQL type), added on open.
_ADDED_WAIT_COLUMNS = (("root", "TEXT"), ("spec", "TEXT"))


class SignalStore:
    """Signals and waiting nodes of every run of one store; safe across processes."""

    def __init__(self, home: str | os.PathLike[str]) -> None:
        self.path = Path(home).absolute() / SIGNALS_FILE
        self._ready = False

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        with small_database(self.path, "signal", None if self._ready else self._prepare) as conn:
            yield conn

    def _prepare(self, conn: sqlite3.Connection) -> None:
        conn.executescript(_SCHEMA)
        _add_missing_columns(conn)
        self._ready = True

    def send(self, run_id: str, name: str, value: str) -> None:
        """Give signal ``name`` of run ``run_id`` its value (a later send replaces it)."""
        with self._connect() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO signals (run_id, name, value, created_ts)"
                " VALUES (?, ?, ?, ?)",
                (run_id, name, value, time.time()),
            )

    def value(self, run_id: str, name: str) -> str | None:
        """The text sent for the signal, or None while nothing was sent."""
        with self._connect() as conn:
            row = conn.execute(
                "SELECT value FROM signals WHERE run_id = ? AND name = ?", (run_id, name)
            ).fetchone()
        return None if row is None else str(row["value"])

    def start_wait(
        self,
        run_id: str,
        name: str,
        *,
        node: str,
        type_name: str,
        deadline: float | None,
        root: str | None = None,
        spec: str | None = None,
    ) -> None:
        """Node ``node`` of run ``run_id`` waits for ``name`` (of the chain ``root``),
        a value of ``type_name`` (``spec`` describes it, when it can be described)."""
        with self._connect() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO waits (run_id, name, node, type, since_ts, deadline_ts,"
                " state, root, spec) VALUES (?, ?, ?, ?, ?, ?, 'waiting', ?, ?)",
                (run_id, name, node, type_name, time.time(), deadline, root or run_id, spec),
            )

    def expected(self, root: str, name: str) -> tuple[str, str | None] | None:
        """The type (its name and spec) the latest node of chain ``root`` waiting for
        ``name`` asked for; None when no node has waited for it yet."""
        with self._connect() as conn:
            row = conn.execute(
                "SELECT type, spec FROM waits WHERE coalesce(root, run_id) = ? AND name = ?"
                " ORDER BY since_ts DESC LIMIT 1",
                (root, name),
            ).fetchone()
        return None if row is None else (str(row["type"]), row["spec"])

    def end_wait(self, run_id: str, name: str, state: WaitState) -> None:
        with self._connect() as conn:
            conn.execute(
                "UPDATE waits SET state = ? WHERE run_id = ? AND name = ?", (state, run_id, name)
            )

    def waits(self, run_id: str | None = None, *, state: WaitState | None = None) -> list[dict]:
        """Waiting nodes (of ``run_id``, in ``state``), oldest first."""
        clauses, args = [], []
        if run_id is not None:
            clauses.append("run_id = ?")
            args.append(run_id)
        if state is not None:
            clauses.append("state = ?")
            args.append(state)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._connect() as conn:
            rows = conn.execute(f"SELECT * FROM waits{where} ORDER BY since_ts", args).fetchall()
        return [_wait_dict(row) for row in rows]


def _wait_dict(row: sqlite3.Row) -> dict[str, Any]:
    return dict(row)


def _add_missing_columns(conn: sqlite3.Connection) -> None:
    """A signal file written by an older kernelflow gets the columns added since."""
    present = {row["name"] for row in conn.execute("PRAGMA table_info(waits)")}
    for column, sql_type in _ADDED_WAIT_COLUMNS:
        if column not in present:
            try:
                conn.execute(f"ALTER TABLE waits ADD COLUMN {column} {sql_type}")
            except sqlite3.OperationalError as error:  # another process added it just now
                if "duplicate column" not in str(error):
                    raise
