"""Lineage: where a node's outputs came from, rebuilt from recorded executions.

Each node execution records, for every input, the node that produced it; lineage
follows those links upstream. It is pure dict work over rows the run store has
already read, kept out of :mod:`kernelflow.store.runs` so that the store stays
about storage.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kernelflow._core.errors import KernelflowError


def resolve_node(best: Mapping[str, dict], run_id: str, node: str, store: str) -> str:
    """The node id ``node`` names: a node id, else the one node running that task."""
    if node in best:
        return node
    matches = sorted(n for n, row in best.items() if row["task"] == node)
    if len(matches) == 1:
        return matches[0]
    nodes = ", ".join(sorted(best)) or "none"
    if matches:
        message = f"task {node!r} ran as several nodes in run {run_id!r}: {', '.join(matches)}"
        fix = "ask for one of these node ids"
    elif best:
        message = f"run {run_id!r} has no node or task {node!r}; its nodes are: {nodes}"
        fix = "ask for one of these nodes or their task names"
    else:
        message = f"run {run_id!r} has no recorded nodes in the run store {store}"
        fix = "check the run id with `kernelflow runs`"
    raise KernelflowError(message, fix=fix, run_id=run_id, node=node, nodes=sorted(best))


def build_lineage(best: Mapping[str, dict], root: str) -> dict[str, object]:
    """Lineage dicts for ``root`` and its ancestors, built bottom-up without recursion.

    Deep chains would overflow Python's recursion limit; a diamond's shared
    ancestor is built once and referenced from both sides. A cycle (only in a
    damaged store) ends in ``lineage: None``.
    """
    built: dict[str, dict[str, object]] = {}
    on_path: set[str] = set()
    stack: list[tuple[str, bool]] = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if node in built:
            continue
        if expanded:
            on_path.discard(node)
            built[node] = _lineage_entry(best[node], built)
            continue
        on_path.add(node)
        stack.append((node, True))
        for upstream in _upstream(best[node]):
            if upstream in best and upstream not in built and upstream not in on_path:
                stack.append((upstream, False))
    return built[root]


def _upstream(row: Mapping[str, Any]) -> list[str]:
    sources = (info.get("source") for info in row["inputs"].values())
    return [s["node"] for s in sources if isinstance(s, Mapping) and "node" in s]


def _lineage_entry(row: Mapping[str, Any], built: Mapping[str, dict]) -> dict[str, object]:
    inputs: dict[str, object] = {}
    for name, info in row["inputs"].items():
        source = info.get("source")
        upstream = source.get("node") if isinstance(source, Mapping) else None
        lineage = built.get(upstream) if upstream is not None else None
        inputs[name] = {"hash": info.get("hash"), "source": source, "lineage": lineage}
    keys = ("run_id", "node", "task", "code_hash", "cache_key", "status", "cache_hit")
    entry: dict[str, object] = {k: row[k] for k in keys}
    entry.update(inputs=inputs, outputs=row["outputs"], started=row["started"])
    return entry
