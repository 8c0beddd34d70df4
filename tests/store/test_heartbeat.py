"""A run started on another machine is reported ``died`` once its process stops
stamping it (store/_heartbeat.py), on SQLite and on a real PostgreSQL server.

Two machines are two RunStores on one database with different host names; the
heartbeat's period and the time after which a silent run counts as dead are
shortened for the test.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from kernelflow.store import _heartbeat
from kernelflow.store.runs import RunStore


@pytest.fixture(autouse=True)
def quick_heartbeat(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_heartbeat, "HEARTBEAT_SECONDS", 0.05)
    monkeypatch.setattr(_heartbeat, "STALE_AFTER_SECONDS", 0.6)


def _machine(runs_target: str, tmp_path: Path, name: str) -> RunStore:
    store = RunStore(runs_target, home=tmp_path / name)
    store._host = name  # what socket.gethostname() says on that machine
    return store


def _until(what: str, check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def _status(store: RunStore, run_id: str) -> str:
    [run] = [r for r in store.list_runs() if r["run_id"] == run_id]
    return str(run["status"])


def test_another_machine_sees_a_run_die_when_its_heartbeat_stops(
    runs_target: str, tmp_path: Path
) -> None:
    a, b = _machine(runs_target, tmp_path, "machine-a"), _machine(runs_target, tmp_path, "b")
    try:
        a.start_run(run_id="r1", workflow="wf", version="v", params={}, environment={},
                    pid=os.getpid())  # fmt: skip
        _until("a first stamp", lambda: b.get_run("r1")["heartbeat_ts"] is not None)  # type: ignore[index]
        time.sleep(1.0)  # longer than the stale time: the stamps keep it alive
        assert _status(b, "r1") == "running"

        assert a._heartbeat is not None
        a._heartbeat.stop()  # as if machine A's process were killed
        _until("b to see the run die", lambda: _status(b, "r1") == "died")
        run = b.get_run("r1")
        assert run is not None and "process" in str(run["error"])
        assert "on machine-a stopped reporting" in str(run["error"])

        a.finish_run("r1", status="succeeded")  # a run wrongly judged sets itself right
        assert _status(b, "r1") == "succeeded"
    finally:
        a.close()
        b.close()


def test_a_finished_run_stops_being_stamped_and_a_silent_new_one_is_not_judged(
    runs_target: str, tmp_path: Path
) -> None:
    a, b = _machine(runs_target, tmp_path, "machine-a"), _machine(runs_target, tmp_path, "b")
    try:
        a.start_run(run_id="done", workflow="wf", version="v", params={}, environment={},
                    pid=os.getpid())  # fmt: skip
        _until("a first stamp", lambda: b.get_run("done")["heartbeat_ts"] is not None)  # type: ignore[index]
        a.finish_run("done", status="failed")
        assert a._heartbeat is not None and "done" not in a._heartbeat.runs
        # Recorded without a pid (not this process's run): never stamped, never judged
        # by another host (as before heartbeats).
        a.start_run(run_id="quiet", workflow="wf", version="v", params={}, environment={})
        time.sleep(0.8)
        assert _status(b, "quiet") == "running" and _status(b, "done") == "failed"
    finally:
        a.close()
        b.close()
