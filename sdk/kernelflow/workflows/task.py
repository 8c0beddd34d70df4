"""``@task``: a typed Python function as a task, and what calling one does.

Calling a task is what a user does: inside a ``@workflow`` body the call adds a
node to the graph being traced and returns promises; anywhere else the call runs
the task through the engine, so it is cached and type-checked just as it would
be in a workflow.
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Callable, Mapping
from typing import Any

from kernelflow._core.code_hash import function_fingerprint
from kernelflow._core.errors import DefinitionError, SignatureError
from kernelflow._core.interface import Interface, interface_from_function
from kernelflow._core.pickling import (
    importable_by_reference,
    pickle_by_value,
    task_by_reference,
    task_by_value,
)
from kernelflow._core.resources import ImageSpec, Requirements, Resources, Secret
from kernelflow._core.task import Task, TaskOptions
from kernelflow.workflows.workflow import (
    add_call,
    current_builder,
    current_call_hook,
    run_task_directly,
)


class CallableTask(Task):
    """A task a user calls by name: traced in a workflow body, run alone elsewhere."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if args:
            raise SignatureError(
                f"task {self.name!r} was called with {len(args)} positional argument(s); "
                "tasks take keyword arguments only",
                task=self.name,
                fix=f"call it as {self.name}({_keywords(self.interface)})",
            )
        builder = current_builder()
        if builder is not None:
            return add_call(builder, self, kwargs)
        hook = current_call_hook()
        if hook is not None:
            return hook(self, kwargs)
        return run_task_directly(self, kwargs)


class FunctionTask(CallableTask):
    """A task whose body is a Python function (``@task``)."""

    def __init__(
        self,
        fn: Callable[..., Any],
        options: TaskOptions,
        name: str | None = None,
        requirements: Requirements | None = None,
    ):
        self.fn = fn
        self.name = name or fn.__name__
        self.options = options
        self.requirements = requirements or Requirements()
        self.interface = interface_from_function(fn, kind="task")
        functools.update_wrapper(self, fn)

    def run(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        result = self.fn(**inputs)
        return self.interface.unpack(result, owner=self.name)

    @functools.cached_property
    def _fingerprint(self) -> Any:
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

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle by reference when a worker can import the task, else by value.

        The module attribute named by ``__qualname__`` is this task, not its
        function, so plain pickle cannot find the function and cloudpickle would
        copy it. By reference (module + qualname), a worker imports the module and
        uses the very same task, its globals included. Tasks a fresh worker cannot
        import (defined in ``__main__``, a notebook, a test function, a script
        loaded from a path) travel by value, together with the helpers of their
        module (see :func:`pickle_by_value`).
        """
        module, qualname = self.__dict__.get("__module__"), self.__dict__.get("__qualname__")
        named = isinstance(module, str) and isinstance(qualname, str)
        if named and importable_by_reference(self, module, qualname):  # type: ignore[arg-type]
            return (task_by_reference, (module, qualname))
        payload = pickle_by_value(self.__getstate__(), module if isinstance(module, str) else None)
        return (task_by_value, (type(self), payload))


def _seconds(timeout: float | datetime.timedelta | None) -> float | None:
    """A timeout in seconds; Flyte's ``timedelta``, and 0 meaning none, are accepted."""
    if isinstance(timeout, datetime.timedelta):
        timeout = timeout.total_seconds()
    return None if timeout == 0 else timeout


def task_options(
    *,
    cache: bool = False,
    cache_version: str = "",
    retries: int = 0,
    timeout: float | datetime.timedelta | None = None,
    cache_serialize: bool = False,
    cache_ignore_input_vars: tuple[str, ...] = (),
) -> TaskOptions:
    """The engine options of ``@task``, ``@dynamic`` and ``@eager``, read one way."""
    return TaskOptions(
        cache=cache,
        cache_version=str(cache_version),
        retries=retries,
        timeout=_seconds(timeout),
        cache_serialize=cache_serialize,
        cache_ignore_input_vars=tuple(cache_ignore_input_vars),
    )


def _check_ignored(made: FunctionTask) -> None:
    """``cache_ignore_input_vars`` must name inputs of the task (a typo would ignore nothing)."""
    unknown = [n for n in made.options.cache_ignore_input_vars if n not in made.interface.inputs]
    if unknown:
        raise DefinitionError(
            f"task {made.name!r}: cache_ignore_input_vars names {unknown[0]!r}, "
            "which is not one of its inputs",
            task=made.name,
            fix=f"name inputs among: {', '.join(made.interface.inputs) or '(none)'}",
        )


def _keywords(interface: Interface) -> str:
    return ", ".join(f"{name}=..." for name in interface.inputs)


def task(
    fn: Callable[..., Any] | None = None,
    *,
    cache: bool = False,
    cache_version: str = "",
    cache_serialize: bool = False,
    cache_ignore_input_vars: tuple[str, ...] = (),
    retries: int = 0,
    timeout: float | datetime.timedelta | None = None,
    name: str | None = None,
    requests: Resources | None = None,
    limits: Resources | None = None,
    container_image: str | ImageSpec | None = None,
    secret_requests: list[Secret] | None = None,
    enable_deck: bool = False,
) -> Any:
    """Turn a typed function into a task (``@task`` or ``@task(cache=True, ...)``).

    Every parameter must be annotated (no return annotation: no outputs): the
    annotations are the task's interface, checked when a workflow is defined and
    when values are produced. ``timeout`` is seconds or a ``timedelta``; 0 is none.
    ``requests``/``limits`` (:class:`Resources`), ``container_image`` and
    ``secret_requests`` are Flyte's: a request larger than this machine is refused
    before a run starts; the image is recorded with the run. ``cache_serialize`` and
    ``cache_ignore_input_vars`` are Flyte's too (see :class:`TaskOptions`).
    """
    requirements = Requirements(
        requests=requests,
        limits=limits,
        container_image=container_image,
        secret_requests=tuple(secret_requests or ()),
        enable_deck=enable_deck,
    )
    options = task_options(
        cache=cache,
        cache_version=cache_version,
        retries=retries,
        timeout=timeout,
        cache_serialize=cache_serialize,
        cache_ignore_input_vars=cache_ignore_input_vars,
    )

    def decorate(function: Callable[..., Any]) -> FunctionTask:
        made = FunctionTask(function, options, name=name, requirements=requirements)
        _check_ignored(made)
        return made

    return decorate(fn) if fn is not None else decorate
