"""Imperative workflows and node references: a graph built by calls, not by tracing a body.

Flyte's ``Workflow("name")`` (``ImperativeWorkflow``) is for workflows that a
program assembles, from a config file or a legacy system's job list::

    wf = Workflow(name="pipeline")
    wf.add_workflow_input("x", list[int])
    node = wf.add_entity(slope, x=wf.inputs["x"])
    wf.add_workflow_output("slope", node.outputs["o0"])
    wf(x=[1, 2, 3])

A :class:`NodeRef` is what ``add_entity`` and ``create_node`` return: a node's
outputs (``node.o0``, ``node.outputs["o0"]``), ordering (``a >> b``) and
``with_overrides`` (retries, timeout, cache of this use of the task only).
Inputs and outputs are type-checked when they are added, as in ``@workflow``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from kernelflow._core.errors import DefinitionError, SignatureError
from kernelflow._core.graph import Graph, GraphBuilder, Node, NodeId, NodeOutput
from kernelflow._core.interface import Interface, type_name
from kernelflow._core.task import Task, TaskOptions
from kernelflow._core.version import graph_version
from kernelflow.workflows.workflow import (
    Promise,
    Workflow,
    bind_inputs,
    bind_value,
    run_before,
    tracing,
)

_OVERRIDES = {"retries", "timeout", "cache", "cache_version"}


class NodeRef:
    """A task's node in a workflow being defined: its outputs, order and overrides."""

    def __init__(self, builder: GraphBuilder, node: NodeId, interface: Interface) -> None:
        self._builder = builder
        self.node = node
        self.interface = interface
        self.outputs: dict[str, Promise] = {
            name: Promise(NodeOutput(node, name), type_, f"output {name!r} of task {node!r}")
            for name, type_ in interface.outputs.items()
        }

    @property
    def id(self) -> str:
        return self.node

    def __getattr__(self, name: str) -> Promise:
        outputs = self.__dict__.get("outputs", {})
        if name in outputs:
            return outputs[name]  # type: ignore[no-any-return]
        raise AttributeError(
            f"node {self.__dict__.get('node')!r} has no output {name!r}; "
            f"its outputs are: {', '.join(outputs) or '(none)'}"
        )

    def runs_before(self, other: Any) -> Any:
        return run_before(self, other, self._builder)

    def __rshift__(self, other: Any) -> Any:
        return run_before(self, other, self._builder)

    def with_overrides(self, **overrides: Any) -> NodeRef:
        """Options for this use of the task: ``retries``, ``timeout``, ``cache``, ``cache_version``.

        Flyte's other overrides (``name``, ``requests``, ``limits``, ...) are
        accepted and have no effect on a local run.
        """
        changes = {k: v for k, v in overrides.items() if k in _OVERRIDES}
        if changes:
            node = self._builder.node(self.node)
            if "cache_version" in changes:
                changes["cache_version"] = str(changes["cache_version"])
            options = replace(node.task.options, **changes)
            self._builder.update(self.node, task=_with_options(node.task, options))
        return self

    def __repr__(self) -> str:
        return f"<NodeRef {self.node}>"


def _with_options(task: Task, options: TaskOptions) -> Task:
    """A copy of ``task`` with other options; the engine reads them from the node's task."""
    # Not copy.copy: a task pickles (and so copies) by reference, to itself.
    clone = object.__new__(type(task))
    clone.__dict__.update(task.__dict__)
    clone.options = options
    return clone


def add_node(builder: GraphBuilder, task: Task, kwargs: Mapping[str, Any]) -> NodeRef:
    """Add ``task(**kwargs)`` to ``builder`` and return its :class:`NodeRef`."""
    bindings = bind_inputs(task, kwargs, bind=bind_value)
    node = builder.add_node(Node(builder.unique_id(task.name), task, bindings, label=task.name))
    return NodeRef(builder, node.id, task.interface)


class ImperativeWorkflow:
    """A workflow assembled by calls (Flyte's ``Workflow(name=...)``); call it to run it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._builder = GraphBuilder()
        self.inputs: dict[str, Promise] = {}
        self._output_types: dict[str, Any] = {}
        self._graph: Graph | None = None

    # --- building ---------------------------------------------------------------------

    def add_workflow_input(self, input_name: str, python_type: Any) -> Promise:
        binding = self._builder.add_param(input_name, python_type)
        promise = Promise(binding, python_type, f"workflow input {input_name!r}")
        self.inputs[input_name] = promise
        self._graph = None
        return promise

    def add_entity(self, entity: Any, **kwargs: Any) -> Any:
        """Add a task (a :class:`NodeRef`) or a workflow (its outputs) to the workflow."""
        self._graph = None
        kwargs = {name: self._collected(value, name) for name, value in kwargs.items()}
        if isinstance(entity, Task):
            return add_node(self._builder, entity, kwargs)
        if isinstance(entity, Workflow):
            with tracing(self._builder):
                return entity(**kwargs)
        raise DefinitionError(
            f"add_entity takes a task or a workflow, got {type(entity).__name__}",
            fix="pass a @task or @workflow",
        )

    add_task = add_subwf = add_entity

    def add_workflow_output(self, output_name: str, p: Any, python_type: Any | None = None) -> None:
        """Declare an output: a promise, or a list of promises (with ``python_type``)."""
        self._graph = None
        if isinstance(p, (list, tuple)):
            p = self._collected(list(p), output_name, python_type)
        if not isinstance(p, Promise):
            raise DefinitionError(
                f"output {output_name!r} of workflow {self.name!r} must be a node's output, "
                f"got {p!r}",
                fix="pass node.outputs['o0'] (or node.o0)",
            )
        expected = python_type if python_type is not None else p.type
        where = f"output {output_name!r} of workflow {self.name!r}"
        self._builder.set_output(output_name, bind_value(p, expected, where=where))
        self._output_types[output_name] = expected

    def _collected(self, value: Any, name: str, python_type: Any | None = None) -> Any:
        """A list holding promises becomes the output of a node that makes the list."""
        if not isinstance(value, (list, tuple)) or not any(isinstance(v, Promise) for v in value):
            return value
        item_type = next(v.type for v in value if isinstance(v, Promise))
        collect = CollectTask(len(value), item_type)
        node = add_node(self._builder, collect, {f"i{k}": v for k, v in enumerate(value)})
        return node.outputs["o0"]

    # --- a run target -------------------------------------------------------------------

    @property
    def graph(self) -> Graph:
        if self._graph is None:
            self._graph = self._builder.build()
        return self._graph

    @property
    def version(self) -> str:
        return graph_version(self.graph)

    @property
    def interface(self) -> Interface:
        outputs = dict(self._output_types)
        kind = "none" if not outputs else "single" if len(outputs) == 1 else "tuple"
        return Interface(
            inputs={name: p.type for name, p in self.inputs.items()},
            outputs=outputs,
            defaults={},
            output_kind=kind,  # type: ignore[arg-type]
        )

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if args:
            raise SignatureError(
                f"workflow {self.name!r} takes keyword arguments only",
                workflow=self.name,
                fix="call it as "
                + self.name
                + "("
                + ", ".join(f"{n}=..." for n in self.inputs)
                + ")",
            )
        from kernelflow.engine.launch import run_target  # the engine loads on first run

        result = run_target(self, kwargs)
        result.raise_for_status()
        return self.interface.pack(result.outputs)

    def __repr__(self) -> str:
        return f"<ImperativeWorkflow {self.name}: {len(self.graph.nodes)} tasks>"


class CollectTask(Task):
    """Makes a list of its inputs ``i0, i1, ...``: a list of promises as one input."""

    def __init__(self, count: int, item_type: Any) -> None:
        self.name = "collect"
        self.count = count
        self.options = TaskOptions()
        self.interface = Interface(
            inputs={f"i{k}": item_type for k in range(count)},
            outputs={"o0": list[item_type]},  # type: ignore[valid-type]
            defaults={},
            output_kind="single",
        )

    @functools.cached_property
    def code_hash(self) -> str:  # type: ignore[override]
        return f"collect:{self.count}:{type_name(self.interface.inputs.get('i0'))}"

    def run(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        return {"o0": [inputs[f"i{k}"] for k in range(self.count)]}
