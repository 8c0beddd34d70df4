"""The graph: order, reachability, and the mistakes refused before anything runs."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from kernelflow._core.graph import (
    REQUIRED,
    Const,
    Graph,
    GraphBuilder,
    Node,
    NodeId,
    NodeOutput,
    Param,
    find_cycle,
)
from kernelflow._core.interface import Interface
from kernelflow._core.task import Task, TaskOptions
from kernelflow.errors import CycleError, DefinitionError


class Stub(Task):
    """A task with one output, ``out``; the graph never runs it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.interface = Interface({}, {"out": int}, {}, "single")
        self.options = TaskOptions()


def node(name: str, *reads: str, after: tuple[str, ...] = ()) -> Node:
    """Node ``name`` reading ``out`` of each node in ``reads``."""
    bindings = {f"in{i}": NodeOutput(NodeId(r), "out") for i, r in enumerate(reads)}
    return Node(NodeId(name), Stub(name), bindings, after=tuple(NodeId(a) for a in after))


def build(*nodes: Node) -> Graph:
    builder = GraphBuilder()
    for each in nodes:
        builder.add_node(each)
    return builder.build()


# --- order ------------------------------------------------------------------------


def test_every_node_comes_after_the_nodes_it_reads() -> None:
    graph = build(node("report", "train", "clean"), node("train", "clean"), node("clean"))
    assert graph.order == ("clean", "train", "report")


def test_independent_nodes_keep_insertion_order_so_runs_are_reproducible() -> None:
    graph = build(node("c"), node("a"), node("b"), node("join", "b", "a", "c"))
    assert graph.order == ("c", "a", "b", "join")


def test_ordering_only_dependencies_count_for_the_order() -> None:
    graph = build(node("later", after=("first",)), node("first"))
    assert graph.order == ("first", "later")


def test_a_diamond_runs_its_join_last() -> None:
    graph = build(
        node("top"), node("left", "top"), node("right", "top"), node("join", "left", "right")
    )
    assert graph.order == ("top", "left", "right", "join")


# --- reachability ------------------------------------------------------------------


def test_upstream_lists_each_parent_once_data_then_ordering() -> None:
    both = Node(
        NodeId("n"),
        Stub("n"),
        {"x": NodeOutput(NodeId("a"), "out"), "y": NodeOutput(NodeId("a"), "other")},
        after=(NodeId("b"), NodeId("a")),
    )
    assert list(both.upstream()) == ["a", "b"]


def test_params_and_constants_are_not_upstream_nodes() -> None:
    bound = Node(NodeId("n"), Stub("n"), {"x": Param("x"), "y": Const(3)})
    assert list(bound.upstream()) == []


def test_downstream_maps_every_node_to_the_nodes_that_wait_for_it() -> None:
    graph = build(
        node("a"), node("b", "a"), node("c", "a", "a"), node("d", after=("b",)), node("lone")
    )
    assert graph.downstream() == {"a": ["b", "c"], "b": ["d"], "c": [], "d": [], "lone": []}


def test_needed_for_is_the_targets_and_everything_upstream() -> None:
    graph = build(
        node("load"),
        node("other"),
        node("clean", "load"),
        node("train", "clean", after=("other",)),
        node("report", "train"),
        node("unrelated", "load"),
    )
    assert graph.needed_for(["train"]) == {"load", "clean", "other", "train"}
    assert graph.needed_for(["clean", "unrelated"]) == {"load", "clean", "unrelated"}
    assert graph.needed_for([]) == set()


# --- what build() refuses -------------------------------------------------------


def _follows_data(cycle: list[str], graph_nodes: Mapping[str, Node]) -> bool:
    """Each name in the cycle feeds the next one (and the last feeds the first)."""
    pairs = zip(cycle, [*cycle[1:], cycle[0]])
    return all(producer in graph_nodes[reader].upstream() for producer, reader in pairs)


def test_a_cycle_is_refused_naming_its_nodes_in_data_order() -> None:
    nodes = [node("x", "y"), node("y", "z"), node("z", "x"), node("outside", "x")]
    with pytest.raises(CycleError) as info:
        build(*nodes)
    cycle = info.value.cycle
    assert sorted(cycle) == ["x", "y", "z"]  # not "outside", which only reads from it
    assert _follows_data(cycle, {n.id: n for n in nodes})
    path = " -> ".join([*cycle, cycle[0]])
    assert path in str(info.value)
    assert "Fix: break the cycle" in str(info.value)


def test_a_cycle_through_an_ordering_dependency_is_refused() -> None:
    with pytest.raises(CycleError, match=r"cycle: (a -> b -> a|b -> a -> b)"):
        build(node("a", "b"), node("b", after=("a",)))


def test_a_node_that_reads_itself_is_a_cycle_of_one() -> None:
    with pytest.raises(CycleError, match=r"cycle: me -> me\b") as info:
        build(node("me", "me"))
    assert info.value.cycle == ["me"]


def test_a_cycle_error_is_a_definition_error() -> None:
    with pytest.raises(DefinitionError):
        build(node("a", "b"), node("b", "a"))


def test_find_cycle_returns_nothing_for_a_dag() -> None:
    edges = {NodeId("a"): [], NodeId("b"): [NodeId("a")], NodeId("c"): [NodeId("a"), NodeId("b")]}
    assert find_cycle(edges) == []


def test_two_nodes_with_one_id_are_refused_naming_the_id() -> None:
    builder = GraphBuilder()
    builder.add_node(node("train"))
    with pytest.raises(DefinitionError, match="two nodes are named 'train'") as info:
        builder.add_node(node("train"))
    assert info.value.node == "train"


def test_a_dependency_on_a_missing_node_is_refused_naming_both() -> None:
    with pytest.raises(DefinitionError, match="'report' depends on 'train'") as info:
        build(node("report", "train"))
    assert info.value.node == "report"
    assert "not in the workflow" in str(info.value) and "Fix:" in str(info.value)


def test_an_ordering_dependency_on_a_missing_node_is_refused() -> None:
    with pytest.raises(DefinitionError, match="'b' depends on 'ghost'"):
        build(node("b", after=("ghost",)))


# --- ids, params and outputs ----------------------------------------------------------


def test_unique_id_numbers_repeated_uses_of_a_task() -> None:
    builder = GraphBuilder()
    assert [builder.unique_id("square") for _ in range(3)] == ["square", "square-2", "square-3"]
    assert builder.unique_id("other") == "other"


def test_unique_id_skips_ids_taken_by_nodes_added_directly() -> None:
    builder = GraphBuilder()
    builder.add_node(node("t"))
    builder.add_node(node("t-2"))
    assert builder.unique_id("t") == "t-3"


def test_params_and_outputs_are_kept_with_their_bindings() -> None:
    builder = GraphBuilder()
    n = builder.add_param("n", int, 3)
    seed = builder.add_param("seed", int)
    builder.add_node(Node(NodeId("a"), Stub("a"), {"n": n, "seed": seed}))
    builder.set_output("result", NodeOutput(NodeId("a"), "out"))
    builder.set_output("echo", n)
    graph = builder.build()
    assert n == Param("n")
    assert (graph.params["n"].type, graph.params["n"].default) == (int, 3)
    assert graph.params["seed"].default is REQUIRED
    assert repr(REQUIRED) == "REQUIRED"
    assert graph.outputs == {"result": NodeOutput(NodeId("a"), "out"), "echo": Param("n")}
    assert graph.nodes["a"].bindings == {"n": Param("n"), "seed": Param("seed")}


def test_a_built_graph_does_not_change_when_its_builder_goes_on() -> None:
    builder = GraphBuilder()
    builder.add_node(node("a"))
    graph = builder.build()
    builder.add_node(node("b", "a"))
    builder.add_param("late", int)
    builder.set_output("late", Param("late"))
    assert (list(graph.nodes), graph.order, dict(graph.params), dict(graph.outputs)) == (
        ["a"],
        ("a",),
        {},
        {},
    )
