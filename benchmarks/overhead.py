"""Figure 1: what the engine costs per task, on a chain of trivial int tasks.

No cache, defaults otherwise: every node is scheduled, its output hashed and
persisted, and its attempt recorded in the run store. The same functions called
as plain Python give the floor; Hamilton and flytekit local execution give what
users of those tools pay for the same chain.
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
from benchmarks.tasks import chain_workflow, inc, plain_chain

TARGET_US = 30.0  # issue 13: with records and persisted outputs
PLAIN_LOOPS = 100  # one plain chain takes microseconds: time many, report one


def run(config: Config) -> Section:
    import kernelflow

    n = 20 if config.quick else 200
    chain = chain_workflow(inc, n)

    def ours(round_: int) -> float:
        x = round_ * 1_000_000  # new values each round: outputs are really written
        seconds = timed(lambda: _check(kernelflow.run(chain, {"x": x}), x + n))
        return seconds

    def plain(round_: int) -> float:
        fn = inc.fn
        return timed(lambda: [plain_chain(fn, n, round_) for _ in range(PLAIN_LOOPS)]) / (
            PLAIN_LOOPS
        )

    cases: dict[str, Any] = {"kernelflow": ours, "plain Python": plain}
    for name, op in (("Hamilton", "hamilton_chain"), ("flytekit (local)", "flyte_chain")):
        measure = baseline_call(config, op, n=n, cache=False)
        if measure is not None:
            cases[name] = measure
    with isolated_home(config, "overhead"):
        timings = interleaved(cases, config.reps(), warmup=config.warmups)
        per_task = timings.medians(scale=1e6 / n)
        mine = per_task["kernelflow"]
        ok = mine is not None and mine <= TARGET_US
        profile = []
        if config.profile_if_missed(ok):
            profile = profile_top(lambda: kernelflow.run(chain, {"x": -1}))
    rows = rows_against("kernelflow", per_task, "µs/task", timings)
    for name in ("Hamilton", "flytekit (local)"):
        if name not in cases:
            rows.append(absent_row(name, "µs/task", config))
    return Section(
        "overhead",
        f"Per-task engine overhead ({n}-task chain of `inc`, no cache)",
        f"<= {TARGET_US:g} µs per task",
        rows,
        verdict(ok),
        f"{mine:.0f} µs/task" if mine is not None else "absent",
        notes=[
            "Each kernelflow run persists every output (pickle, HMAC-signed) and records "
            "every node in SQLite; the input changes each round so outputs are new files.",
            f"plain Python: the task's own function called {n} times in a loop.",
        ],
        profile=profile,
    )


def _check(result: Any, expected: int) -> None:
    result.raise_for_status()
    if result.outputs["o0"] != expected:
        raise AssertionError(f"chain returned {result.outputs['o0']}, expected {expected}")
