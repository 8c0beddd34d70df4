"""What a run is given and what it gives back: targets, per-task outcomes, the run's result."""

from __future__ import annotations

import functools
import platform
import secrets
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from kernelflow._core.errors import KernelflowError
from kernelflow._core.graph import Graph
from kernelflow._core.status import RunStatus
from kernelflow._core.version import graph_version
from kernelflow._version import __version__

TaskStatus = Literal["pending", "running", "succeeded", "cached", "failed", "skipped"]


class RunTarget(Protocol):
    """What the engine runs: a named graph with a version (a Workflow, a notebook)."""

    name: str
    graph: Graph

    @property
    def version(self) -> str: ...


@dataclass(frozen=True)
class GraphTarget:
    """A graph built on the fly (a task called on its own)."""

    name: str
    graph: Graph
    # Hashes of the graph's constants, by id of their binding, shared by the
    # version and the run's cache keys: a task called on a big frame hashes it once.
    const_hashes: dict[int, str | None] = field(default_factory=dict, compare=False, repr=False)

    @functools.cached_property
    def version(self) -> str:
        return graph_version(self.graph, known=self.const_hashes)


@dataclass
class TaskRun:
    """What happened to one node in a run."""

    node: str
    task: str
    status: TaskStatus = "pending"
    attempts: int = 0
    duration: float = 0.0
    saved: float = 0.0
    cache_key: str | None = None
    error: KernelflowError | None = None


@dataclass
class RunResult:
    """The outcome of a run: ``outputs`` by workflow output name, ``tasks`` by node id."""

    run_id: str
    workflow: str
    version: str
    status: RunStatus
    outputs: dict[str, Any]
    tasks: dict[str, TaskRun]
    error: KernelflowError | None = None
    duration: float = 0.0
    values: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Every value produced or restored in the run: node id -> output name -> value."""
    params: dict[str, Any] = field(default_factory=dict)
    """The workflow's inputs, parsed and with their defaults (what ``on_failure`` gets)."""

    def raise_for_status(self) -> None:
        """Raise the first task error, if the run failed."""
        if self.error is not None:
            raise self.error

    def __repr__(self) -> str:
        counts: dict[str, int] = {}
        for task_run in self.tasks.values():
            counts[task_run.status] = counts.get(task_run.status, 0) + 1
        summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        return f"<RunResult {self.run_id} {self.workflow} {self.status}: {summary}>"


def run_environment(packages: Mapping[str, str]) -> dict[str, Any]:
    """What a run needs to be reproduced: interpreter, platform, package versions."""
    return {
        "python": platform.python_version(),
        "kernelflow": __version__,
        "platform": platform.platform(),
        "executable": sys.executable,
        "packages": dict(sorted(packages.items())),
    }


def new_run_id() -> str:
    """Sortable by start time, unique across processes.

    48 random bits: a notebook calling a task 1,000 times in one second (each
    call is a run) would, with 24 bits, collide about once in 30 such seconds.
    """
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(6)}"
