"""Signals and launch plans kept where the run history is (store/small_db.py).

Two machines are two homes with the same run database. On a server (PostgreSQL)
they share signals, waits and plans: the tables are in the run database. With
SQLite each home keeps its own ``signals.sqlite`` and ``schedules.sqlite``, as
before schema version 5, and ``runs.sqlite`` holds none of those tables.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kernelflow.store import _schema
from kernelflow.store.home import Store
from kernelflow.store.runs import RunStore

SPEC = '{"t": "int"}'


def _on_server(runs_target: str) -> bool:
    return runs_target.startswith("postgresql://")


@contextlib.contextmanager
def _two_machines(runs_target: str, tmp_path: Path) -> Iterator[tuple[Store, Store]]:
    """The stores of two machines: their own homes, the one run database."""
    a = Store(tmp_path / "machine-a", runs=runs_target)
    b = Store(tmp_path / "machine-b", runs=runs_target)
    try:
        yield a, b
    finally:
        a.runs.close()
        b.runs.close()


def test_a_signal_sent_on_one_machine_reaches_the_other_through_a_shared_database(
    runs_target: str, tmp_path: Path
) -> None:
    shared = _on_server(runs_target)
    with _two_machines(runs_target, tmp_path) as (a, b):
        a.signals.start_wait("r1", "extra", node="extra", type_name="int", deadline=None, spec=SPEC)
        b.signals.send("r1", "extra", "5")
        assert a.signals.value("r1", "extra") == ("5" if shared else None)
        # the sender checks a value against the type the node on the other machine waits for
        assert b.signals.expected("r1", "extra") == (("int", SPEC) if shared else None)
        b.signals.send("r1", "extra", "6")  # a later send replaces the value
        assert a.signals.value("r1", "extra") == ("6" if shared else None)
        a.signals.end_wait("r1", "extra", "received")
        assert [w["state"] for w in b.signals.waits("r1")] == (["received"] if shared else [])
        assert [w["node"] for w in a.signals.waits(state="received")] == ["extra"]
    for machine in ("machine-a", "machine-b"):  # no local file when the server keeps them
        assert (tmp_path / machine / "signals.sqlite").exists() is not shared


def test_signals_and_plans_are_tables_of_a_server_run_database_only(
    runs_target: str, open_runs: Callable[[], RunStore], raw_sql: Callable[..., list[Any]]
) -> None:
    open_runs().close()
    if _on_server(runs_target):
        listed = "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
    else:
        listed = "SELECT name FROM sqlite_master WHERE type = 'table'"
    tables = {row[0] for row in raw_sql(listed)}
    assert "runs" in tables
    if _on_server(runs_target):
        assert {"signals", "waits", "plans"} <= tables
    else:
        assert tables.isdisjoint({"signals", "waits", "plans"})  # runs.sqlite as before


def test_a_version_4_run_database_gets_the_shared_tables_when_opened(
    runs_target: str,
    open_runs: Callable[[], RunStore],
    raw_sql: Callable[..., list[Any]],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    with monkeypatch.context() as old:  # the tables as kernelflow wrote them at version 4
        old.setattr(_schema, "SCHEMA_VERSION", 4)
        later = (_schema.SHARED_STATE, _schema._HEARTBEAT)  # what versions 5 and 6 add
        old.setattr(_schema, "SCHEMA", _schema.SCHEMA.replace(later[0], "").replace(later[1], ""))
        open_runs().close()
    with _two_machines(runs_target, tmp_path) as (a, b):
        a.signals.send("r1", "go", "yes")
        assert b.signals.value("r1", "go") == ("yes" if _on_server(runs_target) else None)
    if _on_server(runs_target):
        assert raw_sql("SELECT version FROM kernelflow_schema") == [(_schema.SCHEMA_VERSION,)]
    else:
        assert raw_sql("PRAGMA user_version") == [(_schema.SCHEMA_VERSION,)]


def test_gc_removes_the_signals_and_waits_of_the_runs_it_removes(
    runs_target: str, tmp_path: Path
) -> None:
    import time

    from kernelflow.store.gc import collect

    with _two_machines(runs_target, tmp_path) as (a, _):
        for run_id in ("r-old", "r-new"):
            a.runs.start_run(run_id=run_id, workflow="wf", version="v", params={}, environment={})
            a.runs.finish_run(run_id, status="failed")
            a.signals.start_wait(run_id, "extra", node="extra", type_name="int", deadline=None)
            a.signals.send(run_id, "extra", "5")
            time.sleep(0.01)  # r-new is the newer
        report = collect(a, keep_runs=1)
        assert report.runs == 1
        assert a.signals.value("r-old", "extra") is None and a.signals.waits("r-old") == []
        assert a.signals.value("r-new", "extra") == "5" and len(a.signals.waits("r-new")) == 1
