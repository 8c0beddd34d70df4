"""What a run adds to the run store: an all-cached rerun records each node in a few bytes."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import kernelflow
from kernelflow import task, workflow
from kernelflow.store.home import open_store

NODES = 2_000
BYTES_PER_CACHED_NODE = 100  # a full record of a hit took ~680 bytes; a compact one ~55


@task(cache=True)
def bump(x: int) -> int:
    return x + 1


@workflow
def many(x: int = 0) -> int:
    for i in range(NODES):
        bump(x=i)
    return x


def _records_size() -> int:
    """runs.sqlite once its write-ahead log is folded in."""
    runs = open_store().runs
    runs.flush()
    with sqlite3.connect(runs.path) as raw:
        raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return Path(runs.path).stat().st_size


def test_an_all_cached_rerun_adds_a_few_bytes_a_node_and_reads_back_whole() -> None:
    first = kernelflow.run(many)
    second = kernelflow.run(many)  # pages the first rerun freed or split are reused after
    before = _records_size()
    third = kernelflow.run(many)
    added = _records_size() - before

    assert {t.status for t in third.tasks.values()} == {"cached"}
    assert added < NODES * BYTES_PER_CACHED_NODE, f"{added / NODES:.0f} bytes a node"
    runs = open_store().runs
    filled = {row["node"]: row for row in runs.node_executions(first.run_id)}
    for run in (second, third):
        hits = runs.node_executions(run.run_id)
        assert len(hits) == NODES
        for hit in hits:
            made = filled[hit["node"]]
            same = ("task", "cache_key", "code_hash", "inputs", "outputs")
            assert {k: hit[k] for k in same} == {k: made[k] for k in same}
            assert (hit["status"], hit["cache_hit"], hit["run_id"]) == ("cached", True, run.run_id)
    assert {entry["hits"] for entry in runs.cache_entries()} == {2}
    lineage = kernelflow.lineage(third.run_id, "bump-7")
    assert (lineage["status"], lineage["inputs"]["x"]["source"]) == ("cached", {"const": True})
