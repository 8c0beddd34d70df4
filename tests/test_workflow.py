"""Workflows: what tracing a body builds, what it refuses, and what names its version."""

from __future__ import annotations

import importlib.util
import operator
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from kernelflow import task, workflow
from kernelflow._core.graph import (
    REQUIRED,
    Const,
    Graph,
    GraphBuilder,
    Node,
    NodeId,
    NodeOutput,
    Param,
)
from kernelflow._core.interface import Interface
from kernelflow._core.task import Task, TaskOptions
from kernelflow._core.version import graph_version
from kernelflow.errors import (
    DefinitionError,
    KernelflowWarning,
    SignatureError,
    TaskFailedError,
    TypeMismatchError,
)
from kernelflow.workflows.workflow import Promise, Workflow


class MinMax(NamedTuple):
    low: int
    high: int


@task
def inc(n: int) -> int:
    return n + 1


@task
def mul(a: int, k: int = 2) -> int:
    return a * k


@task
def as_text(n: int) -> str:
    return str(n)


@task
def bounds(values: list[int]) -> MinMax:
    return MinMax(min(values), max(values))


@task
def split(n: int) -> tuple[int, str]:
    return n, str(n)


@task
def total(values: list[int]) -> int:
    return sum(values)


def out(node: str, name: str = "o0") -> NodeOutput:
    return NodeOutput(NodeId(node), name)


# --- tracing -----------------------------------------------------------------------


def test_tracing_builds_the_nodes_edges_params_and_outputs() -> None:
    @workflow
    def chain(n: int, k: int = 3) -> int:
        return mul(a=inc(n=inc(n=n)), k=k)

    graph = chain.graph
    assert graph.order == ("inc", "inc-2", "mul")  # a task used twice gets a second id
    assert graph.nodes["inc"].bindings == {"n": Param("n")}
    assert graph.nodes["inc-2"].bindings == {"n": out("inc")}
    assert graph.nodes["mul"].bindings == {"a": out("inc-2"), "k": Param("k")}
    assert all(graph.nodes[n].task is inc for n in ("inc", "inc-2"))
    assert (graph.params["n"].type, graph.params["n"].default) == (int, REQUIRED)
    assert (graph.params["k"].type, graph.params["k"].default) == (int, 3)
    assert graph.outputs == {"o0": out("mul")}
    assert graph.downstream() == {"inc": ["inc-2"], "inc-2": ["mul"], "mul": []}
    assert repr(chain) == "<Workflow chain: 3 tasks>"


def test_constants_and_task_defaults_are_bound_as_constants() -> None:
    @workflow
    def wf() -> int:
        return mul(a=5)

    assert wf.graph.nodes["mul"].bindings == {"a": Const(5), "k": Const(2)}
    assert wf.graph.params == {}


def test_the_body_runs_once_at_definition_and_no_task_runs_then() -> None:
    traced = []

    @task
    def explode(n: int) -> int:
        raise RuntimeError("a task ran")

    @workflow
    def wf(n: int) -> int:
        traced.append(n)
        return explode(n=n)  # defining the workflow does not call the body

    assert len(traced) == 1 and isinstance(traced[0], Promise)
    with pytest.raises(TaskFailedError, match="a task ran"):
        wf(n=4)
    assert len(traced) == 1  # running does not trace again


def test_a_workflow_may_return_its_input_or_a_constant() -> None:
    @workflow
    def echo(n: int) -> tuple[int, int]:
        return n, 7

    assert echo.graph.nodes == {}
    assert echo.graph.outputs == {"o0": Param("n"), "o1": Const(7)}
    assert echo(n=3) == (3, 7)


# --- types -------------------------------------------------------------------------


def test_an_output_feeding_an_input_of_another_type_fails_naming_both_types() -> None:
    with pytest.raises(TypeMismatchError) as info:

        @workflow
        def wf(n: int) -> int:
            return inc(n=as_text(n=n))

    error = info.value
    assert (error.expected, error.actual) == ("int", "str")
    assert "input 'n' of task 'inc' expects int" in str(error)
    assert "output 'o0' of task 'as_text' is declared str" in str(error)
    assert "Fix: change one of the two annotations" in str(error)


def test_a_workflow_output_of_another_type_fails_at_definition() -> None:
    with pytest.raises(TypeMismatchError, match=r"output 'o0' of workflow 'wf' expects str"):

        @workflow
        def wf(n: int) -> str:
            return inc(n=n)


def test_a_list_holding_promises_is_type_checked_per_element() -> None:
    with pytest.raises(TypeMismatchError, match=r"input 'values' of task 'total'\[1\] expects int"):

        @workflow
        def wf(a: int, b: int) -> int:
            return total(values=[inc(n=a), as_text(n=b)])


USES_OF_A_VALUE: dict[str, Callable[[Any], Any]] = {
    "if": lambda p: 1 if p else 0,
    "if ==": lambda p: 1 if p == 0 else 0,
    "if !=": lambda p: 1 if p != 0 else 0,
    "<": lambda p: p < 3,
    "len": len,
    "iteration": list,
    "in": lambda p: 1 in p,
    "indexing": lambda p: p[0],
    "int()": int,
    "float()": float,
    "+": lambda p: p + 1,
    "1 +": lambda p: 1 + p,
    "-": lambda p: p - 1,
    "1 -": lambda p: 1 - p,
    "*": lambda p: p * 2,
    "2 *": lambda p: 2 * p,
    "/": lambda p: p / 2,
    "//": lambda p: p // 2,
    "%": lambda p: p % 2,
    "**": lambda p: p**2,
    "unary -": operator.neg,
    "abs": abs,
    "round": round,
}


@pytest.mark.parametrize("use", USES_OF_A_VALUE.values(), ids=USES_OF_A_VALUE.keys())
def test_using_a_promise_as_a_value_is_refused_with_the_fix(use: Callable[[Any], Any]) -> None:
    with pytest.raises(DefinitionError) as info:

        @workflow
        def wf(n: int) -> int:
            use(inc(n=n))
            return 0

    assert "output 'o0' of task 'inc' has no value while the workflow is being defined" in str(
        info.value
    )
    assert "pass it to a task and do the computation inside that task" in info.value.fix


def test_a_promise_still_has_a_repr_and_can_be_hashed() -> None:
    seen = []

    @workflow
    def wf(n: int) -> int:
        promise = inc(n=n)
        seen.append((repr(promise), hash(promise) == hash(promise), promise is promise))
        return promise

    assert seen == [("<Promise output 'o0' of task 'inc': int>", True, True)]


# --- several outputs ---------------------------------------------------------------


def test_tuple_outputs_unpack_into_promises_and_come_back_as_a_tuple() -> None:
    @workflow
    def wf(n: int) -> tuple[str, int]:
        number, text = split(n=n)
        return text, inc(n=number)

    assert wf.graph.nodes["inc"].bindings == {"n": out("split", "o0")}
    assert wf.graph.outputs == {"o0": out("split", "o1"), "o1": out("inc")}
    assert wf(n=4) == ("4", 5)


def test_named_tuple_outputs_are_read_by_field_and_come_back_named() -> None:
    @workflow
    def wf(values: list[int]) -> MinMax:
        found = bounds(values=values)
        return MinMax(low=found.low, high=inc(n=found.high))

    assert wf.graph.nodes["inc"].bindings == {"n": out("bounds", "high")}
    assert wf.graph.outputs == {"low": out("bounds", "low"), "high": out("inc")}
    result = wf(values=[3, 9, 1])
    assert type(result) is MinMax and result == MinMax(low=1, high=10)


def test_returning_the_wrong_number_of_values_is_refused() -> None:
    with pytest.raises(TypeMismatchError, match=r"workflow 'wf' must return 2 values"):

        @workflow
        def wf(n: int) -> tuple[int, int]:
            return inc(n=n)  # type: ignore[return-value]


# --- inputs --------------------------------------------------------------------------


def test_a_missing_task_input_names_the_task_the_input_and_its_type() -> None:
    with pytest.raises(SignatureError, match=r"task 'mul' is missing input 'a' \(int\)") as info:

        @workflow
        def wf(n: int) -> int:
            return mul(k=n)

    assert (info.value.task, info.value.variable) == ("mul", "a")
    assert info.value.fix == "pass a=... when calling mul"


def test_an_unknown_task_input_names_it_and_the_known_ones() -> None:
    with pytest.raises(SignatureError, match=r"task 'mul' has no input 'b'; its inputs are: a, k"):

        @workflow
        def wf(n: int) -> int:
            return mul(a=n, b=n)


def test_workflow_defaults_are_used_when_a_parameter_is_not_given() -> None:
    @workflow
    def wf(n: int = 4, k: int = 10) -> int:
        return mul(a=n, k=k)

    assert wf() == 40
    assert wf(k=1) == 4


def test_a_default_of_the_wrong_type_fails_at_definition() -> None:
    with pytest.raises(DefinitionError, match=r"'n'") as info:

        @workflow
        def wf(n: int = "three") -> int:  # type: ignore[assignment]
            return inc(n=n)

    assert "int" in str(info.value) and "'three'" in str(info.value)


# --- nested workflows --------------------------------------------------------------


@workflow
def child(n: int, k: int = 3) -> int:
    return mul(a=inc(n=n), k=k)


def test_a_nested_workflow_is_inlined_under_a_prefix() -> None:
    @workflow
    def parent(x: int) -> int:
        return child(n=child(n=x), k=x)

    graph = parent.graph
    assert graph.order == ("child.inc", "child.mul", "child-2.inc", "child-2.mul")
    assert graph.nodes["child.inc"].bindings == {"n": Param("x")}
    assert graph.nodes["child.mul"].bindings == {"a": out("child.inc"), "k": Const(3)}
    assert graph.nodes["child-2.inc"].bindings == {"n": out("child.mul")}
    assert graph.nodes["child-2.mul"].bindings == {"a": out("child-2.inc"), "k": Param("x")}
    assert graph.nodes["child-2.inc"].label == "child-2.inc"
    assert graph.outputs == {"o0": out("child-2.mul")}
    assert parent(x=2) == 20  # child(2) = 3 * 3 = 9; child(9, k=2) = 10 * 2


def test_a_nested_workflow_and_a_task_of_its_name_do_not_collide() -> None:
    @task(name="child")
    def same_name(n: int) -> int:
        return n

    @workflow
    def parent(x: int) -> int:
        return same_name(n=child(n=x))

    assert list(parent.graph.order) == ["child.inc", "child.mul", "child-2"]


def test_a_nested_workflow_input_is_type_checked() -> None:
    with pytest.raises(TypeMismatchError, match=r"input 'n' of 'child' expects int"):

        @workflow
        def parent(x: int) -> int:
            return child(n=as_text(n=x))


def test_a_nested_workflow_missing_an_input_names_it() -> None:
    with pytest.raises(SignatureError, match=r"workflow 'child' is missing input 'n'") as info:

        @workflow
        def parent(x: int) -> int:
            return child(k=x)

    assert info.value.variable == "n"


def test_a_misspelled_nested_workflow_input_names_it_and_the_known_ones() -> None:
    with pytest.raises(SignatureError, match=r"workflow 'child' has no input 'm'") as info:

        @workflow
        def parent(x: int) -> int:
            return child(m=x)

    assert "its inputs are: n, k" in str(info.value)
    assert (info.value.workflow, info.value.variable) == ("child", "m")
    assert info.value.fix == "check the spelling of the keyword argument"


# --- versions ------------------------------------------------------------------------

FLOW = '''
from kernelflow import task, workflow


@task(cache_version={cache_version!r})
def step(n: int) -> int:
    """Add one."""
    {body}


@workflow
def wf(n: int = {default}) -> int:
    return step(n=step(n=n))
'''


def _version(tmp_path: Path, body: str = "return n + 1", default: int = 1, cv: str = "") -> str:
    """The version of FLOW written to a file of its own, as a user would edit it."""
    path = tmp_path / f"flow_{len(list(tmp_path.glob('flow_*.py')))}.py"
    path.write_text(FLOW.format(body=body, default=default, cache_version=cv))
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    wf: Workflow = module.wf
    assert wf.version == graph_version(wf.graph)
    return wf.version


def test_identical_definitions_have_one_version(tmp_path: Path) -> None:
    first = _version(tmp_path)
    assert len(first) == 12 and int(first, 16) >= 0
    assert _version(tmp_path) == first
    assert _version(tmp_path, body="return n + 1  # a comment") == first
    assert _version(tmp_path, body="return (n\n        + 1)") == first


@pytest.mark.parametrize(
    "change",
    [{"body": "return n + 2"}, {"default": 2}, {"cv": "2"}],
    ids=["body", "default", "cache_version"],
)
def test_a_change_of_what_is_computed_changes_the_version(
    tmp_path: Path, change: dict[str, Any]
) -> None:
    assert _version(tmp_path, **change) != _version(tmp_path)


class Stub(Task):
    def __init__(self, name: str, code: str = "v1") -> None:
        self.name = name
        self.code = code
        self.interface = Interface({"x": int, "y": int}, {"o0": int}, {}, "single")
        self.options = TaskOptions()

    @property
    def code_hash(self) -> str:
        return self.code


def _graph(*, code: str = "v1", const: int = 1, edge: str = "a", order: str = "xy") -> Graph:
    builder = GraphBuilder()
    builder.add_param("p", int, 0)
    builder.add_node(Node(NodeId("a"), Stub("a"), {"x": Param("p"), "y": Const(0)}))
    builder.add_node(Node(NodeId("b"), Stub("b"), {"x": Param("p"), "y": Const(0)}))
    bindings = {"x": NodeOutput(NodeId(edge), "o0"), "y": Const(const)}
    if order == "yx":
        bindings = dict(reversed(bindings.items()))
    builder.add_node(Node(NodeId("c"), Stub("c", code), bindings))
    builder.set_output("o0", NodeOutput(NodeId("c"), "o0"))
    return builder.build()


def test_graph_version_follows_code_edges_and_constants_not_binding_order() -> None:
    base = graph_version(_graph())
    assert graph_version(_graph()) == base
    assert graph_version(_graph(order="yx")) == base
    assert graph_version(_graph(code="v2")) != base
    assert graph_version(_graph(const=2)) != base
    assert graph_version(_graph(edge="b")) != base


def test_graph_version_of_an_unhashable_constant_is_stable() -> None:
    def graph() -> Graph:
        builder = GraphBuilder()
        lock = __import__("threading").Lock()  # pickles to nothing: no content hash
        builder.add_node(Node(NodeId("a"), Stub("a"), {"x": Const(lock), "y": Const(0)}))
        return builder.build()

    assert graph_version(graph()) == graph_version(graph())


@pytest.mark.parametrize("use", [str, lambda p: f"data_{p}.csv", print], ids=["str", "f", "print"])
def test_formatting_a_promise_gives_a_placeholder_with_a_warning(use: Callable[[Any], Any]) -> None:
    """As in Flyte (``print(promise)`` in a workflow body prints a placeholder), but said."""
    with pytest.warns(KernelflowWarning, match="output 'o0' of task 'inc' is formatted as text"):

        @workflow
        def wf(n: int) -> int:
            use(inc(n=n))
            return 0

    assert wf(n=1) == 0
