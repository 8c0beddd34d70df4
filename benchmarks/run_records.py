"""Figure: run-record throughput on PostgreSQL against SQLite, for the 200-task chain.

The same chain as the overhead figure runs with its history in the store's SQLite
file, then (``KERNELFLOW_RUNS``) on a PostgreSQL server on 127.0.0.1, started for
the figure from Debian's package (``tests/postgres_server.py``) with its default
durability (fsync and synchronous commit on). The engine defers the records of
quick tasks and commits them in batches, so the chain shows what a user pays; a
second pair of rows commits the same 200 node records one by one (``defer=False``,
what a slow task's record costs) to show what the batching saves. Reported, not
asserted: the issue asks for the figure, not a target.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT, Config, Row, Section, interleaved, isolated_home, timed
from benchmarks.tasks import chain_workflow, inc


def run(config: Config) -> Section:
    n = 20 if config.quick else 200
    with _server() as url, isolated_home(config, "run-records") as home:
        chain = chain_workflow(inc, n, name="records_chain")
        cases = {
            "SQLite, chain": _chain_case(chain, n, None),
            "PostgreSQL, chain": _chain_case(chain, n, url),
            "SQLite, one commit per record": _commit_case(n, str(home / "commits.sqlite"), home),
            "PostgreSQL, one commit per record": _commit_case(n, url, home),
        }
        timings = interleaved(cases, config.reps(), warmup=config.warmups)
    per_record = timings.medians(scale=1e6 / n)
    sqlite_chain = timings.median("SQLite, chain")
    rows = [
        Row(
            case,
            value,
            "µs/record",
            _ratio(timings.median(case), sqlite_chain),
            _note(case, value, timings),
        )
        for case, value in per_record.items()
    ]
    sqlite, postgres = per_record["SQLite, chain"], per_record["PostgreSQL, chain"]
    summary = "absent"
    if sqlite and postgres:
        summary = f"{1e6 / postgres:,.0f} vs {1e6 / sqlite:,.0f} records/s (PostgreSQL vs SQLite)"
    return Section(
        "run_records",
        f"Run-record throughput: PostgreSQL vs SQLite ({n}-task chain of `inc`, no cache)",
        "reported (no target); ratio = the row's time / the SQLite chain's",
        rows,
        "n/a",
        summary,
        notes=[
            "µs/record: the median repetition's time divided by its records (one per "
            "task); the note gives the same as records per second.",
            "chain: kernelflow.run of the chain; each task's output persisted, its record "
            "deferred and committed in batches (journaled locally until then).",
            "one commit per record: RunStore.record_node(defer=False) n times; on "
            "PostgreSQL each is a round trip and a WAL flush on 127.0.0.1.",
            "The chain's batches are committed by a background thread: on PostgreSQL the "
            "server executes the inserts in its own process (on another core), on SQLite "
            "this process does, so the chain need not be slower on the server.",
        ],
    )


def _ratio(seconds: float | None, base: float | None) -> float | None:
    return None if not seconds or not base else seconds / base


def _note(case: str, micros: float | None, timings: Any) -> str:
    error = timings.errors.get(case, "")
    return error or ("" if not micros else f"{1e6 / micros:,.0f} records/s")


def _chain_case(chain: Any, n: int, url: str | None) -> Callable[[int], float]:
    import kernelflow

    def measure(round_: int) -> float:
        x = round_ * 1_000_000  # new values each round: outputs are really written
        with _runs_env(url):
            start = time.perf_counter()
            result = kernelflow.run(chain, {"x": x})
            seconds = time.perf_counter() - start
        result.raise_for_status()
        if result.outputs["o0"] != x + n:
            raise AssertionError(f"chain returned {result.outputs['o0']}")
        return seconds

    return measure


def _commit_case(n: int, target: str, home: Path) -> Callable[[int], float]:
    from kernelflow.store.runs import RunStore

    def measure(round_: int) -> float:
        with RunStore(target, home=home) as store:
            run_id = f"commits-{round_}-{time.time_ns()}"
            store.start_run(run_id=run_id, workflow="w", version="v", params={}, environment={})

            def commits() -> None:
                for i in range(n):
                    store.record_node(
                        run_id=run_id, node=f"n{i}", task="inc", attempt=1,
                        status="succeeded", cache_hit=False, cache_key=None, code_hash="c",
                        inputs={}, outputs={}, started=time.time(), duration=0.0,
                    )  # fmt: skip

            return timed(commits)

    return measure


@contextmanager
def _runs_env(url: str | None) -> Iterator[None]:
    previous = os.environ.pop("KERNELFLOW_RUNS", None)
    if url is not None:
        os.environ["KERNELFLOW_RUNS"] = url
    try:
        yield
    finally:
        os.environ.pop("KERNELFLOW_RUNS", None)
        if previous is not None:
            os.environ["KERNELFLOW_RUNS"] = previous


@contextmanager
def _server() -> Iterator[str]:
    """A PostgreSQL server for the figure, with a database for it; stopped after."""
    if str(ROOT / "tests") not in sys.path:
        sys.path.insert(0, str(ROOT / "tests"))
    import postgres_server

    from kernelflow.store.home import close_stores

    with postgres_server.running(fsync=True) as server:
        url = postgres_server.create_database(server, "bench")
        try:
            yield url
        finally:
            close_stores(url)  # the chain's store, before its server stops
