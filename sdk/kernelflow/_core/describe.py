"""A workflow described in plain text: parameters, tasks with typed inputs and outputs, edges.

What ``kernelflow show`` prints, and what a terminal shows for ``%workflow show``.
"""

from __future__ import annotations

from kernelflow._core.graph import REQUIRED, Graph, NodeOutput, Param
from kernelflow._core.interface import type_name


def describe(name: str, graph: Graph) -> str:
    """Lines naming each parameter, each task's inputs (and where they come from) and outputs."""
    lines = [f"workflow {name}: {len(graph.nodes)} tasks"]
    makers: dict[str, int] = {}  # a name several tasks make is shown by version: df@clean
    for node in graph.nodes.values():
        for output_name in node.task.interface.outputs:
            makers[output_name] = makers.get(output_name, 0) + 1
    for param, spec in graph.params.items():
        default = "" if spec.default is REQUIRED else f" = {spec.default!r}"
        lines.append(f"  parameter {param}: {type_name(spec.type)}{default}")
    for node_id in graph.order:
        node = graph.nodes[node_id]
        lines.append(f"  task {node_id}")
        for input_name, binding in node.bindings.items():
            kind = type_name(node.task.interface.inputs.get(input_name))
            lines.append(f"    in  {input_name}: {kind} {_source(binding)}")
        for output_name, kind in node.task.interface.outputs.items():
            shown = f"{output_name}@{node_id}" if makers[output_name] > 1 else output_name
            lines.append(f"    out {shown}: {type_name(kind)}")
        for other in node.after:
            lines.append(f"    after {other}")
    outputs = ", ".join(
        f"{n} <- {b.node}.{b.output}" if isinstance(b, NodeOutput) else n
        for n, b in graph.outputs.items()
    )
    lines.append(f"  outputs: {outputs or '(none)'}")
    return "\n".join(lines)


def _source(binding: object) -> str:
    if isinstance(binding, NodeOutput):
        return f"<- {binding.node}.{binding.output}"
    if isinstance(binding, Param):
        return f"<- parameter {binding.name}"
    return "<- constant"
