"""Lineage a person can read: the rows of ``%workflow lineage NAME``.

:meth:`RunStore.lineage` answers with nested dicts of hashes and artifact refs
(inline pickles included), which is what a program wants and what a person in
a notebook cannot read. Here a name the person knows (a task, or a value a task
made) becomes a few rows of short text: the value and where it came from, then
each input and where *it* came from. The rendering is the front end's job.

Which run: the newest run of this kernel that has the name (a kernel runs each
``%%task`` cell as a run of its own), else the store's newest. In a kernel, a
cell's inputs reach it as constants; their producers are found by content hash
among the outputs of earlier executions, and a value no task made (``rate =
0.2`` in a cell) is shown when the kernel's variable still holds it.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kernelflow._core.errors import KernelflowError
from kernelflow._core.hashing import hash_or_none
from kernelflow._core.typenames import describe_value, short_repr
from kernelflow.store.artifacts import ArtifactRef
from kernelflow.store.home import Store

__all__ = ["LINEAGE_COLUMNS", "lineage_rows"]

LINEAGE_COLUMNS = ("role", "name", "value", "type", "hash", "task", "code", "run", "when")
_SHORT = 8  # characters of a hash: enough to tell values apart at a glance

Row = dict[str, str]


def lineage_rows(
    name: str,
    store: Store,
    *,
    run_ids: Sequence[str] = (),
    namespace: Mapping[str, Any] | None = None,
) -> list[Row]:
    """The rows for a task or an output ``name``: its outputs first, then its inputs.

    ``run_ids`` are the runs this kernel made, oldest first; ``namespace`` is the
    kernel's, to show a constant input no task produced.
    """
    context = _Context(store, run_ids, namespace or {})
    run_id, node = _find(context, name)
    entry: dict[str, Any] = store.runs.lineage(run_id, node)
    outputs = entry["outputs"]
    named = [name] if name in outputs and name not in (entry["task"], entry["node"]) else outputs
    rows = [_output_row(store, entry, output) for output in named]
    if not rows:  # a task that made nothing still has its code and its inputs
        rows = [_row("task", str(entry["task"]), "", "", None, entry)]
    rows += [_input_row(context, entry, key, info) for key, info in entry["inputs"].items()]
    return rows


@dataclass(frozen=True)
class _Context:
    """One look-up: the store, this kernel's runs (read once each) and its namespace."""

    store: Store
    run_ids: Sequence[str]
    namespace: Mapping[str, Any]
    finished: dict[str, dict[str, dict]] = field(default_factory=dict)

    def kernel_runs(self) -> Iterator[tuple[str, dict[str, dict]]]:
        """This kernel's runs, newest first, with their finished nodes."""
        for run_id in reversed(self.run_ids):
            if run_id not in self.finished:
                self.finished[run_id] = self.store.runs.finished_nodes(run_id)
            yield run_id, self.finished[run_id]


def _find(context: _Context, name: str) -> tuple[str, str]:
    """The run and node: this kernel's newest run that has ``name``, else the store's."""
    for run_id, finished in context.kernel_runs():
        by_task = [n for n, row in finished.items() if name in (n, row["task"])]
        by_output = [n for n, row in finished.items() if name in row["outputs"]]
        if by_task or by_output:
            return run_id, (by_task or by_output)[-1]
    row = context.store.runs.latest_execution(name)
    if row is None:
        raise KernelflowError(
            f"no run of this kernel, and none in the store {str(context.store.home)!r}, has a "
            f"task or an output named {name!r}",
            variable=name,
            fix="run the task's cell (or %workflow run) first, and check the name: "
            "%workflow lineage takes a task name or the name of a value a task made",
        )
    return str(row["run_id"]), str(row["node"])


def _output_row(store: Store, entry: Mapping[str, Any], output: str) -> Row:
    meta = entry["outputs"][output]
    value, type_text = _load(store, meta)
    return _row("output", output, value, type_text, meta.get("hash"), entry)


def _input_row(context: _Context, entry: Mapping[str, Any], name: str, info: Any) -> Row:
    digest = info.get("hash")
    source = info.get("source") or {}
    upstream = info.get("lineage")
    if "node" in source and isinstance(upstream, Mapping):
        meta = upstream["outputs"].get(source.get("output"), {})
        return _row("input", name, *_load(context.store, meta), digest, upstream)
    if "param" in source:
        return _parameter_row(context, entry, name, str(source["param"]), digest)
    return _constant_row(context, name, digest)


def _parameter_row(
    context: _Context, entry: Mapping[str, Any], name: str, param: str, digest: str | None
) -> Row:
    """A workflow parameter: its value as the run recorded it (JSON, or a repr)."""
    run = context.store.runs.get_run(str(entry["run_id"])) or {}
    params = run.get("params")
    if not isinstance(params, Mapping) or param not in params:
        return _row("input", name, "(not recorded)", "", digest, None, "parameter")
    value = params[param]
    return _row("input", name, _text(value), type(value).__name__, digest, None, "parameter")


def _constant_row(context: _Context, name: str, digest: str | None) -> Row:
    """An input a kernel cell read: made by an earlier task, or set in the kernel."""
    producer = _producer(context, name, digest) if digest else None
    if producer is not None:
        meta = producer["outputs"][name]
        return _row("input", name, *_load(context.store, meta), digest, producer)
    value = context.namespace.get(name, _MISSING)
    if value is not _MISSING and digest and hash_or_none(value) == digest:
        return _row("input", name, _text(value), type(value).__name__, digest, None, "(kernel)")
    return _row("input", name, "(not recorded)", "", digest, None, "(kernel)")


_MISSING = object()


def _producer(context: _Context, name: str, digest: str) -> Mapping[str, Any] | None:
    """The newest execution whose output ``name`` had this content: this kernel's first."""
    for _, finished in context.kernel_runs():
        for row in finished.values():
            output = row["outputs"].get(name)
            if isinstance(output, Mapping) and output.get("hash") == digest:
                return row
    return context.store.runs.latest_execution(name, output_hash=digest)


def _load(store: Store, meta: Mapping[str, Any]) -> tuple[str, str]:
    """The value's short text and its type's name; never the stored bytes."""
    declared = str(meta.get("type") or "")
    artifact = meta.get("artifact")
    if not artifact:
        return "(not stored)", declared
    try:
        value = store.artifacts.get(ArtifactRef.from_dict(artifact))
    except KernelflowError as error:
        return f"(not readable: {getattr(error, 'reason', error)})", declared
    return _text(value), type(value).__name__


def _text(value: object) -> str:
    """One line: the repr when it is short, else a description (a DataFrame's columns)."""
    text = short_repr(value)
    return text if "\n" not in text and not text.endswith("...") else describe_value(value)


def _row(
    role: str,
    name: str,
    value: str,
    type_text: str,
    digest: object,
    producer: Mapping[str, Any] | None,
    task: str = "",
) -> Row:
    producer = producer or {}
    return {
        "role": role,
        "name": name,
        "value": value,
        "type": type_text,
        "hash": str(digest or "")[:_SHORT],
        "task": str(producer.get("task") or task),
        "code": str(producer.get("code_hash") or "")[:_SHORT],
        "run": str(producer.get("run_id") or ""),
        "when": _when(producer.get("started")),
    }


def _when(started: object) -> str:
    """The recorded UTC time, in this machine's time zone, to the second."""
    if not isinstance(started, str):
        return ""
    try:
        moment = datetime.datetime.fromisoformat(started)
    except ValueError:
        return started
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")
