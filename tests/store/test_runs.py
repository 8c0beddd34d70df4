"""The run store, on real files and a real PostgreSQL server: what the engine, CLI and
magics read back. Tests taking ``store``, ``open_runs`` or ``runs_target`` run on both
(tests/store/conftest.py); the rest are about SQLite's file."""

from __future__ import annotations

import json
import multiprocessing
import os
import pickle
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from kernelflow.errors import KernelflowError, StoreError
from kernelflow.store._schema import NODE_COLUMNS, SCHEMA_VERSION
from kernelflow.store.runs import RunStore

Raw = Callable[..., list[tuple[object, ...]]]


def _start(store: RunStore, run_id: str, workflow: str = "wf", **extra: object) -> None:
    store.start_run(
        run_id=run_id, workflow=workflow, version="v1", params={"n": 3}, environment={}, **extra
    )


def _output(name: str) -> dict[str, dict[str, object]]:
    artifact = {"uri": f"artifacts/{name}.pkl", "format": "pickle"}
    return {name: {"hash": f"h-{name}", "artifact": artifact, "type": "int"}}


def _record(store: RunStore, run_id: str, node: str, **extra: object) -> None:
    fields: dict[str, object] = dict(
        run_id=run_id, node=node, task=node, attempt=1, status="succeeded", cache_hit=False,
        cache_key=f"key-{node}", code_hash=f"code-{node}", inputs={}, outputs=_output(node),
        started=time.time(), duration=0.5,
    )  # fmt: skip
    fields.update(extra)
    store.record_node(**fields)  # type: ignore[arg-type]


def _from_node(node: str) -> dict[str, object]:
    return {"hash": f"h-{node}", "source": {"node": node, "output": node}}


def _parse_utc(text: object) -> datetime:
    parsed = datetime.fromisoformat(str(text))
    assert parsed.utcoffset() == UTC.utcoffset(None)
    return parsed


# -- runs ----------------------------------------------------------------------------


def test_run_round_trip_decodes_json_and_reprs_what_json_cannot_hold(store: RunStore) -> None:
    class Opaque:
        def __repr__(self) -> str:
            return "<opaque>"

    store.start_run(
        run_id="r1", workflow="wf", version="abc123", params={"n": 3, "obj": Opaque()},
        environment={"python": "3.11", "packages": {"pandas": "3.1"}}, pid=os.getpid(),
    )  # fmt: skip
    store.finish_run("r1", status="succeeded", outputs={"model": {"uri": "m.pkl"}})

    run = store.get_run("r1")
    assert run is not None
    assert run["params"] == {"n": 3, "obj": "<opaque>"}
    assert run["environment"] == {"python": "3.11", "packages": {"pandas": "3.1"}}
    assert run["outputs"] == {"model": {"uri": "m.pkl"}}
    assert (run["status"], run["version"], run["pid"]) == ("succeeded", "abc123", os.getpid())
    assert _parse_utc(run["finished"]) >= _parse_utc(run["started"])
    assert 0 <= run["duration"] < 60


def test_failed_run_keeps_its_error(store: RunStore) -> None:
    _start(store, "r1")
    store.finish_run("r1", status="failed", error="train: ValueError: bad")
    assert store.list_runs()[0]["error"] == "train: ValueError: bad"
    assert store.get_run("r1")["status"] == "failed"  # type: ignore[index]


def test_unknown_run_is_none_and_cannot_be_finished(store: RunStore) -> None:
    assert store.get_run("nope") is None
    with pytest.raises(StoreError, match="nope"):
        store.finish_run("nope", status="succeeded")


def test_a_run_id_cannot_be_started_twice(store: RunStore) -> None:
    _start(store, "r1")
    with pytest.raises(StoreError, match="r1"):
        _start(store, "r1")


def test_statuses_outside_the_contract_are_refused(store: RunStore) -> None:
    _start(store, "r1")
    with pytest.raises(KernelflowError, match="done"):
        store.finish_run("r1", status="done")  # type: ignore[arg-type]
    with pytest.raises(KernelflowError, match="ok"):
        _record(store, "r1", "a", status="ok")


def test_list_runs_newest_first_filtered_and_limited(store: RunStore) -> None:
    for run_id, workflow in [("r1", "etl"), ("r2", "train"), ("r3", "etl"), ("r4", "etl")]:
        _start(store, run_id, workflow)
    store.finish_run("r1", status="succeeded")

    runs = store.list_runs()
    assert [r["run_id"] for r in runs] == ["r4", "r3", "r2", "r1"]
    assert set(runs[0]) >= {"run_id", "workflow", "version", "status", "started", "finished"}
    assert [r["run_id"] for r in store.list_runs("etl")] == ["r4", "r3", "r1"]
    assert [r["run_id"] for r in store.list_runs("etl", limit=2)] == ["r4", "r3"]
    assert runs[-1]["duration"] is not None and runs[0]["duration"] is None
    assert runs[-1]["params"] == {"n": 3}


def _exited_pid() -> int:
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return int(done.stdout)


def test_a_running_run_whose_process_is_gone_is_reported_and_recorded_as_died(
    store: RunStore, raw_sql: Raw
) -> None:
    _start(store, "dead", pid=_exited_pid())
    _start(store, "alive", pid=os.getpid())

    statuses = {r["run_id"]: r["status"] for r in store.list_runs()}
    assert statuses == {"dead": "died", "alive": "running"}
    assert "ended without finishing" in str(store.get_run("dead")["error"])  # type: ignore[index]
    rows = dict(raw_sql("SELECT run_id, status FROM runs"))  # what sqlite3 or psql would show
    assert rows == {"dead": "died", "alive": "running"}


def test_an_unreaped_zombie_process_counts_as_dead(store: RunStore) -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        deadline = time.monotonic() + 30
        while Path(f"/proc/{child.pid}/stat").read_text().split(")")[-1].split()[0] != "Z":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        _start(store, "r1", pid=child.pid)
        assert store.get_run("r1")["status"] == "died"  # type: ignore[index]
    finally:
        child.wait()


def test_a_pid_reused_by_a_newer_process_does_not_keep_an_old_run_running(
    store: RunStore, raw_sql: Raw
) -> None:
    newcomer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _start(store, "yesterday", pid=newcomer.pid)
        # as if started a day ago by a process now gone
        raw_sql("UPDATE runs SET started_ts = started_ts - 86400")
        _start(store, "today", pid=newcomer.pid)
        statuses = {r["run_id"]: r["status"] for r in store.list_runs()}
        assert statuses == {"yesterday": "died", "today": "running"}
    finally:
        newcomer.kill()
        newcomer.wait()


def test_a_died_run_that_finishes_after_all_keeps_its_real_status(store: RunStore) -> None:
    _start(store, "r1", pid=_exited_pid())
    assert store.get_run("r1")["status"] == "died"  # type: ignore[index]
    store.finish_run("r1", status="succeeded")
    assert store.get_run("r1")["status"] == "succeeded"  # type: ignore[index]


def test_a_run_started_on_another_host_is_never_declared_dead(
    open_runs: Callable[[], RunStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(socket, "gethostname", lambda: "some-other-host")
    with open_runs() as elsewhere:
        _start(elsewhere, "r1", pid=_exited_pid())
    monkeypatch.undo()
    with open_runs() as here:
        assert here.list_runs()[0]["status"] == "running"


def test_last_run_and_last_unfinished_run(store: RunStore) -> None:
    assert store.last_run() is None
    _start(store, "old-failed", "etl")
    store.finish_run("old-failed", status="failed", error="boom")
    _start(store, "crashed", "etl", pid=_exited_pid())
    _start(store, "ok", "etl")
    store.finish_run("ok", status="succeeded")
    _start(store, "live", "etl", pid=os.getpid())  # still running right here
    _start(store, "other", "train")

    assert store.last_run()["run_id"] == "other"  # type: ignore[index]
    assert store.last_run("etl")["run_id"] == "live"  # type: ignore[index]
    unfinished = store.last_run("etl", unfinished=True)
    assert unfinished is not None
    assert (unfinished["run_id"], unfinished["status"]) == ("crashed", "died")
    assert store.last_run("nothing", unfinished=True) is None


# -- node executions -------------------------------------------------------------------


def test_node_executions_round_trip_every_attempt_in_order(store: RunStore) -> None:
    _start(store, "r1")
    started = time.time()
    inputs = {"df": _from_node("load"), "n": {"hash": "h-n", "source": {"param": "n"}}}
    _record(store, "r1", "load")
    _record(
        store, "r1", "train", attempt=1, status="failed", error="ValueError: nan",
        inputs=inputs, outputs={}, started=started, duration=1.25,
    )  # fmt: skip
    _record(store, "r1", "train", attempt=2, inputs=inputs, started=started + 2)

    rows = store.node_executions("r1")
    assert [(r["node"], r["attempt"], r["status"]) for r in rows] == [
        ("load", 1, "succeeded"),
        ("train", 1, "failed"),
        ("train", 2, "succeeded"),
    ]
    failed = rows[1]
    assert failed["inputs"] == inputs and failed["outputs"] == {}
    assert failed["error"] == "ValueError: nan" and failed["duration"] == 1.25
    assert failed["cache_hit"] is False and failed["code_hash"] == "code-train"
    assert failed["started_ts"] == started
    assert abs(_parse_utc(failed["started"]).timestamp() - started) < 0.001
    assert store.node_executions("unknown") == []


def test_executions_of_interleaved_runs_never_mix(store: RunStore) -> None:
    for i in range(3):
        _record(store, "r1", f"a{i}")
        _record(store, "r2", f"b{i}")
    assert [r["node"] for r in store.node_executions("r1")] == ["a0", "a1", "a2"]
    assert [r["node"] for r in store.node_executions("r2")] == ["b0", "b1", "b2"]


def test_finished_nodes_are_the_last_success_of_each_node(store: RunStore) -> None:
    _start(store, "r1")
    _record(store, "r1", "load", status="cached", cache_hit=True)
    _record(store, "r1", "train", status="failed", error="boom", outputs={})
    _record(store, "r1", "clean", outputs=_output("first"))
    _record(store, "r1", "clean", attempt=2, outputs=_output("second"))
    _record(store, "r1", "report", status="skipped", outputs={})

    finished = store.finished_nodes("r1")
    assert set(finished) == {"load", "clean"}
    assert finished["clean"]["outputs"] == _output("second")
    assert finished["load"]["cache_hit"] is True


def test_finished_nodes_include_what_the_resumed_runs_finished(store: RunStore) -> None:
    _start(store, "r1")
    _record(store, "r1", "load")
    _record(store, "r1", "clean", status="failed", outputs={})
    _start(store, "r2", resumed_from="r1")
    _record(store, "r2", "clean")
    _start(store, "r3", resumed_from="r2")

    finished = store.finished_nodes("r3")
    assert {node: row["run_id"] for node, row in finished.items()} == {
        "load": "r1",
        "clean": "r2",
    }


def test_resumed_by_lists_the_runs_that_resumed_a_run_oldest_first(store: RunStore) -> None:
    _start(store, "r1")
    _start(store, "r2", resumed_from="r1")
    _start(store, "r3", resumed_from="r1")
    _start(store, "r4", resumed_from="r2")
    store.finish_run("r3", status="succeeded")

    assert [(r["run_id"], r["status"]) for r in store.resumed_by("r1")] == [
        ("r2", "running"),
        ("r3", "succeeded"),
    ]
    assert store.resumed_by("r4") == []


# -- cache index -----------------------------------------------------------------------


def test_cache_put_get_hit_and_replace(store: RunStore) -> None:
    assert store.cache_get("k1") is None
    manifest = {"task": "train", "code": "c1", "inputs": {"df": "h1"}, "cache_version": ""}
    store.cache_put("k1", task="train", outputs=_output("model"), manifest=manifest, duration=3.4)
    _start(store, "r1")
    for node in ("a", "b"):  # two hits (one of them deferred), counted from their records
        _record(
            store, "r1", node, status="cached", cache_hit=True, cache_key="k1", defer=node == "b"
        )
    _record(store, "r1", "c", cache_key="k1")  # the run that filled it: not a hit

    entry = store.cache_get("k1")
    assert entry is not None
    assert (entry["key"], entry["task"], entry["hits"], entry["duration"]) == (
        "k1",
        "train",
        2,
        3.4,
    )
    assert entry["outputs"] == _output("model") and entry["manifest"] == manifest
    _parse_utc(entry["created"])
    _parse_utc(entry["last_used"])

    store.cache_put("k1", task="train", outputs=_output("model2"), manifest={}, duration=1.0)
    assert store.cache_get("k1")["outputs"] == _output("model2")  # type: ignore[index]


def _hit(store: RunStore, run_id: str, key: str, outputs: object, node: str = "train") -> None:
    store.record_hit(
        run_id=run_id, node=node, task="train", cache_key=key, code_hash="code-train",
        inputs={"n": {"hash": "h-n", "source": {"param": "n"}}}, outputs=outputs,  # type: ignore[arg-type]
        started=time.time(),
    )  # fmt: skip


def test_a_hit_keeps_what_it_used_when_its_entry_is_replaced_then_deleted(
    store: RunStore, raw_sql: Raw
) -> None:
    manifest = {"code_hash": "code-train"}
    store.cache_put("k", task="train", outputs=_output("v1"), manifest=manifest, duration=1.0)
    _start(store, "r1")
    used = store.cache_lookup("k")
    assert used is not None
    _hit(store, "r1", "k", used.outputs_json)
    _hit(store, "r1", "k", _output("elsewhere"), node="other")  # not what the entry holds
    store.cache_put("k", task="train", outputs=_output("v2"), manifest=manifest, duration=1.0)

    records = store.node_executions("r1")
    assert [(r["node"], r["outputs"]) for r in records] == [
        ("train", _output("v1")),
        ("other", _output("elsewhere")),
    ]
    assert store.cache_get("k")["hits"] == 1  # type: ignore[index]  # the full record's
    store.cache_delete(key="k")
    assert store.node_executions("r1") == records
    assert records[0]["inputs"] == {"n": {"hash": "h-n", "source": {"param": "n"}}}
    # the version r1 used, kept for r1 alone
    assert raw_sql("SELECT COUNT(*) FROM cache_retired") == [(1,)]
    assert store.forget_runs(["r1"]) == ([], 0)  # never a run that is still running
    store.finish_run("r1", status="succeeded")
    assert store.forget_runs(["r1"]) == (["r1"], 2)
    assert raw_sql("SELECT COUNT(*) FROM cache_retired") == [(0,)]


def test_cache_entries_and_delete_by_task_key_or_all(store: RunStore) -> None:
    for key, task in [("a1", "a"), ("a2", "a"), ("b1", "b"), ("c1", "c")]:
        store.cache_put(key, task=task, outputs={}, manifest={}, duration=0.1)

    assert sorted(e["key"] for e in store.cache_entries("a")) == ["a1", "a2"]
    assert len(store.cache_entries()) == 4
    assert store.cache_delete(task="a") == 2
    assert store.cache_get("a1") is None and store.cache_get("b1") is not None
    assert store.cache_delete(key="b1") == 1
    assert store.cache_delete(task="c", key="nope") == 0
    assert store.cache_delete() == 1
    assert store.cache_entries() == []


# -- lineage ---------------------------------------------------------------------------


def _chain(store: RunStore, run_id: str = "r1") -> None:
    _start(store, run_id)
    _record(store, run_id, "load", inputs={"path": {"hash": "h-p", "source": {"param": "path"}}})
    _record(store, run_id, "clean", inputs={"load": _from_node("load")}, cache_hit=True)
    _record(
        store, run_id, "train",
        inputs={"clean": _from_node("clean"), "seed": {"hash": "h-s", "source": {"const": True}}},
    )  # fmt: skip


def test_lineage_follows_a_three_node_chain_to_its_parameters(store: RunStore) -> None:
    _chain(store)
    train = store.lineage("r1", "train")

    assert (train["node"], train["task"], train["code_hash"]) == ("train", "train", "code-train")
    assert train["outputs"] == _output("train") and train["run_id"] == "r1"
    seed = train["inputs"]["seed"]  # type: ignore[index]
    assert seed == {"hash": "h-s", "source": {"const": True}, "lineage": None}
    clean = train["inputs"]["clean"]["lineage"]  # type: ignore[index]
    assert (clean["node"], clean["cache_hit"], clean["cache_key"]) == ("clean", True, "key-clean")
    load = clean["inputs"]["load"]["lineage"]
    assert load["code_hash"] == "code-load"
    assert load["inputs"]["path"] == {"hash": "h-p", "source": {"param": "path"}, "lineage": None}


def test_lineage_by_task_name_and_through_resumed_runs(store: RunStore) -> None:
    _chain(store)
    _start(store, "r2", resumed_from="r1")
    _record(store, "r2", "fit-1", task="fit", inputs={"clean": _from_node("clean")})

    fit = store.lineage("r2", "fit")
    assert (fit["node"], fit["run_id"]) == ("fit-1", "r2")
    assert fit["inputs"]["clean"]["lineage"]["run_id"] == "r1"  # type: ignore[index]


def test_lineage_of_an_unknown_node_lists_the_nodes_of_the_run(store: RunStore) -> None:
    _chain(store)
    with pytest.raises(KernelflowError) as info:
        store.lineage("r1", "evaluate")
    message = str(info.value)
    assert "r1" in message and "evaluate" in message
    assert "clean, load, train" in message
    with pytest.raises(KernelflowError, match="no-such-run"):
        store.lineage("no-such-run", "train")


def test_lineage_of_a_task_used_by_two_nodes_asks_which(store: RunStore) -> None:
    _record(store, "r1", "square[0]", task="square")
    _record(store, "r1", "square[1]", task="square")
    with pytest.raises(KernelflowError, match=r"square\[0\], square\[1\]"):
        store.lineage("r1", "square")
    assert store.lineage("r1", "square[1]")["node"] == "square[1]"


def test_lineage_of_a_long_chain_does_not_hit_the_recursion_limit(store: RunStore) -> None:
    depth = sys.getrecursionlimit() + 200
    _record(store, "r1", "n0")
    for i in range(1, depth):
        _record(store, "r1", f"n{i}", inputs={"x": _from_node(f"n{i - 1}")})
    level, seen = store.lineage("r1", f"n{depth - 1}"), 1
    while level["inputs"]:
        level, seen = level["inputs"]["x"]["lineage"], seen + 1  # type: ignore[index]
    assert (seen, level["node"]) == (depth, "n0")


def test_latest_execution_by_node_task_or_output_name(store: RunStore) -> None:
    """What ``%workflow lineage NAME`` falls back to: the newest finished execution."""
    outputs = {"total_revenue": {"hash": "h-1", "artifact": {}}}
    _record(store, "r1", "total", outputs=outputs, started=1.0)
    _record(store, "r2", "total", outputs={"total_revenue": {"hash": "h-2"}}, started=2.0)
    _record(store, "r3", "total", status="failed", outputs={}, started=3.0)
    _record(store, "r3", "total-2", task="total", outputs=_output("other"), started=2.5)
    assert store.latest_execution("total") is not None
    assert store.latest_execution("total")["node"] == "total-2"  # type: ignore[index]
    assert store.latest_execution("total_revenue")["run_id"] == "r2"  # type: ignore[index]
    older = store.latest_execution("total_revenue", output_hash="h-1")
    assert older is not None and older["run_id"] == "r1"
    assert store.latest_execution("total_revenue", output_hash="h-3") is None
    assert store.latest_execution("total%") is None and store.latest_execution("TOTAL") is None


# -- the file, processes and threads ---------------------------------------------------


def _hammer(path: str, home: str, worker: int, count: int) -> None:
    store = RunStore(path, home=home)
    for i in range(count):
        _record(store, f"run-{worker % 2}", f"w{worker}-n{i}")
        store.cache_put(
            f"w{worker}-k{i}", task=f"t{worker}", outputs=_output("x"), manifest={}, duration=0.1
        )
        store.cache_put(
            "shared", task="shared", outputs=_output(f"w{worker}"), manifest={}, duration=1
        )
    store.close()


def test_four_processes_writing_at_once_lose_nothing(
    runs_target: str, open_runs: Callable[[], RunStore], tmp_path: Path
) -> None:
    home = str(tmp_path / "home")
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_hammer, args=(runs_target, home, w, 200)) for w in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [w.exitcode for w in workers] == [0, 0, 0, 0]

    with open_runs() as store:
        for run_id, writers in [("run-0", (0, 2)), ("run-1", (1, 3))]:
            rows = store.node_executions(run_id)
            assert len(rows) == 400
            for w in writers:  # each writer's rows keep the order it wrote them in
                mine = [r["node"] for r in rows if r["node"].startswith(f"w{w}-")]
                assert mine == [f"w{w}-n{i}" for i in range(200)]
        assert len(store.cache_entries()) == 801
        assert store.cache_get("shared")["outputs"] in [_output(f"w{w}") for w in range(4)]  # type: ignore[index]


def test_threads_can_share_one_store(store: RunStore) -> None:
    errors: list[BaseException] = []

    def write(thread: int) -> None:
        try:
            for i in range(100):
                _record(store, "r1", f"t{thread}-{i}")
                store.cache_get("nothing")
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(store.node_executions("r1")) == 800


def test_a_store_opened_before_fork_works_in_the_child(store: RunStore) -> None:
    _start(store, "r1")
    child = multiprocessing.get_context("fork").Process(
        target=_record, args=(store, "r1", "from-child")
    )
    child.start()
    child.join(timeout=60)
    assert child.exitcode == 0
    _record(store, "r1", "from-parent")
    assert [r["node"] for r in store.node_executions("r1")] == ["from-child", "from-parent"]


def test_a_store_pickles_as_its_path(store: RunStore) -> None:
    _start(store, "r1")
    copy = pickle.loads(pickle.dumps(store))
    assert copy.get_run("r1")["run_id"] == "r1"  # type: ignore[index]
    copy.close()


def test_a_closed_store_says_so(open_runs: Callable[[], RunStore]) -> None:
    store = open_runs()
    store.close()
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.list_runs()


def test_a_file_that_is_not_a_run_store_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "runs.sqlite"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="cannot be used"):
        RunStore(path)


def test_a_store_from_a_newer_kernelflow_is_refused(
    runs_target: str, open_runs: Callable[[], RunStore], raw_sql: Raw
) -> None:
    open_runs().close()
    if runs_target.startswith("postgresql://"):
        raw_sql("UPDATE kernelflow_schema SET version = 99")
    else:
        raw_sql("PRAGMA user_version = 99")
    with pytest.raises(StoreError, match="upgrade kernelflow"):
        open_runs()


def test_two_schemas_of_one_postgres_database_keep_separate_histories(
    postgres_url: str, tmp_path: Path
) -> None:
    """``?options=-csearch_path=...`` (README): one database, a history per schema."""
    import psycopg

    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA team_a")
        conn.execute("CREATE SCHEMA team_b")
    for team in ("team_a", "team_b"):
        with RunStore(f"{postgres_url}?options=-csearch_path%3D{team}", home=tmp_path) as store:
            _start(store, f"run-of-{team}")
            store.cache_put("k", task=team, outputs={}, manifest={}, duration=1.0)
    with RunStore(f"{postgres_url}?options=-csearch_path%3Dteam_a", home=tmp_path) as store:
        assert [run["run_id"] for run in store.list_runs()] == ["run-of-team_a"]
        assert store.cache_get("k")["task"] == "team_a"  # type: ignore[index]


# The tables of schema version 2 as kernelflow wrote them (version 1 had the same,
# but for the cache's hits columns and the partial index on hits).
_V2_RECORDS = """
CREATE TABLE runs (
    run_id TEXT PRIMARY KEY, workflow TEXT NOT NULL, version TEXT NOT NULL,
    status TEXT NOT NULL, started TEXT NOT NULL, started_ts REAL NOT NULL,
    finished TEXT, finished_ts REAL, params TEXT NOT NULL, environment TEXT NOT NULL,
    outputs TEXT, error TEXT, pid INTEGER, host TEXT, boot_id TEXT, resumed_from TEXT);
CREATE INDEX runs_by_workflow ON runs (workflow, started_ts);
CREATE INDEX runs_by_start ON runs (started_ts);
CREATE TABLE node_executions (
    id INTEGER PRIMARY KEY, run_id TEXT NOT NULL, node TEXT NOT NULL,
    task TEXT NOT NULL, attempt INTEGER NOT NULL, status TEXT NOT NULL,
    cache_hit INTEGER NOT NULL, cache_key TEXT, code_hash TEXT NOT NULL,
    inputs TEXT NOT NULL, outputs TEXT NOT NULL, started TEXT NOT NULL,
    started_ts REAL NOT NULL, duration REAL NOT NULL, error TEXT);
CREATE INDEX node_executions_by_run ON node_executions (run_id)
"""
_V2_CACHE = """
CREATE TABLE cache (
    key TEXT PRIMARY KEY, task TEXT NOT NULL, outputs TEXT NOT NULL, manifest TEXT NOT NULL,
    duration REAL, created TEXT NOT NULL, created_ts REAL NOT NULL);
CREATE INDEX cache_by_task ON cache (task);
CREATE INDEX node_executions_hits ON node_executions (cache_key) WHERE cache_hit = 1
"""


def _old_store(path: Path, version: int, script: str) -> None:
    with sqlite3.connect(path) as raw:
        for statement in (_V2_RECORDS + ";" + script).split(";"):
            raw.execute(statement)
        raw.execute(f"PRAGMA user_version = {version}")


def test_a_version_1_store_is_migrated_and_keeps_its_cache(tmp_path: Path) -> None:
    path = tmp_path / "runs.sqlite"
    _old_store(  # the cache table as kernelflow 0.1 wrote it
        path,
        1,
        "CREATE TABLE cache (key TEXT PRIMARY KEY, task TEXT NOT NULL, outputs TEXT NOT NULL,"
        " manifest TEXT NOT NULL, duration REAL, created TEXT NOT NULL,"
        " created_ts REAL NOT NULL, hits INTEGER NOT NULL DEFAULT 0, last_used TEXT,"
        " last_used_ts REAL);"
        "INSERT INTO cache VALUES ('old', 't', '{}', '{}', 1.0, '2026-01-01', 0.0, 7, NULL,"
        " NULL)",
    )

    with RunStore(path) as store:
        store.cache_put("new", task="t", outputs={}, manifest={}, duration=1.0)
        _start(store, "r1")
        _record(store, "r1", "a", status="cached", cache_hit=True, cache_key="new")
        assert store.cache_get("old") is not None
        assert store.cache_get("new")["hits"] == 1  # type: ignore[index]
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_a_version_2_store_keeps_its_hits_readable_and_records_new_ones_compactly(
    tmp_path: Path,
) -> None:
    path = tmp_path / "runs.sqlite"
    outputs = _output("model")
    _old_store(path, 2, _V2_CACHE)
    with sqlite3.connect(path) as raw:  # a run that filled the entry, one that hit it
        raw.execute(
            "INSERT INTO cache VALUES ('k', 'train', ?, ?, 2.0, '2026-01-01T00:00:00.000+00:00',"
            " 1767225600.0)",
            (json.dumps(outputs), json.dumps({"code_hash": "code-train"})),
        )
        for run_id, status, hit in (("r1", "succeeded", 0), ("r2", "cached", 1)):
            raw.execute(
                "INSERT INTO runs (run_id, workflow, version, status, started, started_ts,"
                " params, environment) VALUES (?, 'wf', 'v1', 'succeeded', 'then', 1.0, '{}',"
                " '{}')",
                (run_id,),
            )
            raw.execute(
                f"INSERT INTO node_executions ({NODE_COLUMNS}) VALUES (?, 'train', 'train', 1,"
                " ?, ?, 'k', 'code-train', '{}', ?, '2026-01-01T00:00:00.000+00:00', 1.0, 0.0,"
                " NULL)",
                (run_id, status, hit, json.dumps(outputs)),
            )

    with RunStore(path) as store:
        assert store.cache_get("k")["hits"] == 1  # type: ignore[index]
        assert store.finished_nodes("r2")["train"]["outputs"] == outputs
        _start(store, "r3")
        hit = store.cache_lookup("k")
        assert hit is not None
        store.record_hit(
            run_id="r3", node="train", task="train", cache_key="k", code_hash="code-train",
            inputs={}, outputs=hit.outputs_json, started=time.time(),
        )  # fmt: skip
        assert store.cache_get("k")["hits"] == 2  # type: ignore[index]
        [record] = store.node_executions("r3")
        assert (record["node"], record["status"], record["outputs"]) == ("train", "cached", outputs)
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert raw.execute("SELECT COUNT(*) FROM cache_hits").fetchone()[0] == 1
        assert raw.execute("SELECT COUNT(*) FROM node_executions").fetchone()[0] == 2


def test_reopening_keeps_the_history(open_runs: Callable[[], RunStore]) -> None:
    with open_runs() as first:
        _chain(first)
        first.cache_put("k", task="t", outputs={}, manifest={}, duration=1.0)
    with open_runs() as second:
        assert second.get_run("r1") is not None
        assert len(second.node_executions("r1")) == 3
        assert second.cache_get("k") is not None


def test_deferred_records_survive_a_killed_process(
    runs_target: str, open_runs: Callable[[], RunStore], tmp_path: Path
) -> None:
    """Batched records are journaled; a later store replays a dead process's journal."""
    import subprocess
    import sys
    import textwrap

    home = tmp_path / "home"
    code = textwrap.dedent(f"""
        import os
        from kernelflow.store.runs import RunStore
        store = RunStore({runs_target!r}, home={str(home)!r})
        store.start_run(run_id="r1", workflow="wf", version="v", params={{}}, environment={{}})
        for n in range(3):
            store.record_node(run_id="r1", node=f"n{{n}}", task="t", attempt=1,
                              status="succeeded", cache_hit=False, cache_key=None,
                              code_hash="h", inputs={{}}, outputs={{}}, started=0.0,
                              duration=0.001, defer=True)
        store.sync()  # what the engine does before running user code
        os._exit(9)  # killed before any flush
    """)
    assert subprocess.run([sys.executable, "-c", code]).returncode == 9
    assert list(home.glob("journal*/*")) != []
    store = open_runs()
    assert [row["node"] for row in store.node_executions("r1")] == ["n0", "n1", "n2"]
    assert list(home.glob("journal*/*")) == []


def _in_a_process(db: str, home: Path, body: str) -> int:
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(f"""
        import os
        from kernelflow.store.runs import RunStore
        store = RunStore({db!r}, home={str(home)!r})
        def node(name, defer=True):
            store.record_node(run_id="r1", node=name, task="t", attempt=1,
                              status="succeeded", cache_hit=False, cache_key=None,
                              code_hash="h", inputs={{}}, outputs={{}}, started=0.0,
                              duration=0.001, defer=defer)
    """) + textwrap.dedent(body)
    return subprocess.run([sys.executable, "-c", code]).returncode


def test_a_deferred_run_start_and_end_are_committed_at_exit(
    runs_target: str, open_runs: Callable[[], RunStore], tmp_path: Path
) -> None:
    body = """
        store.start_run(run_id="r1", workflow="wf", version="v", params={}, environment={},
                        defer=True)
        node("n0")
        store.finish_run("r1", status="succeeded", defer=True)
    """  # and the process ends normally, well before the background flush
    assert _in_a_process(runs_target, tmp_path / "home", body) == 0
    store = open_runs()
    assert store.get_run("r1")["status"] == "succeeded"  # type: ignore[index]
    assert [row["node"] for row in store.node_executions("r1")] == ["n0"]
    assert list((tmp_path / "home").glob("journal*/*")) == []


def test_a_replay_never_repeats_what_a_batch_committed(
    runs_target: str, open_runs: Callable[[], RunStore], tmp_path: Path
) -> None:
    """Records journaled while a batch was being committed stay in the journal (and are
    replayed once); the committed ones are dropped from it."""
    body = """
        store.start_run(run_id="r1", workflow="wf", version="v", params={}, environment={})
        node("n0")
        mark = store._journal.mark()
        with store._pending:
            batch, store._deferred = store._deferred, []
        node("n1")  # deferred while the batch is being written
        store._write_batch(batch)
        store._journal.drop_until(mark)
        store.sync()
        os._exit(9)  # n1 is only in the journal
    """
    assert _in_a_process(runs_target, tmp_path / "home", body) == 9
    store = open_runs()
    assert [row["node"] for row in store.node_executions("r1")] == ["n0", "n1"]
