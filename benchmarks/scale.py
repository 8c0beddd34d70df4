"""Figure 9: building and running big DAGs of no-op tasks.

Chains (each node waits for the one before) and fan-outs (one source, every
other node reads it) of 100, 1,000 and 10,000 nodes. Build is tracing the
``@workflow`` body into a graph; run is ``kernelflow.run`` with defaults (run
records and persisted outputs on, no cache). Per-node figures show whether a
cost grows faster than the graph.
"""

from __future__ import annotations

from typing import Any

from benchmarks.common import (
    Config,
    Row,
    Section,
    interleaved,
    isolated_home,
    profile_top,
    timed,
    verdict,
)
from benchmarks.tasks import chain_workflow, fan_out_workflow, noop

TARGET_SECONDS = 2.0
BIG = 10_000
PROFILED = 3_000  # a profile of the big case would take minutes; this size shows the same


def shapes(n: int) -> dict[str, Any]:
    return {
        f"chain of {n:,}": lambda: chain_workflow(noop, n, name=f"chain_{n}"),
        f"fan-out of {n:,}": lambda: fan_out_workflow(n),
    }


def run(config: Config) -> Section:
    import kernelflow

    sizes = (100,) if config.quick else (100, 1_000, BIG)
    parts: dict[str, list[tuple[float, float]]] = {}
    rows: list[Row] = []
    worst: float | None = None
    with isolated_home(config, "scale"):
        for n in sizes:
            cases = {}
            for name, make in shapes(n).items():
                cases[name] = _measure(kernelflow, make, parts.setdefault(name, []))
            big = n >= BIG  # the smaller sizes ran just before: they are its warm-up
            timings = interleaved(
                cases, config.reps(3) if big else config.reps(), 0 if big else config.warmups
            )
            for name in cases:
                total = timings.median(name)
                skip = 0 if big else config.warmups
                kept = parts[name][skip:]
                build = _median([b for b, _ in kept])
                run_ = _median([r for _, r in kept])
                rows += _rows(name, n, total, build, run_, timings.errors.get(name, ""))
                if n == BIG and total is not None:
                    worst = max(worst or 0.0, total)
        profile: list[str] = []
        if worst is not None and config.profile_if_missed(worst <= TARGET_SECONDS):
            make = shapes(PROFILED)[f"chain of {PROFILED:,}"]
            profile = profile_top(lambda: kernelflow.run(make(), {"x": 1}).raise_for_status())
    return Section(
        "scale",
        "Scale: build + run of no-op chains and fan-outs",
        f"10,000 nodes (build + run) <= {TARGET_SECONDS:g} s",
        rows,
        verdict(None if worst is None else worst <= TARGET_SECONDS),
        f"{worst:.1f} s for 10,000 nodes (slower shape)" if worst is not None else "not run",
        notes=[
            "Total: median of build + run over the repetitions; build and run: their own "
            "medians; per node = total / nodes.",
            "The 10,000-node cases get no warm-up round of their own: the 100 and 1,000 "
            "node cases ran just before.",
        ],
        profile=profile,
        profile_title=f"Where the time goes (cProfile of build + run of a {PROFILED:,}-node chain; "
        "the 10,000-node case would take minutes under the profiler)",
    )


def _measure(kernelflow: Any, make: Any, parts: list[tuple[float, float]]) -> Any:
    def once(round_: int) -> float:
        holder: list[Any] = []
        build = timed(lambda: holder.append(make()))
        run = timed(lambda: kernelflow.run(holder[0], {"x": round_}).raise_for_status())
        parts.append((build, run))
        return build + run

    return once


def _rows(
    name: str, n: int, total: float | None, build: float | None, run: float | None, error: str
) -> list[Row]:
    if total is None:
        return [Row(f"{name}: total", None, "s", note=error)]
    return [
        Row(f"{name}: total (build + run)", total, "s"),
        Row(f"{name}: build (tracing)", build, "s"),
        Row(f"{name}: run", run, "s"),
        Row(f"{name}: per node", total / n * 1e6, "µs"),
    ]


def _median(values: list[float]) -> float | None:
    import statistics

    return statistics.median(values) if values else None
