"""The store's small tables (signals, launch plans): where they are, one way to use them.

Their layout is in :mod:`kernelflow.store._schema` (``SIGNAL_TABLES``,
``PLAN_TABLES``). Where they are depends on the run database:

- SQLite (the default): each has a small SQLite file in the home
  (``signals.sqlite``, ``schedules.sqlite``), apart from ``runs.sqlite`` so that
  a node polling for a signal, or a scheduler polling its plans, does not contend
  for the run records' write lock. Each use opens a fresh autocommit connection
  (these files are touched now and then, by several processes): WAL, a long busy
  timeout. The first use in a process also creates the tables and adds columns
  that newer kernelflow versions introduced.
- A server (``$KERNELFLOW_RUNS=postgresql://...``): the run database itself, so
  that every machine using it sees the same signals and plans. Statements go
  through the run store's connection (:meth:`RunStore.select`,
  :meth:`RunStore.execute`), written in SQLite's dialect as the run store's are.

Either way a statement is committed on its own, and rows come back by column name.
"""

from __future__ import annotations

import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from kernelflow._core.errors import StoreError
from kernelflow.store._schema import ADDED_COLUMNS, PLAN_TABLES, SIGNAL_TABLES

if TYPE_CHECKING:
    from kernelflow.store.runs import RunStore

BUSY_TIMEOUT_MS = 30_000


class SmallKind(NamedTuple):
    """One set of small tables: its file (with SQLite), what messages call it, its DDL."""

    file: str
    what: str
    tables: str


SIGNALS = SmallKind("signals.sqlite", "signal", SIGNAL_TABLES)
PLANS = SmallKind("schedules.sqlite", "schedule", PLAN_TABLES)


class SmallTables(ABC):
    """Statements on one set of small tables, each committed on its own."""

    location: str  # for messages: a file, or the run database's URL without its password
    shared: bool  # whether every machine using the run database sees them

    @abstractmethod
    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        """The rows of one query (SQLite dialect), by column name."""

    @abstractmethod
    def write(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        """Run one statement (SQLite dialect); the number of rows it changed."""

    def row(self, sql: str, params: tuple[Any, ...] = ()) -> dict[str, Any] | None:
        """The first row of a query, or None."""
        found = self.rows(sql, params)
        return found[0] if found else None


class FileTables(SmallTables):
    """The tables in a SQLite file of their own (the default, as before version 5)."""

    shared = False

    def __init__(self, path: str | Path, kind: SmallKind) -> None:
        self.path = Path(path).absolute()
        self.location = str(self.path)
        self.kind = kind
        self._ready = False

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        prepare = None if self._ready else self._prepare
        with small_database(self.path, self.kind.what, prepare) as conn:
            yield conn

    def _prepare(self, conn: sqlite3.Connection) -> None:
        conn.executescript(self.kind.tables)
        _add_missing_columns(conn, ADDED_COLUMNS)
        self._ready = True

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        with self._connect() as conn:
            return [dict(row) for row in conn.execute(sql, params).fetchall()]

    def write(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        with self._connect() as conn:
            return conn.execute(sql, params).rowcount


class RunDatabaseTables(SmallTables):
    """The tables in the run database (a server), through the run store's connection;
    they were made with the run store's schema."""

    shared = True

    def __init__(self, runs: RunStore) -> None:
        self.runs = runs
        self.location = runs.location

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        return self.runs.select(sql, params)

    def write(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        return self.runs.execute(sql, params)


def small_tables(kind: SmallKind, home: str | Path, runs: RunStore | None = None) -> SmallTables:
    """The tables of ``kind`` for the store at ``home`` whose run database is ``runs``:
    in that database when it is a server, else in their file in ``home``."""
    if runs is not None and runs.shared:
        return RunDatabaseTables(runs)
    return FileTables(Path(home) / kind.file, kind)


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


def _add_missing_columns(conn: sqlite3.Connection, added: Mapping[str, Mapping[str, str]]) -> None:
    """A file written by an older kernelflow gets the columns added since (each process
    that opens it may try: a column another one added meanwhile is no error)."""
    tables = {row["name"] for row in conn.execute("SELECT name FROM sqlite_master")}
    for table in tables & set(added):
        present = {row["name"] for row in conn.execute(f"PRAGMA table_info({table})")}
        for column, definition in added[table].items():
            if column in present:
                continue
            try:
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
            except sqlite3.OperationalError as error:  # another process added it just now
                if "duplicate column" not in str(error):
                    raise
