"""``@eager``: an ``async def`` workflow whose body awaits tasks and sees their values.

Flyte's eager workflows::

    @eager
    async def pipeline(x: int) -> int:
        y = await add_one(x=x)
        if y > 10:  # a real value: plain Python decides
            return y
        a, b = await asyncio.gather(double(x=y), square(x=y))
        return a + b

The eager workflow is itself a task: calling it (or using it in a workflow)
runs it through the engine, and its body runs in an event loop. Each awaited
task (or workflow) is a node of the run, ``pipeline.add_one``, run by the
engine as a nested run in a thread of its own: cached, recorded, shown in
progress, and in parallel with the other calls an ``asyncio.gather`` awaits.
"""

from __future__ import annotations

import asyncio
import contextvars
import datetime
import inspect
import itertools
import threading
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from kernelflow._core.errors import DefinitionError, KernelflowError, TaskFailedError
from kernelflow._core.graph import GraphBuilder, Node, NodeId, NodeOutput
from kernelflow._core.task import Task
from kernelflow.engine.context import current_context
from kernelflow.workflows.dynamic import run_graph_here, under
from kernelflow.workflows.task import FunctionTask, task_options
from kernelflow.workflows.workflow import (
    Workflow,
    bind_inputs,
    bind_value,
    reset_call_hook,
    set_call_hook,
)


class EagerException(TaskFailedError):
    """A task or workflow awaited in an eager workflow failed (Flyte's ``EagerException``).

    The body may catch it and go on; uncaught, it fails the eager workflow's node.
    """


class EagerSession:
    """The calls one run of an eager body makes; each gets a node id under the body's."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self._counts: dict[str, itertools.count[int]] = {}
        self._lock = threading.Lock()

    def node_id(self, name: str) -> NodeId:
        with self._lock:
            number = next(self._counts.setdefault(name, itertools.count(1)))
        suffix = "" if number == 1 else f"-{number}"
        return NodeId(f"{self.prefix}.{name}{suffix}")

    def call(self, entity: Any, kwargs: Mapping[str, Any]) -> Coroutine[Any, Any, Any]:
        """``await entity(**kwargs)`` in the body: run it in a thread, as a node of the run."""
        node_id = self.node_id(entity.name)
        return asyncio.to_thread(self._run, entity, dict(kwargs), node_id)

    def _run(self, entity: Any, kwargs: Mapping[str, Any], node_id: NodeId) -> Any:
        token = set_call_hook(None)  # the task's own calls run as usual
        try:
            if isinstance(entity, Workflow):
                outputs = run_graph_here(under(entity.graph, node_id), node_id, kwargs)
                return entity.interface.pack(outputs)
            return entity.interface.pack(
                run_graph_here(_one_node(entity, kwargs, node_id), node_id)
            )
        except KernelflowError as error:
            raise EagerException(
                f"{node_id!r} failed in eager workflow {self.prefix!r}: {error.message}",
                fix=error.fix,
                task=str(node_id),
                error_type=type(error).__name__,
            ) from error
        finally:
            reset_call_hook(token)


def _one_node(task: Task, kwargs: Mapping[str, Any], node_id: NodeId) -> Any:
    bindings = bind_inputs(task, kwargs, bind=bind_value)
    builder = GraphBuilder()
    builder.add_node(Node(node_id, task, bindings, label=node_id))
    for output_name in task.interface.outputs:
        builder.set_output(output_name, NodeOutput(node_id, output_name))
    return builder.build()


class EagerTask(FunctionTask):
    """A task whose body is an ``async def`` that awaits tasks (``@eager``)."""

    def run(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        session = EagerSession(current_context().node)

        async def body() -> Any:
            token = set_call_hook(session.call)
            try:
                return await self.fn(**inputs)
            finally:
                reset_call_hook(token)

        return self.interface.unpack(_run_coroutine(body), owner=self.name)


def _run_coroutine(body: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    """``asyncio.run``, in a thread of its own when this one already runs a loop (Jupyter)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(body())
    result: dict[str, Any] = {}
    context = contextvars.copy_context()

    def target() -> None:
        try:
            result["value"] = context.run(asyncio.run, body())
        except BaseException as error:  # re-raised in the caller's thread
            result["error"] = error

    thread = threading.Thread(target=target, name="kernelflow-eager")
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result["value"]


def eager(
    fn: Callable[..., Any] | None = None,
    *,
    cache: bool = False,
    cache_version: str = "",
    retries: int = 0,
    timeout: float | datetime.timedelta | None = None,
    name: str | None = None,
) -> Any:
    """Turn an ``async def`` into an eager workflow (``@eager`` or ``@eager(...)``)."""
    options = task_options(
        cache=cache, cache_version=cache_version, retries=retries, timeout=timeout
    )

    def decorate(function: Callable[..., Any]) -> EagerTask:
        if not inspect.iscoroutinefunction(function):
            raise DefinitionError(
                f"@eager needs an async def, but {function.__name__!r} is a plain function",
                fix="write it as 'async def' and await the tasks it calls",
            )
        return EagerTask(function, options, name=name)

    return decorate(fn) if fn is not None else decorate
