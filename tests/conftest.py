"""Shared fixtures: every test gets its own store, so runs never leak between tests;
and the servers a team shares: PostgreSQL (``postgres``, ``postgres_url``) and S3
(``s3_server``, ``s3_env``, from tests/s3_server.py).

The PostgreSQL server is started once per session (:mod:`postgres_server`) and
each test that asks for ``postgres_url`` gets a new empty database on it. If
PostgreSQL cannot be started the tests that need it fail with the reason; they
are never skipped.
"""

from __future__ import annotations

import contextlib
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from postgres_server import PostgresUnavailable, Server, create_database, drop_database, running
from s3_server import s3_authenticating, s3_env, s3_server  # noqa: F401 (fixtures)

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"

if str(EXAMPLES) not in sys.path:
    sys.path.insert(0, str(EXAMPLES))


@pytest.fixture(autouse=True)
def store_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh ``$KERNELFLOW_HOME`` for each test."""
    home = tmp_path / "kernelflow-home"
    monkeypatch.setenv("KERNELFLOW_HOME", str(home))
    return home


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
    from kernelflow.store.home import close_stores

    close_stores(url)  # what the test opened on it: no connection left to a dropped database
    drop_database(postgres, name)


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
