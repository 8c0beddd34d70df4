"""The task model: a typed interface, a body, and the options that tell the engine how to run it.

A :class:`Task` only knows how to turn input values into output values
(:meth:`Task.run`); the engine decides when and where. What happens when a user
*calls* a task (trace it into a workflow, or run it alone) belongs to the front
end that made it: :mod:`kernelflow.workflows.task` for ``@task`` functions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kernelflow._core.errors import DefinitionError, TaskFailedError
from kernelflow._core.interface import Interface


@dataclass(frozen=True)
class TaskOptions:
    """How the engine treats a task (Flyte's ``@task`` options).

    cache:
        Reuse outputs computed earlier for the same code and inputs.
    cache_version:
        Bump it to invalidate old entries when something the cache key cannot
        see has changed (a data file, a remote service).
    retries:
        Extra attempts after a failure, with exponential backoff.
    timeout:
        Seconds an attempt may run before it is stopped and counted as failed.
    cache_serialize:
        Processes that need the same cache entry at once compute it once: the
        first holds a lock file for the key in the store, the others wait for it
        and then hit the entry it made.
    cache_ignore_input_vars:
        Inputs left out of the cache key: a change in them alone is still a hit.
    """

    cache: bool = False
    cache_version: str = ""
    retries: int = 0
    timeout: float | None = None
    cache_serialize: bool = False
    cache_ignore_input_vars: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.retries < 0:
            raise DefinitionError(f"retries must be >= 0, got {self.retries}")
        if self.timeout is not None and self.timeout <= 0:
            raise DefinitionError(
                f"timeout must be a positive number of seconds, got {self.timeout}"
            )


class Task:
    """Base of every task kind (function tasks, cell tasks, map tasks)."""

    name: str
    interface: Interface
    options: TaskOptions
    waiting_for: str | None = None
    """What a gate node (``wait_for_input``, ``approve``) waits for: the engine tells listeners."""
    gate: str | None = None
    """A gate node's kind (``sleep``, ``wait_for_input``, ``approve``): how to answer it."""
    signal: str | None = None
    """The signal a gate node waits for (None for ``sleep``)."""
    # For a map task: the fraction of items that must succeed (Flyte's
    # ``min_success_ratio``); below 1, a failed item's outputs are None.
    min_success_ratio: float = 1.0
    # For a map task: at most this many items in flight (Flyte's ``concurrency``); None: no bound.
    concurrency: int | None = None

    def run(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        """Compute the outputs (by name) from the inputs (by name)."""
        raise NotImplementedError

    @property
    def code_hash(self) -> str:
        """Identity of the body and of the code it references, for cache keys."""
        raise NotImplementedError

    @property
    def modules(self) -> Mapping[str, str]:
        """Versions of the packages the body uses: part of the key and of the run record."""
        return {}

    def key_inputs(self) -> Mapping[str, str | None]:
        """Content hashes of data the body reads from outside its inputs, by name.

        They enter the cache key as inputs do, so a value reaches the key the
        same way whether it is an input here and setup data elsewhere (a
        notebook constant is a parameter in a kernel, setup in a file).
        """
        return {}

    def still_valid(self, outputs: Mapping[str, Any]) -> bool:
        """Whether saved outputs (a cache hit) still describe the world.

        A value always does; a task whose output stands for a file it wrote
        checks that the file is still there, unchanged, or it runs again.
        """
        return True

    @property
    def portable(self) -> bool:
        """Whether the task can run in another process (a loky or Dask worker).

        Function tasks can (by reference or by value); a cell of a live kernel,
        which runs in the kernel's namespace, cannot.
        """
        return True

    def map_items(self, inputs: Mapping[str, Any]) -> tuple[Task, list[dict[str, Any]]] | None:
        """For a map task: the task to run per item and each item's inputs; else None.

        The engine asks every task; a map node is run item by item in batches.
        """
        return None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


def check_success_ratio(name: str, total: int, failed: int, ratio: float) -> None:
    """Fail a map when fewer than ``ratio`` of its ``total`` items succeeded."""
    if total and (total - failed) / total < ratio:
        raise TaskFailedError(
            f"map task {name!r}: {failed} of {total} items failed, more than "
            f"min_success_ratio={ratio:g} allows",
            task=name,
            fix="fix the failing items, or lower min_success_ratio",
        )
