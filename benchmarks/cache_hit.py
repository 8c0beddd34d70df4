"""Figure 2: a cache hit on small values, per task.

The same chain as figure 1 with ``cache=True``, run once to fill the cache; each
timed run is all hits: hash the inputs, look the key up in SQLite, load and
verify each output, record the node. flytekit's local cache and Hamilton's
cache (``Builder.with_cache``) do the same job for their users.
"""

from __future__ import annotations

from typing import Any

from benchmarks.common import (
    Config,
    Section,
    absent_row,
    baseline_call,
    interleaved,
    isolated_home,
    profile_top,
    rows_against,
    timed,
    verdict,
)
from benchmarks.tasks import cached_inc, chain_workflow

TARGET_US = 100.0


def run(config: Config) -> Section:
    import kernelflow

    n = 20 if config.quick else 200
    chain = chain_workflow(cached_inc, n, name="cached_chain")

    def hits() -> None:
        result = kernelflow.run(chain, {"x": 0})
        result.raise_for_status()
        statuses = {task.status for task in result.tasks.values()}
        if statuses != {"cached"}:
            raise AssertionError(f"expected only cache hits, got {sorted(statuses)}")

    cases: dict[str, Any] = {"kernelflow": lambda _: timed(hits)}
    for name, op in (
        ("Hamilton (with_cache)", "hamilton_chain"),
        ("flytekit (local cache)", "flyte_chain"),
    ):
        measure = baseline_call(config, op, n=n, cache=True)
        if measure is not None:
            cases[name] = measure
    with isolated_home(config, "cache_hit"):
        kernelflow.run(chain, {"x": 0}).raise_for_status()  # fill the cache
        timings = interleaved(cases, config.reps(), warmup=config.warmups)
        per_task = timings.medians(scale=1e6 / n)
        mine = per_task["kernelflow"]
        ok = mine is not None and mine <= TARGET_US
        profile = profile_top(hits) if config.profile_if_missed(ok) else []
    rows = rows_against("kernelflow", per_task, "µs/task", timings)
    for name in ("Hamilton (with_cache)", "flytekit (local cache)"):
        if name not in cases:
            rows.append(absent_row(name, "µs/task", config))
    return Section(
        "cache_hit",
        f"Cache hit, small values ({n}-task chain, all hits)",
        f"<= {TARGET_US:g} µs per task",
        rows,
        verdict(ok),
        f"{mine:.0f} µs/task" if mine is not None else "absent",
        notes=["A hit still records the node in the run store (lineage of cached values)."],
        profile=profile,
    )
