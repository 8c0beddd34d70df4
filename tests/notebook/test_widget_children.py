"""The progress view shows the nodes a running node built (issue 14) under its row."""

from __future__ import annotations

import kernelflow
from kernelflow import dynamic, task, workflow
from kernelflow_jupyter.widgets import ProgressView


@task
def halve(x: int) -> int:
    return x // 2


@dynamic
def halvings(n: int) -> int:
    value = halve(x=n)
    for _ in range(2):
        value = halve(x=value)
    return value


@workflow
def halving_wf(n: int) -> int:
    return halvings(n=n)


def test_children_of_a_dynamic_node_are_listed_under_its_row() -> None:
    view = ProgressView(halving_wf.graph, "halving_wf")
    result = kernelflow.run(halving_wf, {"n": 40}, listeners=[view])
    result.raise_for_status()
    assert result.outputs["o0"] == 5
    assert list(view.rows) == ["halvings"]  # children are not rows of the run
    assert list(view.children["halvings"]) == [
        "halvings.halve",
        "halvings.halve-2",
        "halvings.halve-3",
    ]
    text = view.text()
    assert "\n    halvings.halve-3: succeeded" in text
    assert view._titles()[0].endswith("(3/3 inner tasks done)")
    snapshot = view.snapshot()  # what a reopened notebook shows: the inner tasks too
    assert snapshot.index(">halvings<") < snapshot.index(">halvings.halve-3<")
