"""The run store's connection to its database: what differs between SQLite and PostgreSQL.

:class:`~kernelflow.store.runs.RunStore` holds the logic (deferred writes and
their journal, retries, the queries) once, and reaches its database through a
:class:`Database`: run a statement, open a transaction, tell a transient
failure (a lock, a serialization conflict) from a real one, and report it. The
SQLite file is :class:`SQLiteDatabase`, here; the server is
:class:`~kernelflow.store._postgres.PostgresDatabase`. Statements are written
once, in SQLite's dialect (:mod:`kernelflow.store._dialect`).
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import urllib.parse
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from kernelflow._core.errors import ConfigurationError, StoreError
from kernelflow.store._schema import ensure_schema, server_only

POSTGRES_SCHEMES = ("postgresql://", "postgres://")
SQLITE_SCHEME = "sqlite:///"


class Database(ABC):
    """One connection to a run database, used under the run store's lock.

    ``location`` names it in messages (a path, or a URL with its password
    masked); ``journal`` is the local directory where deferred writes wait.
    """

    Error: ClassVar[type[Exception]]  # any failure of the driver
    IntegrityError: ClassVar[type[Exception]]  # a constraint refused a row
    refused: ClassVar[tuple[type[Exception], ...]]  # why a replayed journal line is skipped
    location: str
    journal: Path

    @abstractmethod
    def connect(self) -> None:
        """Open the connection and make the schema current."""

    @abstractmethod
    def fresh(self) -> Database:
        """An unconnected copy, for a forked child (the parent's connection is not its own)."""

    @abstractmethod
    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        """Run one statement (SQLite dialect); a DB-API cursor."""

    @abstractmethod
    def begin(self, *, write: bool) -> None: ...

    @abstractmethod
    def end(self, *, commit: bool) -> None:
        """Commit or roll back the open transaction, if any."""

    @contextlib.contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[None]:
        """One transaction; rolled back when the block raises (a Ctrl-C too, even one
        that comes as ``BEGIN`` returns)."""
        try:
            self.begin(write=write)
            yield
        except BaseException:
            self.end(commit=False)
            raise
        self.end(commit=True)

    def savepoint(self) -> contextlib.AbstractContextManager[None]:
        """Where a failed statement inside a transaction must not abort the rest."""
        return contextlib.nullcontext()

    @abstractmethod
    def busy(self, error: Exception) -> bool:
        """Whether ``error`` is transient: waiting and trying again gets through."""

    @abstractmethod
    def failure(self, error: BaseException) -> StoreError:
        """``error`` as the one-paragraph error a user reads."""

    @abstractmethod
    def schema_version(self) -> int: ...

    @abstractmethod
    def set_schema_version(self, version: int) -> None: ...

    @abstractmethod
    def lock_schema(self) -> None:
        """Inside the schema's transaction: one process creates, the others wait."""

    @abstractmethod
    def ddl(self, statement: str) -> list[str]:
        """A schema statement (SQLite dialect) as this database's statements."""

    @abstractmethod
    def size(self) -> int:
        """Bytes the run records take."""

    @abstractmethod
    def compact(self) -> None:
        """Give the space of removed records back."""

    @abstractmethod
    def close(self) -> None: ...


def open_database(target: str | os.PathLike[str], *, home: Path | None = None) -> Database:
    """The (unconnected) database a run store ``target`` names: a path or a
    ``sqlite:///`` URL, whose journal is beside the file, or a ``postgresql://`` URL,
    whose journal is in ``home`` (default ``$KERNELFLOW_HOME`` or ``./.kernelflow``)."""
    text = os.fspath(target)
    if not text.startswith(POSTGRES_SCHEMES):
        return SQLiteDatabase(Path(text.removeprefix(SQLITE_SCHEME)).absolute())
    try:
        from kernelflow.store._postgres import PostgresDatabase  # psycopg is an extra
    except ImportError as exc:
        raise ConfigurationError(
            f"the run database {mask_url(text)} is PostgreSQL, and psycopg is not installed",
            fix="pip install 'kernelflow[postgres]', or unset KERNELFLOW_RUNS",
            url=mask_url(text),
        ) from exc
    if home is None:
        home = Path(os.environ.get("KERNELFLOW_HOME") or ".kernelflow").absolute()
    return PostgresDatabase(text, home=home)


def mask_url(url: str) -> str:
    """``url`` with its password replaced by ``***``, fit for messages and logs."""
    parts = urllib.parse.urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        user, _, host = netloc.rpartition("@")
        netloc = f"{user.partition(':')[0]}:***@{host}"
    query = re.sub(r"(?i)(password=)[^&]*", r"\1***", parts.query)
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc, query=query))


class SQLiteDatabase(Database):
    """The run store's SQLite file, in WAL mode, with its journal beside it.

    WAL mode lets readers and one writer proceed together; ``synchronous=NORMAL``
    makes a commit a write to the WAL without an fsync.
    """

    Error = sqlite3.DatabaseError
    IntegrityError = sqlite3.IntegrityError
    refused = (sqlite3.IntegrityError, sqlite3.InterfaceError)

    def __init__(self, path: Path) -> None:
        self.path = path
        self.location = str(path)
        self.journal = path.parent / "journal"
        self._conn: sqlite3.Connection | None = None

    def connect(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise self.failure(exc) from exc
        if self.path.is_dir():
            raise StoreError(
                f"the run store {self.path} is a directory, where kernelflow keeps a file",
                fix="move that directory away (kernelflow then starts a new run store there) "
                "or point $KERNELFLOW_HOME elsewhere",
                path=self.path,
            )
        conn = sqlite3.connect(
            self.path, timeout=30.0, isolation_level=None, check_same_thread=False
        )
        try:
            conn.execute("PRAGMA busy_timeout = 30000")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA recursive_triggers = ON")  # a REPLACE retires a used entry
            self._conn = conn
            ensure_schema(self)
        except BaseException:
            self._conn = None
            conn.close()
            raise

    def fresh(self) -> SQLiteDatabase:
        return SQLiteDatabase(self.path)

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        assert self._conn is not None
        return self._conn.execute(sql, params)

    def begin(self, *, write: bool) -> None:
        self.execute("BEGIN IMMEDIATE" if write else "BEGIN")

    def end(self, *, commit: bool) -> None:
        if self._conn is not None and self._conn.in_transaction:
            self.execute("COMMIT" if commit else "ROLLBACK")

    def busy(self, error: Exception) -> bool:
        """SQLite's busy timeout covers most waits, but a WAL read transaction that
        must become a write one fails at once with ``database is locked``."""
        text = str(error)
        return isinstance(error, sqlite3.OperationalError) and ("locked" in text or "busy" in text)

    def failure(self, error: BaseException) -> StoreError:
        return file_error(self.path, error)

    def schema_version(self) -> int:
        return int(self.execute("PRAGMA user_version").fetchone()[0])

    def set_schema_version(self, version: int) -> None:
        self.execute(f"PRAGMA user_version = {int(version)}")

    def lock_schema(self) -> None:
        """The transaction began with ``BEGIN IMMEDIATE``: it holds the write lock already."""

    def ddl(self, statement: str) -> list[str]:
        """The statement itself; signals and plans are not in this file but in their own
        (``signals.sqlite``, ``schedules.sqlite`` beside it), as before schema version 5."""
        return [] if server_only(statement) else [statement]

    def size(self) -> int:
        """The database file and its write-ahead log."""
        return sum(_size_of(self.path.with_name(self.path.name + end)) for end in ("", "-wal"))

    def compact(self) -> None:
        """Rewrite the file without its free pages, and empty the write-ahead log.

        In WAL mode VACUUM writes the new file through the log, which is then
        checkpointed and truncated; a reader holding the log open only delays that.
        """
        self.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.execute("VACUUM")
        self.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def file_error(path: Path, error: BaseException) -> StoreError:
    """A file of the store (SQLite's, a journal) that cannot be written or read, and why."""
    if not os.access(path.parent, os.W_OK):  # a read-only file system, or no permission
        return StoreError(
            f"cannot write to the run store {path}: its directory is read-only ({error})",
            fix="make the directory writable, or point $KERNELFLOW_HOME at a writable one",
            path=path,
        )
    if getattr(error, "errno", None) == 28 or "disk is full" in str(error):
        fix = "free space on the disk that holds it, or "
        fix += "point $KERNELFLOW_HOME elsewhere; then resume the run"
        return StoreError(f"cannot write to the run store {path}: {error}", fix=fix, path=path)
    return StoreError(
        f"the run store {path} cannot be used: {error}",
        fix="check that the directory is writable and the file is a kernelflow run store; "
        "move a damaged file aside and kernelflow starts a new one",
        path=path,
    )


def _size_of(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
