"""Flyte's composition (issue 14): dynamic, conditional, eager and imperative workflows.

The programs are written as a Flyte user writes them, with ``flytekit`` read as
``kernelflow``; each test asserts the answer Flyte documents.
"""

from __future__ import annotations

import kernelflow
from kernelflow import dynamic, task, workflow

# --- @dynamic ------------------------------------------------------------------------

CALLS: list[str] = []


@task(cache=True)
def square(x: int) -> int:
    CALLS.append(f"square({x})")
    return x * x


@task
def total(values: list[int]) -> int:
    return sum(values)


@task
def collect(a: int, b: int) -> list[int]:
    return [a, b]


@dynamic
def sum_of_squares(n: int) -> int:
    # n is a real int here: the body loops over it to decide how many tasks to call
    acc = square(x=0)
    for i in range(1, n + 1):
        acc = total(values=collect(a=acc, b=square(x=i)))
    return acc


@workflow
def squares_wf(n: int = 3) -> int:
    return sum_of_squares(n=n)


@dynamic
def outer(n: int) -> int:
    return sum_of_squares(n=n + 1)


@workflow
def outer_wf(n: int) -> int:
    return outer(n=n)


def test_dynamic_builds_its_graph_from_the_input_value() -> None:
    assert squares_wf(n=3) == 14
    assert squares_wf(n=4) == 30
    assert sum_of_squares(n=2) == 5  # called on its own, outside a workflow


def test_dynamic_children_are_recorded_and_cached_on_a_second_run() -> None:
    CALLS.clear()
    first: list = []
    result = kernelflow.run(squares_wf, {"n": 2}, listeners=[first.append])
    result.raise_for_status()
    assert result.outputs["o0"] == 5
    started = {e.node for e in first if e.kind == "task_started"}
    assert {"sum_of_squares", "sum_of_squares.square", "sum_of_squares.square-2"} <= started
    assert kernelflow.lineage(result.run_id, "sum_of_squares.square-2")["status"] == "succeeded"
    assert sorted(CALLS) == ["square(0)", "square(1)", "square(2)"]
    CALLS.clear()
    second: list = []
    kernelflow.run(squares_wf, {"n": 2}, listeners=[second.append]).raise_for_status()
    assert CALLS == []
    cached = {e.node for e in second if e.kind == "task_cached"}
    assert {"sum_of_squares.square", "sum_of_squares.square-2"} <= cached


def test_nested_dynamic_workflows() -> None:
    events: list = []
    result = kernelflow.run(outer_wf, {"n": 1}, listeners=[events.append])
    result.raise_for_status()
    assert result.outputs["o0"] == 5
    assert "outer.sum_of_squares.square-2" in {e.node for e in events if e.node}
