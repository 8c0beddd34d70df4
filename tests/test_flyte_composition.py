"""Flyte's composition (issue 14): dynamic, conditional, eager and imperative workflows.

The programs are written as a Flyte user writes them, with ``flytekit`` read as
``kernelflow``; each test asserts the answer Flyte documents.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

import kernelflow
from kernelflow import Workflow, conditional, dynamic, eager, task, workflow
from kernelflow.core.node_creation import create_node
from kernelflow.exceptions.eager import EagerException
from kernelflow.exceptions.user import FlyteRecoverableException
from kernelflow.workflows.conditional import Echo

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


# --- conditional ----------------------------------------------------------------------

RAN: list[str] = []


@task
def circumference(radius: float) -> float:
    RAN.append("circumference")
    return 2 * 3.14 * radius


@task
def area(radius: float) -> float:
    RAN.append("area")
    return 3.14 * radius * radius


@task
def double(x: float) -> float:
    return 2 * x


@workflow
def shape_properties(radius: float) -> float:
    d = conditional("shape")
    return (
        d.if_((radius >= 0.1) & (radius < 1.0))
        .then(circumference(radius=radius))
        .else_()
        .then(area(radius=radius))
    )


@workflow
def doubled_shape(radius: float) -> float:
    size = (
        conditional("shape")
        .if_(radius < 1.0)
        .then(circumference(radius=radius))
        .elif_((radius >= 1.0) & (radius <= 10.0))
        .then(area(radius=radius))
        .else_()
        .fail("the radius must be at most 10")
    )
    return double(x=size)


@task
def coin_toss(seed: int) -> bool:
    return seed % 2 == 0


@task
def success() -> int:
    return 1


@task
def failure() -> int:
    return -1


@workflow
def toss_wf(seed: int) -> int:
    heads = coin_toss(seed=seed)
    return conditional("toss").if_(heads.is_true()).then(success()).else_().then(failure())


@task
def bigger_first(a: int, b: int) -> str:
    return f"{a}>{b}"


@task
def smaller_first(a: int, b: int) -> str:
    return f"{a}<={b}"


@workflow
def compare_wf(a: int, b: int) -> str:
    return (
        conditional("order")
        .if_(a > b)
        .then(bigger_first(a=a, b=b))
        .else_()
        .then(smaller_first(a=a, b=b))
    )


def test_conditional_takes_the_branch_its_condition_selects() -> None:
    assert shape_properties(radius=0.5) == pytest.approx(3.14)
    assert shape_properties(radius=2.0) == pytest.approx(12.56)
    assert doubled_shape(radius=0.5) == pytest.approx(6.28)
    assert doubled_shape(radius=2.0) == pytest.approx(25.12)
    assert toss_wf(seed=2) == 1
    assert toss_wf(seed=3) == -1
    assert compare_wf(a=3, b=2) == "3>2"
    assert compare_wf(a=2, b=2) == "2<=2"


def test_conditional_runs_only_the_taken_branch_and_skips_the_other() -> None:
    RAN.clear()
    events: list = []
    result = kernelflow.run(shape_properties, {"radius": 0.5}, listeners=[events.append])
    result.raise_for_status()
    assert RAN == ["circumference"]
    assert ("task_finished", "shape.circumference") in {(e.kind, e.node) for e in events}
    assert ("task_skipped", "shape.area") in {(e.kind, e.node) for e in events}
    assert kernelflow.lineage(result.run_id, "shape.area")["status"] == "skipped"


def test_conditional_fail_branch_fails_the_run_with_its_message() -> None:
    result = kernelflow.run(doubled_shape, {"radius": 20.0})
    assert result.status == "failed"
    assert "the radius must be at most 10" in str(result.error)


def test_conditional_branches_are_type_checked_at_definition() -> None:
    from kernelflow.errors import TypeMismatchError

    with pytest.raises(TypeMismatchError, match="branch 2"):

        @workflow
        def mixed(radius: float) -> float:
            return (
                conditional("mixed")
                .if_(radius < 1.0)
                .then(area(radius=radius))
                .else_()
                .then(bigger_first(a=1, b=2))
            )


def test_a_promise_still_cannot_be_compared_outside_a_conditional() -> None:
    from kernelflow.errors import DefinitionError

    with pytest.raises(DefinitionError, match="no value"):

        @workflow
        def wrong(radius: float) -> float:
            if radius < 1.0:
                return area(radius=radius)
            return circumference(radius=radius)


# --- @eager ---------------------------------------------------------------------------

SPANS: dict[str, tuple[float, float]] = {}


@task(cache=True)
def add_one(x: int) -> int:
    return x + 1


@task
def slow_double(x: int) -> int:
    start = time.time()
    time.sleep(0.3)
    SPANS[f"double({x})"] = (start, time.time())
    return 2 * x


@task
def slow_square(x: int) -> int:
    start = time.time()
    time.sleep(0.3)
    SPANS[f"square({x})"] = (start, time.time())
    return x * x


@eager
async def eager_wf(x: int) -> int:
    out = await add_one(x=x)
    if out < 0:  # a real value: plain Python branches on it
        return -1
    doubled, squared = await asyncio.gather(slow_double(x=out), slow_square(x=out))
    return doubled + squared


@task
def double_int(x: int) -> int:
    return 2 * x


@workflow
def uses_eager(x: int) -> int:
    return double_int(x=eager_wf(x=x))


def test_eager_workflow_awaits_tasks_and_branches_on_their_values() -> None:
    assert eager_wf(x=2) == 6 + 9
    assert eager_wf(x=-5) == -1
    assert uses_eager(x=1) == 2 * (4 + 4)


def test_eager_tasks_are_recorded_cached_nodes_and_gather_runs_them_in_parallel() -> None:
    SPANS.clear()
    events: list = []
    result = kernelflow.run(uses_eager, {"x": 2}, listeners=[events.append])
    result.raise_for_status()
    finished = {e.node for e in events if e.kind == "task_finished"}
    assert {"eager_wf.add_one", "eager_wf.slow_double", "eager_wf.slow_square"} <= finished
    assert kernelflow.lineage(result.run_id, "eager_wf.slow_square")["status"] == "succeeded"
    (start_a, end_a), (start_b, end_b) = SPANS["double(3)"], SPANS["square(3)"]
    assert max(start_a, start_b) < min(end_a, end_b)  # the two tasks overlapped
    again: list = []
    kernelflow.run(uses_eager, {"x": 2}, listeners=[again.append]).raise_for_status()
    assert "eager_wf.add_one" in {e.node for e in again if e.kind == "task_cached"}


def test_eager_needs_an_async_function() -> None:
    from kernelflow.errors import DefinitionError

    with pytest.raises(DefinitionError, match="async def"):

        @eager
        def not_async(x: int) -> int:
            return x


# --- imperative workflows, create_node, >> ------------------------------------------


@task
def t1(a: str) -> str:
    return a + " world"


@task
def t2() -> None:
    ORDER.append("t2")


@task
def t3(a: list[str]) -> str:
    return ",".join(a)


imperative_wf = Workflow(name="my.imperative.workflow.example")
imperative_wf.add_workflow_input("in1", str)
node_t1 = imperative_wf.add_entity(t1, a=imperative_wf.inputs["in1"])
imperative_wf.add_workflow_output("output_from_t1", node_t1.outputs["o0"])
imperative_wf.add_entity(t2)
wf_in2 = imperative_wf.add_workflow_input("in2", str)
node_t3 = imperative_wf.add_entity(t3, a=[imperative_wf.inputs["in1"], wf_in2])
imperative_wf.add_workflow_output(
    "output_list", [node_t1.outputs["o0"], node_t3.outputs["o0"]], python_type=list[str]
)


def test_imperative_workflow_runs_like_a_traced_one() -> None:
    assert imperative_wf(in1="hello", in2="foo") == (
        "hello world",
        ["hello world", "hello,foo"],
    )
    result = kernelflow.run(imperative_wf, {"in1": "a", "in2": "b"})
    result.raise_for_status()
    assert result.outputs["output_from_t1"] == "a world"


def test_imperative_workflow_checks_types_when_entities_are_added() -> None:
    from kernelflow.errors import TypeMismatchError

    wf = Workflow(name="typed")
    wf.add_workflow_input("n", int)
    with pytest.raises(TypeMismatchError):
        wf.add_entity(t1, a=wf.inputs["n"])


ORDER: list[str] = []


@task
def write(tag: str) -> None:
    ORDER.append(tag)


@task
def plus_one(x: int) -> int:
    return x + 1


@workflow
def ordered_wf() -> None:
    first = create_node(write, tag="a")
    second = create_node(write, tag="b")
    second >> first  # b runs before a, though no data flows between them


@workflow
def handles_wf() -> None:
    a = write(tag="a")
    b = write(tag="b")
    b >> a


@workflow
def node_outputs_wf(x: int) -> int:
    node = create_node(plus_one, x=x)
    return plus_one(x=node.o0)


def test_create_node_outputs_and_ordering_with_rshift() -> None:
    assert node_outputs_wf(x=1) == 3
    ORDER.clear()
    ordered_wf()
    assert ORDER == ["b", "a"]
    ORDER.clear()
    handles_wf()
    assert ORDER == ["b", "a"]
    graph = ordered_wf.graph
    assert graph.nodes["write"].after == ("write-2",)


ATTEMPTS: list[int] = []


@task
def flaky(x: int) -> int:
    ATTEMPTS.append(x)
    if len(ATTEMPTS) < 3:
        raise FlyteRecoverableException("not yet")  # Flyte retries only these
    return x


@task
def counted(x: int) -> int:
    ATTEMPTS.append(x)
    return x


@workflow
def overridden_wf(x: int) -> int:
    return create_node(flaky, x=x).with_overrides(retries=2, name="ignored").o0


@workflow
def cached_override_wf(x: int) -> int:
    return create_node(counted, x=x).with_overrides(cache=True, cache_version="1").o0


def test_with_overrides_applies_retries_and_cache_to_that_node_only() -> None:
    ATTEMPTS.clear()
    assert overridden_wf(x=7) == 7
    assert len(ATTEMPTS) == 3
    assert flaky.options.retries == 0
    ATTEMPTS.clear()
    assert cached_override_wf(x=5) == 5
    assert cached_override_wf(x=5) == 5
    assert ATTEMPTS == [5]
    assert counted.options.cache is False


def test_a_conditional_left_unfinished_by_an_error_does_not_leak_comparisons() -> None:
    from kernelflow.errors import DefinitionError, TypeMismatchError

    with pytest.raises(TypeMismatchError):

        @workflow
        def broken(radius: float) -> float:
            return (
                conditional("c")
                .if_(radius < 1.0)
                .then(t1(a=radius))
                .else_()
                .then(area(radius=radius))
            )

    with pytest.raises(DefinitionError, match="no value"):

        @workflow
        def compares(radius: float) -> float:
            if radius < 1.0:
                return area(radius=radius)
            return radius


@task
def zero() -> int:
    return 0


@task
def negate(x: int) -> int:
    return -x


@workflow
def nested_conditional(x: int) -> int:
    return (
        conditional("outer")
        .if_(x > 0)
        .then(conditional("inner").if_(x > 10).then(plus_one(x=x)).else_().then(negate(x=x)))
        .else_()
        .then(zero())
    )


@dynamic
def conditional_in_dynamic(x: int) -> int:
    y = plus_one(x=x)  # a node named plus_one outside the branches, one inside
    return conditional("c").if_(y > 3).then(plus_one(x=y)).else_().then(negate(x=y))


def test_conditionals_nest_and_work_in_dynamic_workflows() -> None:
    assert [nested_conditional(x=x) for x in (20, 5, -1)] == [21, -5, 0]
    assert conditional_in_dynamic(x=5) == 7
    assert conditional_in_dynamic(x=1) == -2


def test_text_progress_shows_children_without_counting_them_as_run_nodes() -> None:
    import io

    from kernelflow.progress import TextProgress

    stream = io.StringIO()
    kernelflow.run(shape_properties, {"radius": 2.0}, listeners=[TextProgress(stream, live=False)])
    lines = stream.getvalue().splitlines()
    assert "[0/1] shape.circumference skipped" in lines
    assert any(line.startswith("[0/1] shape.area ran in") for line in lines)
    assert any(line.startswith("[1/1] shape ran in") for line in lines)


def test_an_imperative_workflow_in_a_script_is_a_run_target(tmp_path: Path) -> None:
    script = tmp_path / "imperative_script.py"
    script.write_text(
        "from kernelflow import Workflow, task\n\n"
        "@task\n"
        "def shout(a: str) -> str:\n"
        "    return a.upper()\n\n"
        'wf = Workflow(name="shouting")\n'
        'wf.add_workflow_input("a", str)\n'
        'wf.add_workflow_output("o0", wf.add_entity(shout, a=wf.inputs["a"]).o0)\n'
    )
    result = kernelflow.run(f"{script}:wf", {"a": "hi"})
    result.raise_for_status()
    assert result.outputs["o0"] == "HI"


@workflow
def write_b() -> None:
    write(tag="b")


@workflow
def write_a() -> None:
    write(tag="a")


@workflow
def chained_subworkflows() -> None:
    first = write_a()
    second = write_b()
    second >> first


def test_rshift_orders_nested_workflows_without_outputs() -> None:
    ORDER.clear()
    chained_subworkflows()
    assert ORDER == ["b", "a"]


@task
def raises_below_one(x: int) -> int:
    if x < 1:
        raise TypeError("x must be positive")
    return x


@eager
async def eager_with_exception(x: int) -> int:
    try:
        return await raises_below_one(x=x)
    except EagerException:
        return -1


def test_eager_body_catches_a_failed_task_as_eager_exception() -> None:
    assert eager_with_exception(x=3) == 3
    assert eager_with_exception(x=0) == -1


echo = Echo(name="echo", inputs={"radius": float})


@workflow
def noop_branch(radius: float) -> float:
    return (
        conditional("noop")
        .if_(radius > 1.0)
        .then(area(radius=radius))
        .else_()
        .then(echo(radius=radius))
    )


def test_echo_passes_its_input_through_an_untaken_computation() -> None:
    assert noop_branch(radius=2.0) == pytest.approx(12.56)
    assert noop_branch(radius=0.5) == 0.5


FAIL_AFTER = {"on": True}


@task
def fails_while_switched_on(x: int) -> int:
    if FAIL_AFTER["on"]:
        raise RuntimeError("switched on")
    return x


@workflow
def dynamic_then_failure(n: int) -> int:
    return fails_while_switched_on(x=sum_of_squares(n=n))


def test_a_run_whose_dynamic_node_recorded_children_can_be_resumed() -> None:
    FAIL_AFTER["on"] = True
    failed = kernelflow.run(dynamic_then_failure, {"n": 2})
    assert failed.status == "failed"
    FAIL_AFTER["on"] = False
    resumed = kernelflow.run(dynamic_then_failure, {"n": 2}, resume=failed.run_id)
    resumed.raise_for_status()
    assert resumed.outputs["o0"] == 5
    assert resumed.tasks["sum_of_squares"].status == "cached"  # restored, not run again


@workflow
def side_effect_branches(x: int) -> None:
    conditional("announce").if_(x > 0).then(write(tag="positive")).elif_(x < 0).then(
        write(tag="negative")
    )


def test_a_conditional_without_else_runs_only_for_side_effects() -> None:
    ORDER.clear()
    side_effect_branches(x=1)
    side_effect_branches(x=0)  # no condition holds: nothing runs
    side_effect_branches(x=-1)
    assert ORDER == ["positive", "negative"]


def test_a_conditional_with_outputs_needs_an_else_branch() -> None:
    from kernelflow.errors import DefinitionError

    with pytest.raises(DefinitionError, match="no else_ branch"):

        @workflow
        def no_else(radius: float) -> None:
            conditional("c").if_(radius < 1.0).then(area(radius=radius))


@task
def slow_tag(tag: str) -> str:
    start = time.time()
    time.sleep(0.3)
    SPANS[tag] = (start, time.time())
    return tag


@task
def pair(a: str, b: str) -> list[str]:
    return [a, b]


@dynamic
def two_slow_tags(prefix: str) -> list[str]:
    return pair(a=slow_tag(tag=f"{prefix}-left"), b=slow_tag(tag=f"{prefix}-right"))


@workflow
def parallel_dynamic(prefix: str) -> list[str]:
    return two_slow_tags(prefix=prefix)


def test_a_dynamic_workflows_children_run_in_parallel_on_a_parallel_run() -> None:
    SPANS.clear()
    result = kernelflow.run(parallel_dynamic, {"prefix": "p"}, parallel=2, backend="threading")
    result.raise_for_status()
    assert result.outputs["o0"] == ["p-left", "p-right"]
    (start_a, end_a), (start_b, end_b) = SPANS["p-left"], SPANS["p-right"]
    assert max(start_a, start_b) < min(end_a, end_b)  # the two tasks overlapped


@task
def sleepy(x: int) -> int:
    time.sleep(2)
    return x


@workflow
def timed_out_wf(x: int) -> int:
    return create_node(sleepy, x=x).with_overrides(timeout=0.2).o0


def test_with_overrides_applies_a_timeout_to_that_node() -> None:
    result = kernelflow.run(timed_out_wf, {"x": 1})
    assert result.status == "failed"
    assert type(result.error).__name__ == "TaskTimeoutError"
    assert sleepy.options.timeout is None
