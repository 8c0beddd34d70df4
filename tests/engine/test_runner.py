"""The engine: order, retries, timeouts, failures that keep other work, events, records."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

import kernelflow
from kernelflow import current_context, task, workflow
from kernelflow.engine.events import Event
from kernelflow.errors import RecoverableError, TaskFailedError, TaskTimeoutError
from kernelflow.store.home import open_store
from kernelflow.store.runs import RunStore

ATTEMPTS: list[int] = []


@task(retries=2)
def flaky(n: int) -> int:
    attempt = current_context().attempt
    ATTEMPTS.append(attempt)
    if attempt < 3:
        raise RecoverableError(f"attempt {attempt} failed")
    return n


@task
def boom(n: int) -> int:
    raise ValueError(f"bad n: {n}")


@task
def plus_one(n: int) -> int:
    return n + 1


@task(timeout=0.2)
def sleepy(n: int) -> int:
    time.sleep(3)
    return n


def test_retries_until_an_attempt_succeeds() -> None:
    ATTEMPTS.clear()
    assert flaky(n=5) == 5
    assert ATTEMPTS == [1, 2, 3]


def test_a_failure_keeps_independent_branches_and_skips_dependents() -> None:
    @workflow
    def wf(n: int = 1) -> tuple[int, int]:
        return plus_one(n=boom(n=n)), plus_one(n=n)

    result = kernelflow.run(wf)
    assert result.status == "failed"
    assert result.tasks["boom"].status == "failed"
    assert result.tasks["plus_one"].status == "skipped"
    assert result.tasks["plus_one-2"].status == "succeeded"
    assert result.outputs == {"o1": 2}
    assert isinstance(result.error, TaskFailedError)
    assert "ValueError: bad n: 1" in str(result.error)


def test_the_traceback_of_a_failure_starts_in_user_code() -> None:
    result = kernelflow.run(_boom_wf)
    text = result.error.traceback  # type: ignore[union-attr]
    assert "raise ValueError" in text
    assert "kernelflow/engine" not in text


@workflow
def _boom_wf(n: int = 1) -> int:
    return boom(n=n)


def test_timeout_stops_waiting_and_names_the_task() -> None:
    started = time.perf_counter()
    with pytest.raises(TaskTimeoutError, match=r"'sleepy'.*timeout of 0.2 s"):
        sleepy(n=1)
    assert time.perf_counter() - started < 2.5


def test_events_arrive_in_order() -> None:
    events: list[Event] = []

    @workflow
    def wf(n: int = 1) -> int:
        return plus_one(n=plus_one(n=n))

    result = kernelflow.run(wf, listeners=[events.append])
    kinds = [(e.kind, e.node) for e in events]
    assert kinds == [
        ("run_started", None),
        ("task_started", "plus_one"),
        ("task_finished", "plus_one"),
        ("task_started", "plus_one-2"),
        ("task_finished", "plus_one-2"),
        ("run_finished", None),
    ]
    assert events[0].nodes == ("plus_one", "plus_one-2")
    assert events[-1].status == "succeeded" and result.outputs == {"o0": 3}


def test_a_broken_listener_warns_and_the_run_goes_on() -> None:
    def broken(event: Event) -> None:
        raise RuntimeError("display gone")

    with pytest.warns(kernelflow.errors.KernelflowWarning, match="display gone"):
        assert kernelflow.run(_boom_free_wf, listeners=[broken]).outputs == {"o0": 2}


@workflow
def _boom_free_wf(n: int = 1) -> int:
    return plus_one(n=n)


def test_runs_and_nodes_are_recorded_with_lineage() -> None:
    @workflow
    def chain(n: int = 1) -> int:
        return plus_one(n=plus_one(n=n))

    result = kernelflow.run(chain, {"n": 5})
    history = kernelflow.runs()
    assert list(history.columns) == [
        "run_id",
        "workflow",
        "version",
        "status",
        "started",
        "finished",
        "project",
        "domain",
    ]
    row = history.iloc[0]
    assert (row.run_id, row.workflow, row.status) == (result.run_id, "chain", "succeeded")
    assert (row.project, row.domain) == ("default", "development")
    assert row.version == chain.version
    lineage = kernelflow.lineage(result.run_id, "plus_one-2")
    upstream = lineage["inputs"]["n"]
    assert upstream["source"] == {"node": "plus_one", "output": "o0"}
    assert upstream["lineage"]["inputs"]["n"]["source"] == {"param": "n"}
    run = open_store().runs.get_run(result.run_id)
    assert run["params"] == {"n": 5}
    assert run["environment"]["kernelflow"] == kernelflow.__version__


def test_only_the_named_tasks_and_their_upstream_run() -> None:
    @workflow
    def wf(n: int = 1) -> tuple[int, int]:
        return plus_one(n=n), boom(n=n)

    result = kernelflow.run(wf, tasks=["plus_one"])
    assert set(result.tasks) == {"plus_one"}
    assert result.status == "succeeded"


RELEASE = threading.Event()


@task
def wait_for_release(n: int) -> int:
    if not RELEASE.wait(timeout=30):
        raise TimeoutError("the test never saw the run as running")
    return n


def test_a_run_shows_as_running_to_other_readers_while_its_task_runs(store_home: Path) -> None:
    """The start of a run is deferred (one commit per quick run), not hidden: another
    connection sees it while the first task is still running."""
    RELEASE.clear()
    runner = threading.Thread(target=lambda: wait_for_release(n=1))
    runner.start()
    try:
        seen = None
        deadline = time.monotonic() + 20
        while seen is None and time.monotonic() < deadline:
            with RunStore(store_home / "runs.sqlite") as reader:  # another connection
                rows = reader.list_runs()
            seen = next((r for r in rows if r["workflow"] == "wait_for_release"), None)
            time.sleep(0.01)
    finally:
        RELEASE.set()
        runner.join()
    assert seen is not None and seen["status"] == "running"
    assert kernelflow.runs().iloc[0]["status"] == "succeeded"


def test_run_ids_do_not_collide_in_a_burst() -> None:
    from kernelflow.engine.runner import new_run_id

    ids = [new_run_id() for _ in range(20_000)]  # ~one second's worth of task calls, many times
    assert len(set(ids)) == len(ids)
