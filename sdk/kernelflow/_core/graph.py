"""The structure of a workflow: nodes, the bindings of their inputs, and their order.

Structure only, no execution: the engine reads a :class:`Graph`; front ends (the
``@workflow`` tracer, the notebook loader) build one with a :class:`GraphBuilder`,
which checks what can be checked without running anything (unknown nodes, cycles).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, NewType

from kernelflow._core.errors import CycleError, DefinitionError

if TYPE_CHECKING:
    from collections.abc import Callable

    from kernelflow._core.task import Task

NodeId = NewType("NodeId", str)


@dataclass(frozen=True)
class NodeOutput:
    """An input bound to an output of another node."""

    node: NodeId
    output: str


@dataclass(frozen=True)
class Param:
    """An input bound to a workflow parameter."""

    name: str


@dataclass(frozen=True)
class Const:
    """An input bound to a constant given when the workflow was defined."""

    value: Any


Binding = NodeOutput | Param | Const


@dataclass(frozen=True)
class Node:
    """One use of a task in a workflow.

    ``after`` holds ordering-only dependencies (``--after`` in a notebook);
    ``label`` is what progress views show (a cell name, or the task name).
    """

    id: NodeId
    task: Task
    bindings: Mapping[str, Binding]
    after: tuple[NodeId, ...] = ()
    label: str = ""

    def upstream(self) -> Iterator[NodeId]:
        """Every node this one waits for, data or ordering, without repeats."""
        seen: set[NodeId] = set()
        for binding in self.bindings.values():
            if isinstance(binding, NodeOutput) and binding.node not in seen:
                seen.add(binding.node)
                yield binding.node
        for node_id in self.after:
            if node_id not in seen:
                seen.add(node_id)
                yield node_id


@dataclass(frozen=True)
class ParamSpec:
    """A workflow input: its declared type and default (``REQUIRED`` when none)."""

    name: str
    type: Any
    default: Any


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()


@dataclass(frozen=True)
class Graph:
    """An immutable DAG: nodes in topological order, parameters and outputs."""

    nodes: Mapping[NodeId, Node]
    params: Mapping[str, ParamSpec]
    outputs: Mapping[str, Binding]
    order: tuple[NodeId, ...] = field(default=())

    def downstream(self) -> dict[NodeId, list[NodeId]]:
        """For each node, the nodes that wait for it (the engine's ready-queue input)."""
        children: dict[NodeId, list[NodeId]] = {node_id: [] for node_id in self.nodes}
        for node in self.nodes.values():
            for parent in node.upstream():
                children[parent].append(node.id)
        return children

    def needed_for(self, targets: Iterable[NodeId]) -> set[NodeId]:
        """The targets and everything upstream of them (``%workflow run TASK``)."""
        needed: set[NodeId] = set()
        stack = list(targets)
        while stack:
            node_id = stack.pop()
            if node_id in needed:
                continue
            needed.add(node_id)
            stack.extend(self.nodes[node_id].upstream())
        return needed


class GraphBuilder:
    """The one mutable way to assemble a :class:`Graph`."""

    def __init__(self) -> None:
        self._nodes: dict[NodeId, Node] = {}
        self._params: dict[str, ParamSpec] = {}
        self._outputs: dict[str, Binding] = {}
        self._taken: set[str] = set()  # node ids and nested-workflow prefixes
        self._next_suffix: dict[str, int] = {}  # so unique_id never probes from -2 again
        self._before_build: list[Callable[[], None]] = []

    def add_param(self, name: str, type_: Any, default: Any = REQUIRED) -> Param:
        self._params[name] = ParamSpec(name, type_, default)
        return Param(name)

    def unique_id(self, base: str) -> NodeId:
        """``base``, or ``base-2``, ``base-3``... when a task is used more than once."""
        candidate, suffix = base, self._next_suffix.get(base, 2)
        while candidate in self._taken:
            candidate, suffix = f"{base}-{suffix}", suffix + 1
        self._next_suffix[base] = suffix
        self._taken.add(candidate)
        return NodeId(candidate)

    def add_node(self, node: Node) -> Node:
        if node.id in self._nodes:
            raise DefinitionError(f"two nodes are named {node.id!r}", node=node.id)
        self._taken.add(node.id)
        self._nodes[node.id] = node
        return node

    def node(self, node_id: NodeId) -> Node:
        """A node already added."""
        if node_id not in self._nodes:
            raise DefinitionError(f"no node {node_id!r} in this workflow", node=node_id)
        return self._nodes[node_id]

    def update(self, node_id: NodeId, **changes: Any) -> Node:
        """Replace fields of a node already added (``a >> b`` adds to ``b.after``)."""
        node = self._nodes[node_id] = replace(self.node(node_id), **changes)
        return node

    def set_output(self, name: str, binding: Binding) -> None:
        self._outputs[name] = binding

    def before_build(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` when the graph is built (a conditional left open ends there)."""
        self._before_build.append(callback)

    def build(self) -> Graph:
        """Check references and cycles, and freeze the graph in topological order."""
        pending, self._before_build = self._before_build, []
        for callback in reversed(pending):  # the last opened is the innermost
            callback()
        for node in self._nodes.values():
            for parent in node.upstream():
                if parent not in self._nodes:
                    raise DefinitionError(
                        f"node {node.id!r} depends on {parent!r}, which is not in the workflow",
                        node=node.id,
                        fix="add the missing task, or remove the dependency",
                    )
        order = topological_order(self._nodes)
        return Graph(dict(self._nodes), dict(self._params), dict(self._outputs), order)


def topological_order(nodes: Mapping[NodeId, Node]) -> tuple[NodeId, ...]:
    """Kahn's algorithm; ties are broken by insertion order so runs are reproducible."""
    position = {node_id: index for index, node_id in enumerate(nodes)}
    pending = {node_id: len(set(node.upstream())) for node_id, node in nodes.items()}
    children: dict[NodeId, list[NodeId]] = {node_id: [] for node_id in nodes}
    for node in nodes.values():
        for parent in node.upstream():
            children[parent].append(node.id)
    ready = [(position[n], n) for n, count in pending.items() if count == 0]
    heapq.heapify(ready)
    order: list[NodeId] = []
    while ready:
        _, node_id = heapq.heappop(ready)
        order.append(node_id)
        for child in children[node_id]:
            pending[child] -= 1
            if pending[child] == 0:
                heapq.heappush(ready, (position[child], child))
    if len(order) < len(nodes):
        raise _cycle_error(nodes, set(order))
    return tuple(order)


def _cycle_error(nodes: Mapping[NodeId, Node], done: set[NodeId]) -> CycleError:
    cycle = find_cycle({n: list(nodes[n].upstream()) for n in nodes if n not in done})
    path = " -> ".join([*cycle, cycle[0]]) if cycle else ", ".join(sorted(set(nodes) - done))
    return CycleError(
        f"the tasks depend on each other in a cycle: {path}",
        cycle=cycle,
        fix="break the cycle: one of these tasks must not read what a later one produces",
    )


def find_cycle(edges: Mapping[NodeId, list[NodeId]]) -> list[NodeId]:
    """One cycle among ``edges`` (node -> the nodes it depends on), or []."""
    state: dict[NodeId, int] = {}  # 1 visiting, 2 done
    stack: list[NodeId] = []

    def visit(node_id: NodeId) -> list[NodeId]:
        state[node_id] = 1
        stack.append(node_id)
        for parent in edges.get(node_id, []):
            if state.get(parent) == 1:
                return list(reversed(stack[stack.index(parent) :]))
            if parent in edges and parent not in state:
                found = visit(parent)
                if found:
                    return found
        stack.pop()
        state[node_id] = 2
        return []

    for node_id in edges:
        if node_id not in state:
            found = visit(node_id)
            if found:
                return found
    return []
