"""The run database under test: SQLite (a file in the store), or a real PostgreSQL server.

Tests that take ``runs_target`` run once per backend. The PostgreSQL server and
its fixtures (``postgres_url``, ``runs_env``) are in ``tests/conftest.py``, for the
other directories' tests too.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kernelflow.store.runs import RunStore


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
