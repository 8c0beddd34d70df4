"""``@dynamic``: a workflow whose body runs when the node runs, with real input values.

A ``@workflow`` body is traced once, at definition, with promises; a ``@dynamic``
body is traced each time its node runs, with the node's actual inputs, so it
can loop over a number or branch on a value to decide which tasks to call. The
graph it builds runs through the same engine as a nested run (cached, in
parallel, recorded in the run under the node's id: ``dyn.square``), and its
outputs are the node's.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping
from typing import Any

from kernelflow._core.graph import Binding, Graph, Node, NodeId, NodeOutput
from kernelflow._core.interface import Interface
from kernelflow.engine.context import current_context
from kernelflow.engine.nested import run_nested
from kernelflow.workflows.task import FunctionTask, task_options
from kernelflow.workflows.workflow import trace_call


def trace_now(call: Callable[[], Any], name: str, interface: Interface, prefix: str) -> Graph:
    """Trace ``call()`` (a body given real values) into a graph with ids under ``prefix``."""
    return under(trace_call(call, name, interface), prefix)


def under(graph: Graph, prefix: str) -> Graph:
    """The same graph with every node id (and label) under ``prefix.``."""
    renamed = {node_id: NodeId(f"{prefix}.{node_id}") for node_id in graph.nodes}

    def remap(binding: Binding) -> Binding:
        if isinstance(binding, NodeOutput):
            return NodeOutput(renamed[binding.node], binding.output)
        return binding

    nodes = {
        renamed[node_id]: Node(
            renamed[node_id],
            node.task,
            {name: remap(b) for name, b in node.bindings.items()},
            after=tuple(renamed[a] for a in node.after),
            label=f"{prefix}.{node.label or node.task.name}",
        )
        for node_id, node in graph.nodes.items()
    }
    outputs = {name: remap(b) for name, b in graph.outputs.items()}
    order = tuple(renamed[node_id] for node_id in graph.order)
    return Graph(nodes, dict(graph.params), outputs, order)


def run_graph_here(graph: Graph, name: str, params: Mapping[str, Any] | None = None) -> dict:
    """Run a graph built by a running node, as part of its run; its outputs by name."""
    result = run_nested(graph, name, params)
    result.raise_for_status()
    return dict(result.outputs)


class DynamicTask(FunctionTask):
    """A task whose body builds a workflow at run time (``@dynamic``)."""

    def run(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        prefix = current_context().node
        graph = trace_now(lambda: self.fn(**inputs), self.name, self.interface, prefix)
        return run_graph_here(graph, prefix)


def dynamic(
    fn: Callable[..., Any] | None = None,
    *,
    cache: bool = False,
    cache_version: str = "",
    retries: int = 0,
    timeout: float | datetime.timedelta | None = None,
    name: str | None = None,
) -> Any:
    """Turn a typed function into a dynamic workflow (``@dynamic`` or ``@dynamic(...)``).

    Inside the body the inputs are values; task calls return promises, as in a
    ``@workflow``. ``cache`` caches the whole node; the tasks it calls are cached
    by their own ``cache`` option either way.
    """
    options = task_options(
        cache=cache, cache_version=cache_version, retries=retries, timeout=timeout
    )

    def decorate(function: Callable[..., Any]) -> DynamicTask:
        return DynamicTask(function, options, name=name)

    return decorate(fn) if fn is not None else decorate
