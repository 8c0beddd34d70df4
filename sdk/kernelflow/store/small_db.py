"""A small SQLite file of the store's (signals, schedules): one way to open it.

Each use opens a fresh autocommit connection (these files are touched now and
then, by several processes): WAL, a long busy timeout, rows by column name. The
first use in a process also creates the schema and adds columns that newer
kernelflow versions introduced.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from kernelflow._core.errors import StoreError

BUSY_TIMEOUT_MS = 30_000


@contextmanager
def small_database(
    path: Path,
    what: str,
    prepare: Callable[[sqlite3.Connection], None] | None = None,
) -> Iterator[sqlite3.Connection]:
    """A connection to the ``what`` database at ``path``; ``prepare`` (schema and
    upgrades) runs first when given, in WAL mode."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000)
    except (OSError, sqlite3.Error) as error:
        raise StoreError(
            f"cannot open the {what} database {str(path)!r}: {error}",
            fix="check that $KERNELFLOW_HOME points to a writable directory",
        ) from error
    conn.isolation_level = None  # autocommit: each statement is its own transaction
    conn.row_factory = sqlite3.Row
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if prepare is not None:
            conn.execute("PRAGMA journal_mode = WAL")
            prepare(conn)
        yield conn
    finally:
        conn.close()
