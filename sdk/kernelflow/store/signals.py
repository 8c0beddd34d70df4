"""Signals: values a person (or a program) gives a waiting node of a running run.

``wait_for_input`` and ``approve`` nodes record here that they wait (so ``kernelflow
runs`` can show it), then poll for their value; ``kernelflow signal RUN NAME VALUE``
and ``kernelflow approve RUN NAME`` write it. They are kept where the run history
is (:mod:`kernelflow.store.small_db`): in ``<home>/signals.sqlite`` beside
``runs.sqlite`` (a node polling every fraction of a second must not contend with
the run's own writes), or in the run database when ``$KERNELFLOW_RUNS`` names a
PostgreSQL server, so that a value sent from any machine using it reaches a node
waiting on another.

A value is stored as the text the user typed; the waiting node parses it by the
type it expects, so the sender needs no knowledge of the workflow's code. The
node also records that type (``spec``, :mod:`kernelflow._core.type_spec`), so
that a sender can refuse a value the node would not take.

Signals are kept under the first run of a resume chain (``root``): a run that
waits, dies and is resumed under a new id gets a value sent to either id.
"""

from __future__ import annotations

import os
import time
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from kernelflow.store.small_db import SIGNALS, FileTables, SmallTables, small_tables

if TYPE_CHECKING:
    from kernelflow.store.runs import RunStore

WaitState = Literal["waiting", "received", "timed_out", "failed"]


class SignalStore:
    """Signals and waiting nodes of every run of one store; safe across processes
    (and across machines, in a shared run database).

    ``runs`` is the store's run database: when it is a server the signals are
    there; without it, or with SQLite, they are in ``<home>/signals.sqlite``.
    """

    def __init__(self, home: str | os.PathLike[str], runs: RunStore | None = None) -> None:
        self.tables: SmallTables = small_tables(SIGNALS, Path(home).absolute(), runs)

    def send(self, run_id: str, name: str, value: str) -> None:
        """Give signal ``name`` of run ``run_id`` its value (a later send replaces it)."""
        self.tables.write(
            "INSERT INTO signals (run_id, name, value, created_ts) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (run_id, name) DO UPDATE SET value = excluded.value,"
            " created_ts = excluded.created_ts",
            (run_id, name, value, time.time()),
        )

    def value(self, run_id: str, name: str) -> str | None:
        """The text sent for the signal, or None while nothing was sent."""
        row = self.tables.row(
            "SELECT value FROM signals WHERE run_id = ? AND name = ?", (run_id, name)
        )
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
        self.tables.write(
            "INSERT INTO waits (run_id, name, node, type, since_ts, deadline_ts, state, root,"
            " spec) VALUES (?, ?, ?, ?, ?, ?, 'waiting', ?, ?) ON CONFLICT (run_id, name)"
            " DO UPDATE SET node = excluded.node, type = excluded.type,"
            " since_ts = excluded.since_ts, deadline_ts = excluded.deadline_ts,"
            " state = excluded.state, root = excluded.root, spec = excluded.spec",
            (run_id, name, node, type_name, time.time(), deadline, root or run_id, spec),
        )

    def expected(self, root: str, name: str) -> tuple[str, str | None] | None:
        """The type (its name and spec) the latest node of chain ``root`` waiting for
        ``name`` asked for; None when no node has waited for it yet."""
        row = self.tables.row(
            "SELECT type, spec FROM waits WHERE coalesce(root, run_id) = ? AND name = ?"
            " ORDER BY since_ts DESC LIMIT 1",
            (root, name),
        )
        return None if row is None else (str(row["type"]), row["spec"])

    def end_wait(self, run_id: str, name: str, state: WaitState) -> None:
        self.tables.write(
            "UPDATE waits SET state = ? WHERE run_id = ? AND name = ?", (state, run_id, name)
        )

    def forget(self, run_ids: Collection[str]) -> int:
        """Remove the signals and waits of these runs (``kernelflow gc`` removed them);
        the number of rows removed. A store that never had a signal is not touched."""
        if not run_ids or (isinstance(self.tables, FileTables) and not self.tables.path.exists()):
            return 0
        removed = 0
        ids = sorted(run_ids)
        for start in range(0, len(ids), 500):  # SQLite binds at most 999 parameters
            chunk = tuple(ids[start : start + 500])
            marks = ", ".join("?" * len(chunk))
            for table in ("signals", "waits"):
                removed += self.tables.write(
                    f"DELETE FROM {table} WHERE run_id IN ({marks})", chunk
                )
        return removed

    def waits(
        self, run_id: str | None = None, *, state: WaitState | None = None
    ) -> list[dict[str, Any]]:
        """Waiting nodes (of ``run_id``, in ``state``), oldest first."""
        clauses, args = [], []
        if run_id is not None:
            clauses.append("run_id = ?")
            args.append(run_id)
        if state is not None:
            clauses.append("state = ?")
            args.append(state)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        return self.tables.rows(f"SELECT * FROM waits{where} ORDER BY since_ts", tuple(args))
