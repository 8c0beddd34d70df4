"""Launch plans and their run lock where the run history is: shared by every machine
when ``$KERNELFLOW_RUNS`` names a PostgreSQL server, in ``schedules.sqlite`` in the
home otherwise. A "machine" is a process with a home of its own.

Tests that take ``runs_env`` run with SQLite, then with PostgreSQL.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from kernelflow.schedule.plans import Plan, PlanStore, make_plan
from kernelflow.schedule.scheduler import Scheduler

T0 = datetime(2024, 1, 10, 12, 0, tzinfo=UTC)
TICK = datetime(2024, 1, 11, 6, 0, tzinfo=UTC)  # the first 06:00 after T0
RACERS = 3

# One scheduler of a race: it connects, says so, waits for the word, asks for the
# lock of the 06:00 tick, says whether it won, and then stays alive until told to
# go (a winner that exited would leave a stale lock for a slow racer to take over).
RACER = """
import os, sys
from datetime import UTC, datetime
from kernelflow.schedule.plans import PlanStore

store = PlanStore()
store.get("flow")
print("ready", flush=True)
sys.stdin.readline()
token = store.try_lock("flow", before=datetime(2024, 1, 11, 6, tzinfo=UTC))
print("won" if token else "lost", os.getpid(), flush=True)
sys.stdin.read()
"""


def _kernelflow(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``kernelflow ARGS`` on the machine whose home is ``home`` (same $KERNELFLOW_RUNS)."""
    return subprocess.run(
        [sys.executable, "-m", "kernelflow", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "KERNELFLOW_HOME": str(home)},
        timeout=120,
    )


def exported(path: Path) -> Path:
    """A one-cell notebook to schedule (what it does is never run here)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(new_notebook(cells=[new_code_cell("print(1)")]), path)
    return path


def _dead_pid() -> int:
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(child.stdout)


def _plan_store(tmp_path: Path) -> PlanStore:
    store = PlanStore()
    store.add(make_plan(exported(tmp_path / "flow.ipynb"), "0 6 * * *", now=T0))
    return store


def test_a_plan_added_on_one_machine_is_listed_and_removed_on_another(
    tmp_path: Path, runs_env: str | None
) -> None:
    shared = runs_env is not None
    a, b = tmp_path / "machine-a", tmp_path / "machine-b"
    notebook = exported(tmp_path / "exports" / "daily.ipynb")
    added = _kernelflow(a, "schedule", "add", str(notebook), "--cron", "0 6 * * *")
    assert added.returncode == 0, added.stderr

    listed = _kernelflow(b, "schedule", "ls")
    assert listed.returncode == 0, listed.stderr
    if not shared:  # each home keeps its own plans, as before
        assert "no plans" in listed.stdout
        assert (a / "schedules.sqlite").is_file()
        return
    [row] = [line for line in listed.stdout.splitlines() if line.startswith("daily")]
    assert "0 6 * * *" in row and "never run" in row and "development" in row
    assert not (a / "schedules.sqlite").exists() and not (b / "schedules.sqlite").exists()

    removed = _kernelflow(b, "schedule", "rm", "daily")
    assert removed.returncode == 0, removed.stderr
    assert "no plans" in _kernelflow(a, "schedule", "ls").stdout


def test_of_schedulers_racing_for_the_same_tick_exactly_one_wins(
    tmp_path: Path, runs_env: str | None
) -> None:
    _plan_store(tmp_path)
    shared = runs_env is not None
    processes = []
    try:
        for index in range(RACERS):  # machines of their own on a server; one home with SQLite
            home = tmp_path / f"machine-{index}" if shared else Path(os.environ["KERNELFLOW_HOME"])
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-c", RACER],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                    env={**os.environ, "KERNELFLOW_HOME": str(home)},
                )
            )
        for process in processes:  # all connected before any asks
            assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        for process in processes:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        results = [process.stdout.readline().split() for process in processes]  # type: ignore[union-attr]
        winners = [int(pid) for outcome, pid in results if outcome == "won"]
        assert len(winners) == 1, results
        held = PlanStore().get("flow")
        assert held.pid == winners[0] and held.host == socket.gethostname()
    finally:
        for process in processes:
            if process.stdin is not None:
                process.stdin.close()
            process.wait(timeout=60)


def test_a_lock_left_by_a_dead_process_on_this_host_is_taken_over(
    tmp_path: Path, runs_env: str | None
) -> None:
    store = _plan_store(tmp_path)
    dead = _dead_pid()
    assert store.try_lock("flow", pid=dead) is not None
    assert store.get("flow").pid == dead
    assert store.try_lock("flow") is not None  # stale: its process is gone
    assert store.get("flow").pid == os.getpid()
    assert store.try_lock("flow") is None  # held by this live process


def test_a_lock_held_on_another_host_is_stale_only_when_its_lease_ran_out(
    tmp_path: Path, runs_env: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    store = _plan_store(tmp_path)
    # Held on machine-b: its pid says nothing here (dead here, it may well run there).
    token = store.try_lock("flow", pid=_dead_pid(), host="machine-b", lease=3600)
    assert token is not None
    assert store.try_lock("flow") is None
    assert PlanStore().try_lock("flow", before=TICK) is None
    held = store.get("flow")
    assert held.host == "machine-b" and held.holder == f"pid {held.pid} on machine-b"
    store.release("flow", token, status="succeeded")

    # Its lease ran out a second ago: taken over, though its pid is alive on this host.
    assert store.try_lock("flow", pid=os.getpid(), host="machine-b", lease=-1) is not None
    assert store.try_lock("flow", before=TICK) is not None
    assert store.get("flow").host == socket.gethostname()


def test_a_scheduler_on_another_machine_skips_a_plan_running_here(
    tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KERNELFLOW_RUNS", postgres_url)
    _plan_store(tmp_path)
    clock = lambda: datetime(2024, 1, 11, 6, 1, tzinfo=UTC)  # noqa: E731
    seen: list[tuple[str, str]] = []

    def elsewhere() -> Scheduler:
        monkeypatch.setenv("KERNELFLOW_HOME", str(tmp_path / "machine-b"))
        try:
            return Scheduler(runs_dir=tmp_path / "runs-b", clock=clock, runner=_never)
        finally:
            monkeypatch.setenv("KERNELFLOW_HOME", str(tmp_path / "machine-a"))

    def runner(plan: Plan, tick: datetime, out_path: Path) -> None:
        out_path.write_text("{}")
        seen.extend((o.plan.name, o.status) for o in other.run_pending())  # meanwhile on b

    monkeypatch.setenv("KERNELFLOW_HOME", str(tmp_path / "machine-a"))
    other = elsewhere()
    here = Scheduler(runs_dir=tmp_path / "runs-a", clock=clock, runner=runner)
    [outcome] = here.run_pending()

    assert (outcome.plan.name, outcome.status) == ("flow", "succeeded")
    assert seen == [("flow", "skipped")]
    assert other.run_pending() == []  # the tick ran on machine a: not due on b either
    assert other.plans.get("flow").last_status == "succeeded"


def _never(plan: Plan, tick: datetime, out_path: Path) -> None:
    raise AssertionError(f"{plan.name} ran a second time for {tick}")


def test_a_run_longer_than_the_lease_keeps_its_lock_by_renewing_it(
    tmp_path: Path, runs_env: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kernelflow.schedule import plans as plans_module

    monkeypatch.setattr(plans_module, "LOCK_LEASE_SECONDS", 0.5)
    monkeypatch.setattr(plans_module, "LEASE_RENEW_SECONDS", 0.1)
    host = {"name": "machine-a"}  # who this process is, for the lock
    monkeypatch.setattr(plans_module, "_this_host", lambda: host["name"])
    _plan_store(tmp_path)
    attempts: list[str | None] = []

    def runner(plan: Plan, tick: datetime, out_path: Path) -> None:
        out_path.write_text("{}")
        host["name"] = "machine-b"  # now a scheduler elsewhere tries, for twice the lease
        for _ in range(10):
            time.sleep(0.1)
            attempts.append(PlanStore().try_lock("flow"))

    clock = lambda: datetime(2024, 1, 11, 6, 1, tzinfo=UTC)  # noqa: E731
    [outcome] = Scheduler(runs_dir=tmp_path / "runs", clock=clock, runner=runner).run_pending()
    assert outcome.status == "succeeded"
    assert attempts == [None] * 10  # the lease was renewed while the run went on
    held = PlanStore().get("flow")
    assert held.running_since is None and held.last_status == "succeeded"
