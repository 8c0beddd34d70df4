"""The run database under test: SQLite (a file in the store), or a real PostgreSQL server;
and the S3 server fixtures (tests/s3_server.py) for the object store's tests.

Tests that take ``runs_target`` run once per backend. The PostgreSQL server is
started once per session (:mod:`postgres_server`) and each test gets a new empty
database on it. If PostgreSQL cannot be started the tests that need it fail with
the reason; they are never skipped.
"""

from __future__ import annotations

import contextlib
import secrets
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from postgres_server import PostgresUnavailable, Server, create_database, drop_database, running
from s3_server import s3_authenticating, s3_env, s3_server  # noqa: F401 (fixtures)

from kernelflow.store.home import close_stores
from kernelflow.store.runs import RunStore


@pytest.fixture(scope="session")
def postgres() -> Iterator[Server]:
    """One PostgreSQL server for the session, stopped at its end."""
    stack = contextlib.ExitStack()
    try:
        server = stack.enter_context(running())
    except PostgresUnavailable as exc:
        pytest.fail(f"the PostgreSQL tests need a server: {exc}", pytrace=False)
    with stack:
        yield server


@pytest.fixture
def postgres_url(postgres: Server) -> Iterator[str]:
    """A new, empty database on the session's server, dropped after the test."""
    name = f"kf_{secrets.token_hex(6)}"
    url = create_database(postgres, name)
    yield url
    close_stores(url)  # what the test opened on it: no connection left to a dropped database
    drop_database(postgres, name)


@pytest.fixture(params=["sqlite", "postgresql"])
def runs_target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a test's run records go: a SQLite file, or a PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "home" / "runs.sqlite")
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def open_runs(runs_target: str, tmp_path: Path) -> Callable[[], RunStore]:
    """Opens the test's run store (again): the same database, the same local home."""
    return lambda: RunStore(runs_target, home=tmp_path / "home")


@pytest.fixture
def store(open_runs: Callable[[], RunStore]) -> Iterator[RunStore]:
    with open_runs() as opened:
        yield opened


@pytest.fixture
def raw_sql(runs_target: str) -> Callable[..., list[tuple[Any, ...]]]:
    """SQL on the test's database through its own connection, as sqlite3 or psql would run it."""

    def run(sql: str, *params: object) -> list[tuple[Any, ...]]:
        if not runs_target.startswith("postgresql://"):
            with contextlib.closing(sqlite3.connect(runs_target)) as conn, conn:
                return conn.execute(sql, params).fetchall()
        import psycopg

        with psycopg.connect(runs_target, autocommit=True) as conn:
            cursor = conn.execute(sql.replace("?", "%s"), params)
            return cursor.fetchall() if cursor.description else []

    return run


@pytest.fixture(params=["sqlite", "postgresql"])
def runs_env(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str | None:
    """Runs the test's workflows with run history in SQLite, then in PostgreSQL
    (``$KERNELFLOW_RUNS``, which subprocesses inherit); the URL, or ``None``."""
    if request.param == "sqlite":
        monkeypatch.delenv("KERNELFLOW_RUNS", raising=False)
        return None
    url = str(request.getfixturevalue("postgres_url"))
    monkeypatch.setenv("KERNELFLOW_RUNS", url)
    return url
