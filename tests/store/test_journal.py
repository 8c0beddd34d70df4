"""Replaying the journals of dead processes: on real processes, a real SQLite file and a
real PostgreSQL server (every test runs on both).

The replayer is killed (SIGKILL, through the store's test-only crash points) or
interrupted (Ctrl-C while it waits on a database another process holds) at every
step of a replay; the next process must still recover every record, once, and
``--resume last`` must find the run.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from kernelflow.errors import KernelflowWarning
from kernelflow.store.runs import RunStore

pytestmark = pytest.mark.usefixtures("runs_env")

FLOW = """
import os
from pathlib import Path

from kernelflow import task, workflow


def log(message):
    with Path(os.environ["FLOW_LOG"]).open("a") as handle:
        handle.write(message + "\\n")


@task
def prepare(n: int) -> int:
    log("prepare")
    return n + 1


@task
def train(x: int) -> int:
    log("train")
    if os.environ.get("FLOW_CRASH"):
        os._exit(17)
    return x * 10


@workflow
def wf(n: int = 1) -> int:
    return train(x=prepare(n=n))
"""


def _cli(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kernelflow", *args],
        cwd=tmp_path,
        env=dict(os.environ, FLOW_LOG=str(tmp_path / "log.txt"), **env),
        capture_output=True,
        text=True,
        timeout=120,
    )


@contextmanager
def _database_held(db: str) -> Iterator[None]:
    """Another process's write transaction: nothing can be committed meanwhile."""
    if db.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(db) as holder:  # a transaction, rolled back at the end
            holder.execute("LOCK TABLE runs, node_executions IN EXCLUSIVE MODE")
            yield
            holder.rollback()
        return
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def _rows(db: str, sql: str, *params: object) -> list[tuple[object, ...]]:
    if db.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(db, autocommit=True) as conn:
            return conn.execute(sql.replace("?", "%s"), params).fetchall()
    with sqlite3.connect(db) as conn:
        return conn.execute(sql, params).fetchall()


def _journal(home: Path) -> Path:
    """The journal directory of the run database under test."""
    (directory,) = home.glob("journal*")
    return directory


def _crashed_run(tmp_path: Path, home: Path, **env: str) -> str:
    """A run that died with its start and a finished task only in its journal."""
    (tmp_path / "flow.py").write_text(FLOW)
    db = os.environ.get("KERNELFLOW_RUNS") or str(home / "runs.sqlite")
    RunStore(db, home=home).close()
    with _database_held(db):  # so the background flush cannot commit the records
        crashed = _cli(tmp_path, "run", "flow.py:wf", FLOW_CRASH="1", **env)
    assert crashed.returncode == 17, crashed.stderr
    assert _log(tmp_path) == ["prepare", "train"]
    journals = list(_journal(home).iterdir())
    assert [path.suffix for path in journals] == [".jsonl"]
    assert '"prepare"' in journals[0].read_text()
    return db


def _log(tmp_path: Path) -> list[str]:
    log = tmp_path / "log.txt"
    lines = log.read_text().splitlines()
    log.unlink()
    return lines


def _recovered(tmp_path: Path, home: Path, db: str) -> None:
    """The next process finds the run and every record of it, once; no journal is left."""
    resumed = _cli(tmp_path, "run", "flow.py:wf", "--resume", "last")
    assert resumed.returncode == 0, resumed.stderr
    assert "o0 = 20" in resumed.stdout
    assert _log(tmp_path) == ["train"]  # prepare's record was recovered: it did not rerun
    assert list(_journal(home).iterdir()) == []
    runs = _rows(db, "SELECT status, resumed_from FROM runs ORDER BY started_ts")
    [(died,)] = _rows(db, "SELECT run_id FROM runs WHERE resumed_from IS NULL")
    nodes = _rows(db, "SELECT node, status FROM node_executions WHERE run_id = ?", died)
    assert [status for status, _ in runs] == ["died", "succeeded"]
    assert runs[1][1] == died
    assert nodes == [("prepare", "succeeded")]


@pytest.mark.parametrize("step", ["before-rename", "after-rename", "mid-insert", "before-unlink"])
def test_a_replay_killed_at_any_step_is_finished_by_the_next_process(
    tmp_path: Path, store_home: Path, step: str
) -> None:
    db = _crashed_run(tmp_path, store_home)
    replayer = _cli(tmp_path, "runs", KERNELFLOW_TEST_CRASH_REPLAY=step)
    assert replayer.returncode == -signal.SIGKILL, replayer.stderr
    _recovered(tmp_path, store_home, db)


def test_a_replay_interrupted_while_the_database_is_busy_is_done_again(
    tmp_path: Path, store_home: Path
) -> None:
    db = _crashed_run(tmp_path, store_home)
    journal = _journal(store_home)
    with _database_held(db):
        replayer = subprocess.Popen(
            [sys.executable, "-m", "kernelflow", "runs"],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 60
        while not any(".replaying-" in path.name for path in journal.iterdir()):
            assert replayer.poll() is None and time.monotonic() < deadline, "never claimed"
            time.sleep(0.01)
        replayer.send_signal(signal.SIGINT)  # Ctrl-C while it waits for the database
    _, stderr = replayer.communicate(timeout=60)
    assert replayer.returncode == 130, stderr
    assert "interrupted" in stderr
    _recovered(tmp_path, store_home, db)


def test_replaying_a_journal_again_duplicates_nothing(tmp_path: Path, store_home: Path) -> None:
    """A replay killed after its commit leaves its claim; doing it again is harmless."""
    db = _crashed_run(tmp_path, store_home)
    (journal,) = _journal(store_home).iterdir()
    text = journal.read_text()
    RunStore(db, home=store_home).close()  # replays it
    assert not journal.exists()
    journal.write_text(text)  # as if the replay had been killed before the unlink
    with RunStore(db, home=store_home) as store:
        (run,) = store.list_runs()
        assert run["status"] == "died"
        assert [row["node"] for row in store.node_executions(str(run["run_id"]))] == ["prepare"]
    assert list(_journal(store_home).iterdir()) == []


def test_a_malformed_line_is_skipped_with_a_warning_and_the_rest_replayed(
    tmp_path: Path, store_home: Path
) -> None:
    db = _crashed_run(tmp_path, store_home)
    (journal,) = _journal(store_home).iterdir()
    run, node = journal.read_text().splitlines()
    node_kind, node_fields = json.loads(node)
    no_task = [*node_fields[:2], None, *node_fields[3:]]  # NOT NULL in the table
    bad_types = [*node_fields[:3], "one", *node_fields[4:11], "yesterday", *node_fields[12:]]
    journal.write_text(
        "\n".join(
            [
                run,
                json.dumps([node_kind, no_task]),
                json.dumps([node_kind, bad_types]),
                "not json at all",
                json.dumps([node_kind, node_fields[:3]]),
                json.dumps(["mystery", []]),
                node,
                '["node", ["cut short by the crash',  # the last line: expected, not reported
            ]
        )
    )
    with pytest.warns(KernelflowWarning) as caught:
        store = RunStore(db, home=store_home)
    messages = [str(warning.message) for warning in caught]
    assert len(messages) == 5, messages
    for number, message in zip(range(2, 7), messages, strict=True):
        assert str(journal) in message and f"line {number} " in message
    assert "task = None, which is not text" in messages[0]
    assert "attempt = 'one', which is not int" in messages[1]
    with store:
        (recorded,) = store.list_runs()
        assert recorded["status"] == "died"
        rows = store.node_executions(str(recorded["run_id"]))
    assert [(row["node"], row["attempt"]) for row in rows] == [("prepare", 1)]
    assert list(_journal(store_home).iterdir()) == []


def test_a_replayed_run_keeps_its_domain_and_a_journal_from_before_domains_still_replays(
    tmp_path: Path, store_home: Path
) -> None:
    db = _crashed_run(tmp_path, store_home, KERNELFLOW_DOMAIN="staging")
    (journal,) = _journal(store_home).iterdir()
    text = journal.read_text()
    with RunStore(db, home=store_home) as store:
        [run] = store.list_runs()
        assert run["domain"] == "staging"
        store.forget_runs([str(run["run_id"])])

    # The same journal as kernelflow wrote it before schema version 4: no scope.
    run_line, node_line = text.splitlines()
    kind, fields = json.loads(run_line)
    assert kind == "scoped_run" and fields[-2:] == ["default", "staging"]
    old_put = ["k", "t", "{}", "{}", 1.0, "2026-01-01T00:00:00.000+00:00", 1767225600.0]
    lines = [["run", fields[:-2]], json.loads(node_line), ["cache_put", old_put]]
    journal.write_text("".join(json.dumps(line) + "\n" for line in lines))
    with RunStore(db, home=store_home) as store:
        [run] = store.list_runs()
        assert (run["project"], run["domain"]) == ("default", "development")
        [entry] = store.cache_entries()
        assert (entry["key"], entry["domain"]) == ("k", "development")
