"""The tasks and workflow shapes the benchmarks run, defined at module level.

Module level, because a process backend (loky) pickles tasks by reference, and
because that is how users define them. Workflows are built by functions: a
``@workflow`` body with a loop traces into a graph of any size.
"""

from __future__ import annotations

import time
from typing import Any

from kernelflow import task, workflow


@task
def inc(x: int) -> int:
    """The trivial int task of the issue: per-task cost is all engine."""
    return x + 1


@task(cache=True)
def cached_inc(x: int) -> int:
    return x + 1


@task
def noop(x: int) -> int:
    return x


@task
def spin(n: int, seed: int) -> int:
    """Pure-Python CPU work that holds the GIL: only processes run two at once."""
    total = seed
    for i in range(n):
        total = (total + i * seed) % 1_000_003
    return total


@task
def nap(seconds: float, index: int) -> int:
    """Waits without CPU: threads overlap it."""
    time.sleep(seconds)
    return index


def chain_workflow(step: Any, n: int, name: str = "chain") -> Any:
    """``x -> step -> step -> ... (n times)``: one node after the other."""

    def chain(x: int = 0) -> int:
        for _ in range(n):
            x = step(x=x)
        return x

    chain.__name__ = name
    return workflow(chain)


def fan_out_workflow(n: int) -> Any:
    """One source node and ``n - 1`` independent consumers of it."""

    def fan_out(x: int = 0) -> int:
        source = noop(x=x)
        for _ in range(n - 1):
            noop(x=source)
        return source

    return workflow(fan_out)


def two_spins_workflow(n: int) -> Any:
    """Two independent CPU-bound nodes."""

    def two_spins(n: int = n) -> tuple[int, int]:
        return spin(n=n, seed=1), spin(n=n, seed=2)

    return workflow(two_spins)


def naps_workflow(count: int, seconds: float) -> Any:
    """``count`` independent sleeping nodes."""

    def naps(seconds: float = seconds) -> None:
        for index in range(count):
            nap(seconds=seconds, index=index)

    return workflow(naps)


def plain_chain(fn: Any, n: int, x: int) -> int:
    """The same chain as plain Python calls of the task's own function."""
    for _ in range(n):
        x = fn(x=x)
    return x


@task
def block(i: int, megabytes: int) -> Any:
    """A NumPy array of ``megabytes`` MB, different for each ``i`` (no two share a file)."""
    import numpy as np

    return np.full(megabytes * 2**20 // 8, float(i))


@task
def first_value(values: Any) -> float:
    return float(values[0])


@task
def total(values: list[float]) -> float:
    return float(sum(values))


def blocks_workflow() -> Any:
    """A map making one big array per item, a map reading each, and a sum: only the
    sum's inputs are small. (Built by a function, as the other shapes are.)"""
    import functools

    from kernelflow import map_task

    @workflow
    def blocks(indexes: list[int], megabytes: int = 10) -> float:
        arrays = map_task(functools.partial(block, megabytes=megabytes))(i=indexes)
        firsts = map_task(first_value)(values=arrays)
        return total(values=firsts)

    return blocks
