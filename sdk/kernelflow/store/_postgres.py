"""Run records on a PostgreSQL server, through psycopg 3: a team's shared run history.

Statements are the SQLite ones, translated once each (:mod:`kernelflow.store._dialect`).
Writes in a transaction run at READ COMMITTED: every statement the run store
batches is an insert, an upsert or an ``ON CONFLICT DO NOTHING``, which
PostgreSQL makes safe for writers on many machines without table locks; a
deadlock or serialization failure between two batches is retried like SQLite's
``database is locked``. A connection the server dropped is opened again on the
next try. Deferred writes wait in a journal on this machine, as with SQLite
(see :class:`~kernelflow.store.runs.RunStore`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
from psycopg import errors as pgerrors
from psycopg.pq import TransactionStatus

from kernelflow._core.errors import ConfigurationError, StoreError
from kernelflow.store._database import Database, mask_url
from kernelflow.store._dialect import postgres, postgres_ddl
from kernelflow.store._schema import (
    POSTGRES_DDL_OVERRIDES,
    POSTGRES_OVERRIDES,
    POSTGRES_TRIGGER_EVENTS,
    TABLES,
    ensure_schema,
)

CONNECT_TIMEOUT = 10  # seconds; an unreachable server is reported, not waited for
_TRANSIENT = (
    pgerrors.SerializationFailure,
    pgerrors.DeadlockDetected,
    pgerrors.LockNotAvailable,
)


class PostgresDatabase(Database):
    """One psycopg connection in autocommit mode; transactions are explicit."""

    Error = psycopg.Error
    IntegrityError = psycopg.IntegrityError
    refused = (psycopg.IntegrityError, psycopg.DataError)

    def __init__(self, url: str, *, home: Path) -> None:
        self.url, self._home = url, home
        self.location = mask_url(url)
        digest = hashlib.sha256(self.location.encode()).hexdigest()[:12]
        # Journals of one database only: another database must not replay them.
        self.journal = home / f"journal-pg-{digest}"
        self._conn: psycopg.Connection[Any] | None = None

    def connect(self) -> None:
        self._conn = self._open()
        try:
            ensure_schema(self)
        except BaseException:
            self.close()
            raise

    def _open(self) -> psycopg.Connection[Any]:
        try:
            return _dial(self.url)
        except psycopg.Error as exc:  # unreachable, refused, or a URL libpq cannot parse
            raise self._unreachable(exc) from exc

    def _unreachable(self, error: psycopg.Error) -> ConfigurationError:
        reason = self._masked(_reason(error))
        if "does not exist" in reason:
            fix = "create the database (createdb), or name an existing one in KERNELFLOW_RUNS"
        elif "authentication" in reason or "password" in reason:
            fix = "check the user name and password in KERNELFLOW_RUNS"
        else:
            fix = "check that the server runs and accepts connections at that host and port"
        return ConfigurationError(
            f"cannot open the run database {self.location}: {reason}; nothing was written",
            fix=fix + "; or unset KERNELFLOW_RUNS to keep run history in $KERNELFLOW_HOME",
            url=self.location,
        )

    def _masked(self, text: str) -> str:
        password = urllib.parse.urlsplit(self.url).password
        for secret in {password, urllib.parse.unquote(password or "")} - {None, ""}:
            text = text.replace(str(secret), "***")
        return text

    def fresh(self) -> PostgresDatabase:
        return PostgresDatabase(self.url, home=self._home)

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.broken:  # dropped by the server: open again
            self._conn = None
            self._conn = _dial(self.url)
        return self._conn

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> psycopg.Cursor[Any]:
        statement = postgres(POSTGRES_OVERRIDES.get(sql, sql))
        values = [_adapt(params[index]) for index in statement.order]
        return self._connection().execute(statement.sql, values)

    def begin(self, *, write: bool) -> None:
        # A read sees one snapshot throughout (gc reads several tables at once).
        self.execute("BEGIN" if write else "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")

    def end(self, *, commit: bool) -> None:
        conn = self._conn
        if conn is None or conn.broken or conn.info.transaction_status == TransactionStatus.IDLE:
            return
        conn.execute("COMMIT" if commit else "ROLLBACK")

    @contextlib.contextmanager
    def savepoint(self) -> Iterator[None]:
        """An error aborts a PostgreSQL transaction; a savepoint keeps the rest of it."""
        self.execute("SAVEPOINT line")
        try:
            yield
        except self.refused:
            self.execute("ROLLBACK TO SAVEPOINT line")
            raise
        self.execute("RELEASE SAVEPOINT line")

    def busy(self, error: Exception) -> bool:
        """A conflict between two transactions, or a connection the server dropped
        (it is opened again on the next try)."""
        if isinstance(error, _TRANSIENT):
            return True
        dropped = self._conn is None or self._conn.broken
        return isinstance(error, psycopg.OperationalError) and dropped

    def failure(self, error: BaseException) -> StoreError:
        return StoreError(
            f"the run database {self.location} cannot be used: {self._masked(str(error))}",
            fix="check the server (its log says why) and that the user may create tables "
            "there; then resume the run",
            url=self.location,
        )

    def schema_version(self) -> int:
        # A query of the catalog, not to_regclass(): its lookup may not yet see a
        # table that the process this one waited for (lock_schema) has just made.
        found = self.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_tables"
            " WHERE tablename = 'kernelflow_schema' AND schemaname = current_schema())"
        ).fetchone()
        if not found[0]:
            return 0
        row = self.execute("SELECT MAX(version) FROM kernelflow_schema").fetchone()
        return int(row[0] or 0)

    def set_schema_version(self, version: int) -> None:
        self.execute("CREATE TABLE IF NOT EXISTS kernelflow_schema (version INTEGER NOT NULL)")
        self.execute("DELETE FROM kernelflow_schema")
        self.execute("INSERT INTO kernelflow_schema (version) VALUES (?)", (version,))

    def lock_schema(self) -> None:
        self.execute("SELECT pg_advisory_xact_lock(hashtext('kernelflow:' || current_schema()))")

    def ddl(self, statement: str) -> list[str]:
        override = POSTGRES_DDL_OVERRIDES.get(statement.strip().rstrip(";").strip())
        if override is not None:
            return list(override)
        return postgres_ddl(statement, events=POSTGRES_TRIGGER_EVENTS)

    def size(self) -> int:
        """The run store's tables with their indexes, in this database's current schema."""
        sql = (
            "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0) FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = current_schema() AND c.relname IN (SELECT value FROM json_each(?))"
        )
        return int(self.execute(sql, (json.dumps(TABLES),)).fetchone()[0])

    def compact(self) -> None:
        """Rewrite the tables without their dead rows, as SQLite's VACUUM rewrites the file.

        Like SQLite's, it holds each table's lock while it runs (writers wait, then go
        on); ``kernelflow gc`` is the one caller. It runs outside a transaction.
        """
        self.execute(f"VACUUM FULL {', '.join(TABLES)}")

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
            self._conn = None


def _reason(error: psycopg.Error) -> str:
    """libpq's first line, without the address it repeats: "Connection refused",
    "password authentication failed for user ...", "database ... does not exist"."""
    lines = str(error).strip().splitlines() or [type(error).__name__]
    reason = lines[0].rpartition(" failed: ")[2] if " failed: " in lines[0] else lines[0]
    return reason.removeprefix("FATAL:").strip() or lines[0]


def _dial(url: str) -> psycopg.Connection[Any]:
    return psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT)


def _adapt(value: object) -> object:
    """SQLite stores a bool as an integer; PostgreSQL will not put one in an INTEGER column."""
    return int(value) if isinstance(value, bool) else value
