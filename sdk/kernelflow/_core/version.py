"""A workflow's version: a short content hash of what its graph computes.

Every front end names its workflows' versions this way (the SDK's
``Workflow.version``, a notebook's export version, a task called alone), so the
run store, exports and resumes agree on what "the same workflow" means.
"""

from __future__ import annotations

from typing import Any

from kernelflow._core.graph import REQUIRED, Binding, Graph, NodeOutput, Param
from kernelflow._core.hashing import combine, hash_or_none
from kernelflow._core.interface import Interface, type_name


def graph_version(graph: Graph, known: dict[int, str | None] | None = None) -> str:
    """A short, stable hash of what a graph computes (not of its run-time values).

    ``known`` memoizes constants' hashes by id of their binding, for the run's
    cache keys to reuse.
    """
    known = {} if known is None else known
    parts = []
    for name, spec in graph.params.items():
        parts.append(f"param:{name}:{type_name(spec.type)}:{_const_hash(spec.default)}")
    for node_id in graph.order:
        node = graph.nodes[node_id]
        task = node.task
        bindings = ",".join(
            f"{k}<{_binding_text(b, known)}" for k, b in sorted(node.bindings.items())
        )
        parts.append(
            f"node:{node_id}:{task.name}:{task.code_hash}:{task.options.cache_version}:"
            f"{_interface_text(task.interface)}:{bindings}:{sorted(node.after)}"
        )
    for name, binding in graph.outputs.items():
        parts.append(f"output:{name}<{_binding_text(binding, known)}")
    return combine(*parts)[:12]


def _binding_text(binding: Binding, known: dict[int, str | None]) -> str:
    if isinstance(binding, NodeOutput):
        return f"{binding.node}.{binding.output}"
    if isinstance(binding, Param):
        return f"param.{binding.name}"
    if id(binding) not in known:
        known[id(binding)] = hash_or_none(binding.value)
    return f"const.{_unhashable_text(binding.value, known[id(binding)])}"


def _const_hash(value: Any) -> str:
    if value is REQUIRED:
        return "required"
    return _unhashable_text(value, hash_or_none(value))


def _unhashable_text(value: Any, digest: str | None) -> str:
    return digest if digest is not None else f"unhashable-{type(value).__qualname__}"


def _interface_text(interface: Interface) -> str:
    inputs = ",".join(f"{n}:{type_name(t)}" for n, t in interface.inputs.items())
    outputs = ",".join(f"{n}:{type_name(t)}" for n, t in interface.outputs.items())
    return f"({inputs})->({outputs})"
