"""The run store's part of gc: removing runs' records, finding what the rest refers to.

Plain functions on a database, which :class:`~kernelflow.store.runs.RunStore`
runs under its lock; which runs go is decided by :mod:`kernelflow.store.gc`. Run
ids are passed as one JSON array (``json_each``), so a thousand runs are one
statement, not a thousand.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import TYPE_CHECKING, NamedTuple

from kernelflow.store.artifacts import referenced_paths

if TYPE_CHECKING:
    from kernelflow.store._database import Database

_IDS = "SELECT value FROM json_each(?1)"
_NUMBERS = f"SELECT number FROM run_numbers WHERE run_id IN ({_IDS})"  # for cache_hits.run
_HAS_FILE = "instr(outputs, 'artifacts/') > 0"  # outputs that are all inline name no file


class Forgotten(NamedTuple):
    """The runs whose records were (or, on a dry run, would be) removed, and how many
    node records (full or compact) went with them."""

    runs: list[str]
    node_records: int


def forget(db: Database, run_ids: Collection[str], *, dry_run: bool) -> Forgotten:
    """Remove the records of these runs, except one still marked running, in one transaction.

    Retired cache entries (deleted or replaced while hits named them) that no
    remaining hit names go too. A dry run counts the same rows and removes none.
    """
    with db.transaction(write=not dry_run):
        listed = json.dumps(sorted(run_ids))
        sql = f"SELECT run_id FROM runs WHERE run_id IN ({_IDS}) AND status != 'running'"
        gone = [run_id for (run_id,) in db.execute(sql, (listed,)).fetchall()]
        ids = (json.dumps(gone),)
        if dry_run:
            nodes = db.execute(
                f"SELECT (SELECT COUNT(*) FROM node_executions WHERE run_id IN ({_IDS}))"
                f" + (SELECT COUNT(*) FROM cache_hits WHERE run IN ({_NUMBERS}))",
                ids,
            ).fetchone()[0]
            return Forgotten(gone, int(nodes))
        nodes = db.execute(f"DELETE FROM node_executions WHERE run_id IN ({_IDS})", ids).rowcount
        nodes += db.execute(f"DELETE FROM cache_hits WHERE run IN ({_NUMBERS})", ids).rowcount
        db.execute(f"DELETE FROM run_numbers WHERE run_id IN ({_IDS})", ids)
        db.execute(f"DELETE FROM runs WHERE run_id IN ({_IDS})", ids)
        db.execute(
            "DELETE FROM cache_retired WHERE NOT EXISTS"
            " (SELECT 1 FROM cache_hits WHERE entry = cache_retired.num)"
        )
    return Forgotten(gone, nodes)


def referenced(db: Database, without: Collection[str]) -> set[str]:
    """The artifact files named by every record but those of the runs ``without``.

    That is node records and run outputs, every cache entry, and the retired
    entries that the remaining compact hits name. Read in one transaction, so
    that a run finishing meanwhile is seen whole or not at all.
    """
    ids = (json.dumps(sorted(without)),)
    queries = (
        (f"SELECT outputs FROM node_executions WHERE run_id NOT IN ({_IDS}) AND {_HAS_FILE}", ids),
        (f"SELECT outputs FROM runs WHERE run_id NOT IN ({_IDS}) AND {_HAS_FILE}", ids),
        (f"SELECT outputs FROM cache WHERE {_HAS_FILE}", ()),
        (
            "SELECT outputs FROM cache_retired WHERE num IN"
            f" (SELECT entry FROM cache_hits WHERE run NOT IN ({_NUMBERS})) AND {_HAS_FILE}",
            ids,
        ),
    )
    paths: set[str] = set()
    with db.transaction(write=False):
        for sql, params in queries:
            for (text,) in db.execute(sql, params).fetchall():
                paths |= referenced_paths(text)
    return paths
