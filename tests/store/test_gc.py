"""gc and cache clear on real stores: what goes, what stays, and that what stays still works.

Every test runs twice: run history in SQLite, then on a PostgreSQL server.

Files are aged by an hour before gc runs, as if the runs were a while ago: gc keeps
whatever was written in the last seconds (a run may be using it), and these runs
were just made.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import kernelflow
from kernelflow import api, current_context, task, workflow
from kernelflow.store.artifacts import ArtifactRef
from kernelflow.store.home import open_store
from kernelflow.types.file import FlyteFile

FAIL = "KERNELFLOW_TEST_GC_FAIL"
pytestmark = pytest.mark.usefixtures("runs_env")


@task(cache=True)
def make(n: int) -> bytes:
    return bytes([n]) * 8192  # larger than an inline ref: a file of its own


@task
def measure(data: bytes, n: int) -> bytes:
    """Saves a checkpoint (a file) naming the run that saved it, then fails if told to."""
    context = current_context()
    state = context.checkpoint.restore()
    if state is None:
        state = f"saved by {context.run_id};".encode() * 200
        context.checkpoint.save(state)
    if os.environ.get(FAIL):
        raise RuntimeError("measure fails this time")
    return state + data[:1] * 5000


@workflow
def flow(n: int = 1) -> bytes:
    return measure(data=make(n=n), n=n)


def _runs(*ns: int) -> list[str]:
    return [kernelflow.run(flow, {"n": n}).run_id for n in ns]


def _age(home: Path, seconds: float = 3600.0) -> None:
    """Make every artifact and checkpoint look ``seconds`` old."""
    then = time.time() - seconds
    for part in ("artifacts", "checkpoints"):
        for path in (home / part).rglob("*"):
            os.utime(path, (then, then))


def _files(home: Path, part: str) -> dict[str, int]:
    return {str(p.relative_to(home)): p.stat().st_size for p in (home / part).rglob("*.*")}


def _run_ids() -> list[str]:
    return list(kernelflow.runs()["run_id"])


def _load_outputs(run_id: str) -> dict[str, object]:
    """Every output of every finished node of the run, loaded (and verified) from the store."""
    store = open_store()
    values = {}
    for node, record in store.runs.finished_nodes(run_id).items():
        for name, meta in record["outputs"].items():
            values[f"{node}.{name}"] = store.artifacts.get(ArtifactRef.from_dict(meta["artifact"]))
    return values


def test_keep_runs_removes_older_runs_their_checkpoints_and_what_only_they_used(
    store_home: Path,
) -> None:
    ids = _runs(1, 2, 3, 4, 5)
    _age(store_home)
    before = _files(store_home, "artifacts")

    report = api.gc(keep_runs=2)

    assert _run_ids() == [ids[4], ids[3]]
    assert (report.runs, report.runs_kept, report.running, report.checkpoints) == (3, 2, 0, 3)
    assert report.node_records == 6  # make and measure, in each removed run
    assert sorted(p.name for p in (store_home / "checkpoints").iterdir()) == sorted(ids[3:])
    # The outputs of measure and its checkpoint state in the three runs that went;
    # make's outputs stay, as their cache entries refer to them.
    gone = set(before) - set(_files(store_home, "artifacts"))
    assert len(gone) == report.artifacts == 6
    assert report.artifact_bytes == sum(before[path] for path in gone)
    assert report.after.total < report.before.total
    for run_id, n in ((ids[3], 4), (ids[4], 5)):
        assert _load_outputs(run_id)["make.o0"] == bytes([n]) * 8192
        assert kernelflow.lineage(run_id, "measure")["inputs"]["data"]["lineage"]["task"] == "make"
    again = [kernelflow.run(flow, {"n": n}) for n in (1, 2, 3, 4, 5)]
    assert [result.tasks["make"].status for result in again] == ["cached"] * 5


def test_a_kept_run_keeps_the_runs_it_resumed_and_their_checkpoints(
    store_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    others = _runs(1, 2)
    monkeypatch.setenv(FAIL, "1")
    first = kernelflow.run(flow, {"n": 3})
    second = kernelflow.run(flow, resume=first.run_id)
    assert (first.status, second.status) == ("failed", "failed")
    _age(store_home)

    report = api.gc(keep_runs=1)  # the newest run is the second; it resumed the first

    assert (report.runs, report.runs_kept) == (2, 2)
    assert set(_run_ids()) == {first.run_id, second.run_id}
    assert not set(others) & {p.name for p in (store_home / "checkpoints").iterdir()}
    monkeypatch.delenv(FAIL)
    third = kernelflow.run(flow, resume=second.run_id)
    assert third.status == "succeeded"
    assert third.tasks["make"].status == "cached"
    # measure restarted from the checkpoint the first run saved, under the chain's root
    assert third.outputs["o0"].startswith(f"saved by {first.run_id};".encode())


BLOCKING = """
import os
import time
from pathlib import Path

from kernelflow import current_context, task, workflow


@task
def wait(n: int) -> bytes:
    context = current_context()
    context.checkpoint.save(b"saved before gc;" * 400)
    Path(os.environ["GC_STARTED"]).write_text("started")
    release, deadline = Path(os.environ["GC_RELEASE"]), time.time() + 60
    while not release.exists() and time.time() < deadline:
        time.sleep(0.02)
    return context.checkpoint.restore()


@workflow
def blocked(n: int = 0) -> bytes:
    return wait(n=n)
"""


def _wait_for(condition: object, what: str, timeout: float = 30.0) -> None:
    deadline = time.time() + timeout
    while not condition():  # type: ignore[operator]
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_a_running_run_is_never_removed(store_home: Path, tmp_path: Path) -> None:
    finished = _runs(1, 2)
    (tmp_path / "blocking.py").write_text(BLOCKING)
    started, release = tmp_path / "started", tmp_path / "release"
    env = dict(os.environ, GC_STARTED=str(started), GC_RELEASE=str(release))
    process = subprocess.Popen(
        [sys.executable, "-m", "kernelflow", "run", "blocking.py:blocked", "--quiet"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(started.exists, "the task to start")
        _wait_for(lambda: len(_run_ids()) == 3, "the run to be recorded")
        [running] = set(_run_ids()) - set(finished)
        _age(store_home)

        report = api.gc(keep_runs=0)

        assert (report.runs, report.running, report.runs_kept) == (2, 1, 1)
        assert _run_ids() == [running]
        assert [p.name for p in (store_home / "checkpoints").iterdir()] == [running]
        release.write_text("go")
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 0, err
    [run] = kernelflow.runs().to_dict("records")
    assert (run["run_id"], run["status"]) == (running, "succeeded")
    assert _load_outputs(running)["wait.o0"] == b"saved before gc;" * 400


def test_a_dry_run_removes_nothing_and_counts_what_a_real_run_removes(store_home: Path) -> None:
    ids = _runs(1, 2, 3)
    _age(store_home)
    files = {part: _files(store_home, part) for part in ("artifacts", "checkpoints")}
    records = {run_id: open_store().runs.node_executions(run_id) for run_id in ids}

    dry = api.gc(keep_runs=1, dry_run=True)

    assert (dry.dry_run, dry.runs, dry.node_records, dry.checkpoints, dry.artifacts) == (
        True,
        2,
        4,
        2,
        4,
    )
    assert "nothing was removed" in dry.summary()
    assert {part: _files(store_home, part) for part in files} == files
    assert {run_id: open_store().runs.node_executions(run_id) for run_id in ids} == records
    real = api.gc(keep_runs=1)
    counted = ("runs", "node_records", "checkpoints", "checkpoint_bytes", "artifacts")
    assert [getattr(real, name) for name in counted] == [getattr(dry, name) for name in counted]
    assert real.artifact_bytes == dry.artifact_bytes
    assert dry.freed == dry.artifact_bytes + dry.checkpoint_bytes > 0


def _backdate_start(run_id: str, days: float) -> None:
    open_store().runs.flush()  # the run's rows are written in batches
    sql = "UPDATE runs SET started_ts = started_ts - ? WHERE run_id = ?"
    url = os.environ.get("KERNELFLOW_RUNS")
    if url is None:
        with sqlite3.connect(open_store().runs.path or "") as raw:
            raw.execute(sql, (days * 86400, run_id))
        return
    import psycopg

    with psycopg.connect(url, autocommit=True) as raw:
        raw.execute(sql.replace("?", "%s"), (days * 86400, run_id))


def test_older_than_removes_only_runs_no_option_keeps(store_home: Path) -> None:
    oldest, old, new = _runs(1, 2, 3)
    _backdate_start(oldest, 3.0)
    _backdate_start(old, 2.5)

    kept_by_count = api.gc(keep_runs=2, older_than_days=2)  # old is among the newest two
    assert (kept_by_count.runs, _run_ids()) == (1, [new, old])
    by_age = api.gc(older_than_days=2)
    assert (by_age.runs, _run_ids()) == (1, [new])
    assert api.gc(older_than_days=2).runs == 0


def test_gc_without_options_keeps_every_run_and_removes_orphans(store_home: Path) -> None:
    ids = _runs(1, 2)
    orphan = store_home / "checkpoints" / "a-run-this-store-never-recorded"
    orphan.mkdir()
    (orphan / "node.json").write_text("{}")
    stray = store_home / "artifacts" / "ab" / f".ab{'0' * 30}.pkl.123-beef.tmp"
    stray.parent.mkdir(exist_ok=True)
    stray.write_bytes(b"left by a writer that was killed")
    _age(store_home)

    report = api.gc()

    assert (report.runs, report.runs_kept, report.checkpoints, report.artifacts) == (0, 2, 1, 1)
    assert sorted(_run_ids()) == sorted(ids) and not orphan.exists() and not stray.exists()


def test_gc_refuses_a_negative_count(store_home: Path) -> None:
    with pytest.raises(kernelflow.errors.KernelflowError, match="must not be negative"):
        api.gc(keep_runs=-1)


@task(cache=True)
def block(i: int) -> bytes:
    return i.to_bytes(2, "big") * 4096  # 8 KB: a file


@workflow
def blocks(count: int = 60) -> int:
    for i in range(60):
        block(i=i)
    return count


def test_cache_clear_removes_the_files_only_entries_kept_and_shrinks_the_run_store(
    store_home: Path,
) -> None:
    kernelflow.run(blocks).raise_for_status()
    api.gc(keep_runs=0)  # the run goes; its artifacts stay, for the cache entries
    _age(store_home)
    artifacts = _files(store_home, "artifacts")
    assert len(artifacts) == 60
    records = open_store().runs.file_size()

    report = api.cache_clear("block")

    assert (report.cache_entries, report.artifacts) == (60, 60)
    assert _files(store_home, "artifacts") == {}
    assert report.artifact_bytes == sum(artifacts.values())
    assert open_store().runs.file_size() < records - 40_000  # 60 entries, ~800 bytes each
    assert "removed 60 cache entries" in report.summary()
    assert api.cache_entries() == []


def test_cache_clear_keeps_what_kept_runs_used_and_their_records_whole(store_home: Path) -> None:
    filled, hit = _runs(7, 7)
    before = {run_id: open_store().runs.node_executions(run_id) for run_id in (filled, hit)}
    _age(store_home)

    report = api.cache_clear()

    assert (report.cache_entries, report.artifacts) == (1, 0)  # the runs refer to all
    after = {run_id: open_store().runs.node_executions(run_id) for run_id in (filled, hit)}
    assert after == before
    assert before[hit][0]["status"] == "cached"
    assert _load_outputs(hit)["make.o0"] == bytes([7]) * 8192
    assert kernelflow.lineage(hit, "make")["outputs"] == before[hit][0]["outputs"]
    assert kernelflow.run(flow, {"n": 7}).tasks["make"].status == "succeeded"  # a miss now


@task
def write_report(text: str) -> FlyteFile:
    """Returns a file the task wrote: the store keeps a copy under artifacts/files/."""
    path = Path(current_context().working_directory, "report.txt")
    path.write_text(text)
    return FlyteFile(str(path))


@workflow
def report_flow(text: str) -> FlyteFile:
    return write_report(text=text)


def _copies(home: Path) -> list[str]:
    return sorted(str(p.relative_to(home)) for p in (home / "artifacts" / "files").glob("*/*"))


def test_gc_removes_the_stored_file_copies_only_removed_runs_refer_to(store_home: Path) -> None:
    first = kernelflow.run(report_flow, {"text": "first version\n" * 400})
    second = kernelflow.run(report_flow, {"text": "second\n"})  # small: its record is inline
    _age(store_home)
    assert len(_copies(store_home)) == 2
    kept = _load_outputs(second.run_id)["write_report.o0"].path
    removed = _load_outputs(first.run_id)["write_report.o0"].path

    dry = api.gc(keep_runs=1, dry_run=True)
    assert (dry.file_copies, dry.file_copy_bytes) == (1, len("first version\n" * 400))
    assert "1 stored file copy" in dry.summary() and len(_copies(store_home)) == 2

    real = api.gc(keep_runs=1)
    assert real.file_copies == 1
    assert _copies(store_home) == [str(Path(kept).relative_to(store_home))]
    assert not Path(removed).exists()
    stored = _load_outputs(second.run_id)["write_report.o0"]
    assert Path(stored.download()).read_text() == "second\n"  # verified against its checksum


def test_gc_without_options_removes_a_copy_no_record_names(store_home: Path) -> None:
    kernelflow.run(report_flow, {"text": "kept"})
    stray = store_home / "artifacts" / "files" / ("ab" * 16) / "left.txt"
    stray.parent.mkdir(parents=True)
    stray.write_text("a copy whose run was removed by hand")
    _age(store_home)

    report = api.gc()

    assert report.file_copies == 1 and not stray.parent.exists()
    assert len(_copies(store_home)) == 1
