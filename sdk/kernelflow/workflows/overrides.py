"""``task(...).with_overrides(...)``: options and resources for one use of a task.

In a workflow body, ``fit(x=x).with_overrides(requests=Resources(mem="8Gi"))``
changes that node only: the node gets its own copy of the task with the new
options (``retries``, ``timeout``, ``cache``, ``cache_version``) and
requirements (``requests``, ``limits``, ``container_image``,
``secret_requests``, ``enable_deck``). The resource check at the start of a run
sees the overridden request. Flyte's overrides with no local meaning are
accepted; an unknown one is an error that names it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from kernelflow._core.errors import DefinitionError
from kernelflow._core.graph import GraphBuilder, NodeId
from kernelflow._core.resources import Requirements, requirements_of
from kernelflow._core.task import Task

__all__ = ["override_node"]

OPTIONS = frozenset({"retries", "timeout", "cache", "cache_version"})
REQUIREMENTS = frozenset(
    {"requests", "limits", "container_image", "secret_requests", "enable_deck"}
)
# Accepted for Flyte programs; nothing to do on one machine.
ACCEPTED = frozenset(
    {"name", "node_name", "task_config", "accelerator", "interruptible", "shared_memory"}
)


def override_node(builder: GraphBuilder, node_id: NodeId, overrides: Mapping[str, Any]) -> None:
    """Give node ``node_id`` a copy of its task with ``overrides`` applied."""
    unknown = sorted(set(overrides) - OPTIONS - REQUIREMENTS - ACCEPTED)
    if unknown:
        raise DefinitionError(
            f"with_overrides() got an unknown override {unknown[0]!r} for node {node_id!r}",
            node=node_id,
            fix="use one of: " + ", ".join(sorted(OPTIONS | REQUIREMENTS | ACCEPTED)),
        )
    task = builder.node(node_id).task
    options = {name: value for name, value in overrides.items() if name in OPTIONS}
    if "cache_version" in options:
        options["cache_version"] = str(options["cache_version"])
    wanted = {name: value for name, value in overrides.items() if name in REQUIREMENTS}
    if not options and not wanted:
        return
    clone = _copy(task)
    if options:
        clone.options = replace(task.options, **options)
    if wanted:
        clone.requirements = (requirements_of(task) or Requirements()).override(**wanted)  # type: ignore[attr-defined]
    builder.update(node_id, task=clone)


def _copy(task: Task) -> Task:
    """A copy of ``task`` (not copy.copy: a task pickles, and so copies, by reference)."""
    clone = object.__new__(type(task))
    clone.__dict__.update(task.__dict__)
    return clone
