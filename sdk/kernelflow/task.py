"""Tasks: a typed interface, a body, and the options that tell the engine how to run it.

A :class:`Task` does not run itself in a workflow; it only knows how to turn input
values into output values (:meth:`Task.run`). Calling a task is what a user does:
inside a ``@workflow`` body the call adds a node to the graph being traced and
returns promises; anywhere else the call runs the task through the engine, so it
is cached and type-checked just as it would be in a workflow.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kernelflow.errors import DefinitionError, SignatureError
from kernelflow.interface import Interface, interface_from_function


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
    """

    cache: bool = False
    cache_version: str = ""
    retries: int = 0
    timeout: float | None = None

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

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if args:
            raise SignatureError(
                f"task {self.name!r} was called with {len(args)} positional argument(s); "
                "tasks take keyword arguments only",
                task=self.name,
                fix=f"call it as {self.name}({_keywords(self.interface)})",
            )
        from kernelflow.workflow import add_call, current_builder, run_task_directly

        builder = current_builder()
        if builder is not None:
            return add_call(builder, self, kwargs)
        return run_task_directly(self, kwargs)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


class FunctionTask(Task):
    """A task whose body is a Python function (``@task``)."""

    def __init__(self, fn: Callable[..., Any], options: TaskOptions, name: str | None = None):
        self.fn = fn
        self.name = name or fn.__name__
        self.options = options
        self.interface = interface_from_function(fn, kind="task")
        functools.update_wrapper(self, fn)

    def run(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        result = self.fn(**inputs)
        return self.interface.unpack(result, owner=self.name)

    @functools.cached_property
    def _fingerprint(self) -> Any:
        from kernelflow.store.code_hash import function_fingerprint

        return function_fingerprint(self.fn)

    @property
    def code_hash(self) -> str:
        return self._fingerprint.hash

    @property
    def modules(self) -> Mapping[str, str]:
        return self._fingerprint.modules

    def __getstate__(self) -> dict[str, Any]:
        # The fingerprint is recomputed where needed; functools' wrapper
        # attributes travel with the function itself.
        state = dict(self.__dict__)
        state.pop("_fingerprint", None)
        return state


def _keywords(interface: Interface) -> str:
    return ", ".join(f"{name}=..." for name in interface.inputs)


def task(
    fn: Callable[..., Any] | None = None,
    *,
    cache: bool = False,
    cache_version: str = "",
    retries: int = 0,
    timeout: float | None = None,
    name: str | None = None,
) -> Any:
    """Turn a typed function into a task (``@task`` or ``@task(cache=True, ...)``).

    Every parameter and the return value must be annotated: the annotations are the
    task's interface, checked when a workflow is defined and when values are produced.
    """
    options = TaskOptions(
        cache=cache, cache_version=str(cache_version), retries=retries, timeout=timeout
    )

    def decorate(function: Callable[..., Any]) -> FunctionTask:
        return FunctionTask(function, options, name=name)

    return decorate(fn) if fn is not None else decorate
