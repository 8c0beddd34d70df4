"""What a run report shows, read from the store: the run, its nodes, their edges and decks.

Plain data for a front end to render (``kernelflow report``). Values are
summarised, never copied: a type, a short hash and a short repr, so a report
holds no pickle or artifact bytes. A value larger than :data:`MAX_LOADED`
bytes is not loaded (its repr would be cut short anyway).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kernelflow._core.errors import KernelflowError
from kernelflow._core.typenames import short_repr
from kernelflow.store.artifacts import ArtifactRef
from kernelflow.store.decks import read_deck
from kernelflow.store.home import Store

__all__ = ["MAX_LOADED", "run_report"]

MAX_LOADED = 50_000_000
_RUN_FIELDS = ("run_id", "workflow", "version", "status", "started", "finished", "error")


def run_report(store: Store, run_id: str) -> dict[str, Any]:
    """``run`` (its fields, ``duration``, ``params`` as reprs) and ``nodes``: one dict per
    node in the order it first ran, with ``status, task, cache_hit, attempts, duration,
    errors, parents, inputs, outputs, deck`` (the deck's HTML, or None)."""
    run = store.runs.get_run(run_id)
    if run is None:
        raise KernelflowError(
            f"no run {run_id!r} in the store {store.home}",
            run_id=run_id,
            fix="list the runs with `kernelflow runs`, or set $KERNELFLOW_HOME to their store",
        )
    summary: dict[str, Any] = {key: run.get(key) for key in _RUN_FIELDS}
    summary["duration"] = run.get("duration")
    params = dict(run.get("params") or {})
    summary["params"] = {name: short_repr(value) for name, value in params.items()}
    nodes: dict[str, dict[str, Any]] = {}
    for row in store.runs.node_executions(run_id):
        node = nodes.setdefault(row["node"], {"node": row["node"], "errors": [], "attempts": 0})
        node.update(
            task=row["task"],
            status=row["status"],
            cache_hit=bool(row["cache_hit"]),
            duration=row["duration"],
            attempts=max(node["attempts"], int(row["attempt"] or 1)),
            code_hash=row["code_hash"],
            inputs=_inputs(row["inputs"] or {}, params),
            outputs={name: _value(store, ref) for name, ref in (row["outputs"] or {}).items()},
        )
        if row["error"]:
            node["errors"].append(row["error"])
    for node in nodes.values():
        node["parents"] = sorted(
            {item["from_node"] for item in node["inputs"].values() if item["from_node"]}
        )
        for item in node["inputs"].values():
            upstream = nodes.get(item["from_node"] or "", {}).get("outputs", {})
            produced = upstream.get(item["from_output"])
            if produced is not None:
                item.update(type=produced["type"], repr=produced["repr"])
        node["deck"] = read_deck(store.home, run_id, node["node"])
    summary["nodes"] = list(nodes.values())
    return summary


def _inputs(records: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    inputs = {}
    for name, record in records.items():
        record = record if isinstance(record, Mapping) else {}
        source = record.get("source") if isinstance(record.get("source"), Mapping) else {}
        if "param" in source:
            origin = f"parameter {source['param']}"
        elif "node" in source:
            origin = f"{source['node']}.{source.get('output')}"
        else:
            origin = "constant"
        given = source.get("param") in params
        value = params.get(source.get("param")) if given else None
        inputs[name] = {
            "hash": str(record.get("hash") or "")[:12],
            "source": origin,
            "from_node": source.get("node"),
            "from_output": source.get("output"),
            "type": type(value).__name__ if given else "",
            "repr": short_repr(value) if given else "",
        }
    return inputs


def _value(store: Store, ref: Any) -> dict[str, str]:
    ref = ref if isinstance(ref, Mapping) else {}
    summary = {"type": str(ref.get("type") or ""), "hash": str(ref.get("hash") or "")[:12]}
    artifact = ref.get("artifact")
    if not isinstance(artifact, Mapping):
        return {**summary, "repr": "(not stored)"}
    if (artifact.get("size") or 0) > MAX_LOADED:
        return {**summary, "repr": f"({artifact.get('size')} bytes, not loaded)"}
    try:
        value = store.artifacts.get(ArtifactRef.from_dict(artifact))
    except Exception as error:  # a report shows what it can
        return {**summary, "repr": f"(cannot load: {type(error).__name__})"}
    return {**summary, "repr": short_repr(value)}
