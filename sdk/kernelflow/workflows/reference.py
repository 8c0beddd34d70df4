"""Flyte's reference entities: ``reference_task``, ``_workflow`` and ``_launch_plan``.

In Flyte they stand for something registered on a cluster under (project,
domain, name, version): the decorated function only declares the interface.
Locally there is no cluster to fetch them from, so a workflow that uses one can
be defined (its types are checked as usual), and running the reference fails
with one message that names it and says what to do.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from kernelflow._core.errors import UnsupportedFeatureError
from kernelflow._core.task import TaskOptions
from kernelflow.workflows.task import FunctionTask


class ReferenceTask(FunctionTask):
    """A task registered elsewhere: its interface is known, its body is not here."""

    def __init__(self, fn: Callable[..., Any], kind: str, **where: str) -> None:
        super().__init__(fn, TaskOptions(), name=where.get("name") or fn.__name__)
        self.kind = kind
        self.where = dict(where)

    def run(self, inputs: Any) -> dict[str, Any]:
        where = ", ".join(f"{k}={v!r}" for k, v in self.where.items())
        raise UnsupportedFeatureError(
            f"running {self.kind} {self.name!r} ({where})",
            why="it lives on a Flyte cluster; replace it with a local task or workflow to run "
            "this here",
        )


def _reference(kind: str) -> Callable[..., Callable[[Callable[..., Any]], ReferenceTask]]:
    def decorator(
        project: str, domain: str, name: str, version: str
    ) -> Callable[[Callable[..., Any]], ReferenceTask]:
        where = {"project": project, "domain": domain, "name": name, "version": version}
        return functools.partial(ReferenceTask, kind=kind, **where)

    return decorator


reference_task = _reference("reference_task")
reference_workflow = _reference("reference_workflow")
reference_launch_plan = _reference("reference_launch_plan")

__all__ = ["ReferenceTask", "reference_launch_plan", "reference_task", "reference_workflow"]
