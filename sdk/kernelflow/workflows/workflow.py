"""Workflows: a function body traced once, at definition, into a typed graph.

Inside a ``@workflow`` body, task calls do not run: each adds a node to the graph
and returns :class:`Promise` objects that stand for its outputs. Passing a promise
to another task draws an edge, and the two declared types are checked there and
then, so a type mismatch is an error when the module is imported, not hours into
a run. Calling the finished :class:`Workflow` runs the graph through the engine.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import typing
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from kernelflow._core.errors import (
    DefinitionError,
    KernelflowWarning,
    SignatureError,
    TypeMismatchError,
)
from kernelflow._core.graph import (
    REQUIRED,
    Binding,
    Const,
    Graph,
    GraphBuilder,
    Node,
    NodeId,
    NodeOutput,
    Param,
)
from kernelflow._core.interface import (
    Interface,
    check_value,
    interface_from_function,
    is_compatible,
    type_name,
)
from kernelflow._core.task import Task
from kernelflow._core.version import graph_version
from kernelflow.workflows.failure import WorkflowFailurePolicy, run_on_failure
from kernelflow.workflows.overrides import override_node
from kernelflow.workflows.promise_ops import (
    CollectTask,
    GetTask,
    Step,
    describe_step,
    node_suffix,
    result_type,
)

_builder: contextvars.ContextVar[GraphBuilder | None] = contextvars.ContextVar(
    "kernelflow_builder", default=None
)


# Values of these types have no items or attributes a workflow would read.
_SCALARS = (int, float, bool, complex, str, bytes, type(None))


def current_builder() -> GraphBuilder | None:
    """The graph being traced, when called from inside a ``@workflow`` body."""
    return _builder.get()


# Set while an ``@eager`` body runs: a task or workflow call there goes to this hook
# (it returns an awaitable), not to the engine directly.
_call_hook: contextvars.ContextVar[Callable[[Any, Mapping[str, Any]], Any] | None] = (
    contextvars.ContextVar("kernelflow_call_hook", default=None)
)


def current_call_hook() -> Callable[[Any, Mapping[str, Any]], Any] | None:
    """What calls a task or workflow outside a traced body, when not the engine (``@eager``)."""
    return _call_hook.get()


def set_call_hook(hook: Callable[[Any, Mapping[str, Any]], Any] | None) -> contextvars.Token[Any]:
    return _call_hook.set(hook)


def reset_call_hook(token: contextvars.Token[Any]) -> None:
    _call_hook.reset(token)


# Set while a ``conditional(...)`` is open: it turns a comparison of promises into a condition.
_condition_hook: contextvars.ContextVar[Callable[[Any, str, Any], Any] | None] = (
    contextvars.ContextVar("kernelflow_condition_hook", default=None)
)


def _comparison(op: str) -> Callable[..., Any]:
    def compare(self: Promise, other: Any = None) -> Any:
        hook = _condition_hook.get()
        if hook is None:
            return self._no_value()
        return hook(self, op, other)

    compare.__name__ = f"compare {op}"
    return compare


def condition_hook(hook: Callable[[Any, str, Any], Any] | None) -> contextvars.Token[Any]:
    """Comparisons of promises call ``hook(promise, op, other)`` until the token is reset."""
    return _condition_hook.set(hook)


def reset_condition_hook(token: contextvars.Token[Any]) -> None:
    _condition_hook.reset(token)


class Promise:
    """Stands for a value that exists only when the workflow runs.

    It can be passed to tasks and returned from the workflow; anything that needs
    its value (``if``, ``len``, arithmetic, iteration) is an error, because the
    workflow body runs once at definition time, before any task has run.
    """

    __slots__ = ("binding", "producer", "type")

    def __init__(self, binding: Binding, type_: Any, producer: str) -> None:
        self.binding = binding
        self.type = type_
        self.producer = producer

    def _no_value(self, *_: Any, **__: Any) -> Any:
        raise DefinitionError(
            f"{self.producer} has no value while the workflow is being defined",
            producer=self.producer,
            fix="pass it to a task and do the computation inside that task; "
            "a workflow body only wires tasks together",
        )

    def __getattr__(self, name: str) -> Promise:
        if name.startswith("_"):  # copy, pickle and friends probe for dunders
            raise AttributeError(name)
        return self._access(("attr", name))

    def __getitem__(self, key: Any) -> Promise:
        return self._access(("item", key))

    def _access(self, step: Step) -> Promise:
        """``out.field`` / ``out[0]`` / ``out["k"]``: a getter node, run with the workflow."""
        builder = current_builder()
        if builder is None or self.type in _SCALARS or isinstance(step[1], Promise):
            self._no_value()
        where = self.producer
        result = result_type(self.type, step, where)
        getter = GetTask(step, self.type, result)
        binding = self.binding
        base = (
            binding.node if isinstance(binding, NodeOutput) else getattr(binding, "name", "value")
        )
        node = builder.add_node(
            Node(
                builder.unique_id(f"{base}{node_suffix(step)}"),
                getter,
                {"value": self.binding},
                label=f"{where}{describe_step(step)}",
            )
        )
        return Promise(NodeOutput(node.id, "o0"), result, f"{where}{describe_step(step)}")

    def _placeholder(self, *_: Any) -> str:
        """``str()``, ``print()`` and f-strings give a placeholder, as in Flyte, with a
        warning: its text is not the value, and a string made of it stays wrong."""
        warnings.warn(
            f"{self.producer} is formatted as text while the workflow is being defined: "
            f"the text is a placeholder ({self!r}), not the value. Pass the promise to "
            "a task to use its value (a string made of it here stays a placeholder)",
            KernelflowWarning,
            stacklevel=2,
        )
        return repr(self)

    __str__ = __format__ = _placeholder
    __bool__ = __len__ = __iter__ = __index__ = __float__ = __int__ = _no_value
    __contains__ = __round__ = __abs__ = __neg__ = __pos__ = _no_value
    # ``==`` too: object's would answer False, so ``if n == 0`` would pick a branch silently.
    __eq__ = __ne__ = __lt__ = __gt__ = __le__ = __ge__ = _no_value
    __add__ = __sub__ = __mul__ = __truediv__ = __floordiv__ = __mod__ = __pow__ = _no_value
    __radd__ = __rsub__ = __rmul__ = __rtruediv__ = __rfloordiv__ = __rmod__ = __rpow__ = _no_value
    __hash__ = object.__hash__  # defining __eq__ would otherwise make promises unhashable

    def __repr__(self) -> str:
        return f"<Promise {self.producer}: {type_name(self.type)}>"

    def with_overrides(self, **overrides: Any) -> Promise:
        """Options and resources for the task that produces this (issue 15; see overrides)."""
        _override(self.binding, overrides)
        return self


# Inside ``conditional(...)``, comparisons build conditions (workflows/conditional.py);
# elsewhere they are the definition error above. ``a >> b`` orders two task calls.
# Set here, after the class, so that the class body keeps one rule per line above.
for _op, _method in (
    ("==", "__eq__"),
    ("!=", "__ne__"),
    ("<", "__lt__"),
    ("<=", "__le__"),
    (">", "__gt__"),
    (">=", "__ge__"),
    ("is_true", "is_true"),
    ("is_false", "is_false"),
    ("is_none", "is_none"),
):
    setattr(Promise, _method, _comparison(_op))
Promise.__rshift__ = lambda self, other: run_before(self, other)  # type: ignore[attr-defined]


class Workflow:
    """A traced, typed DAG of tasks. Call it with keyword arguments to run it."""

    def __init__(
        self,
        fn: Callable[..., Any],
        name: str | None = None,
        *,
        on_failure: Any = None,
        failure_policy: WorkflowFailurePolicy | None = None,
    ) -> None:
        self.fn = fn
        self.name = name or fn.__name__
        self.on_failure = on_failure  # a task or workflow run after a failed run
        self.failure_policy = failure_policy or WorkflowFailurePolicy.FAIL_IMMEDIATELY
        self.interface: Interface = interface_from_function(fn, kind="workflow")
        self.graph: Graph = _trace(fn, self.name, self.interface)
        functools.update_wrapper(self, fn)

    @functools.cached_property
    def version(self) -> str:
        """Short content hash of the workflow: task code, interfaces, edges, parameters."""
        return graph_version(self.graph)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if args:
            raise SignatureError(
                f"workflow {self.name!r} was called with {len(args)} positional argument(s); "
                "workflows take keyword arguments only",
                workflow=self.name,
                fix=f"call it as {self.name}("
                + ", ".join(f"{n}=..." for n in self.interface.inputs)
                + ")",
            )
        builder = current_builder()
        if builder is not None:
            return _inline(builder, self, kwargs)
        hook = current_call_hook()
        if hook is not None:
            return hook(self, kwargs)
        from kernelflow.engine.launch import run_target  # the engine loads on first run

        result = run_target(self, kwargs)
        if result.error is not None and self.on_failure is not None:
            run_on_failure(self.on_failure, result.params, result.error)
        result.raise_for_status()
        return self.interface.pack(result.outputs)

    def __repr__(self) -> str:
        return f"<Workflow {self.name}: {len(self.graph.nodes)} tasks>"


def workflow(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    on_failure: Any = None,
    failure_policy: WorkflowFailurePolicy | None = None,
) -> Any:
    """Trace a typed function into a :class:`Workflow` (``@workflow``).

    ``on_failure`` (a task or workflow) runs after a failed run with the inputs
    it declares and ``err``; ``failure_policy`` is Flyte's, accepted (see
    :class:`~kernelflow.workflows.failure.WorkflowFailurePolicy`).
    """
    options = {"on_failure": on_failure, "failure_policy": failure_policy}
    if fn is None:
        return lambda function: Workflow(function, name=name, **options)
    return Workflow(fn, name=name, **options)


# --- tracing --------------------------------------------------------------------


def _trace(fn: Callable[..., Any], name: str, interface: Interface) -> Graph:
    builder = GraphBuilder()
    promises = {}
    for input_name, input_type in interface.inputs.items():
        default = interface.defaults.get(input_name, REQUIRED)
        if default is not REQUIRED:
            _check_constant(default, input_type, where=f"default of workflow input {input_name!r}")
        binding = builder.add_param(input_name, input_type, default)
        promises[input_name] = Promise(binding, input_type, f"workflow input {input_name!r}")
    token = _builder.set(builder)
    try:
        result = fn(**promises)
        # Still tracing: a returned list or dict of promises adds a node that builds it.
        for output_name, binding in _returned_bindings(name, interface, result):
            builder.set_output(output_name, binding)
    finally:
        _builder.reset(token)
    return builder.build()


@contextlib.contextmanager
def tracing(builder: GraphBuilder) -> Iterator[GraphBuilder]:
    """Task calls inside the block add nodes to ``builder`` (a conditional's branch)."""
    token = _builder.set(builder)
    try:
        yield builder
    finally:
        _builder.reset(token)


def trace_call(call: Callable[[], Any], name: str, interface: Interface) -> Graph:
    """Trace ``call()``, a body given values rather than promises (``@dynamic``), into a graph."""
    builder = GraphBuilder()
    with tracing(builder):  # still tracing: returning a list of promises may add a node
        result = call()
        for output_name, binding in _returned_bindings(name, interface, result):
            builder.set_output(output_name, binding)
    return builder.build()


def bind_value(value: Any, expected: Any, *, where: str) -> Binding:
    """The type-checked binding of ``value`` (a promise or a constant) for ``expected``."""
    return _bind(value, expected, where=where)


def output_promises(node: Node, interface: Interface) -> Any:
    """What a call of ``node`` gives a workflow body: its output promises, or a handle."""
    return _output_promises(node, interface)


def _returned_bindings(
    name: str, interface: Interface, result: Any
) -> Iterator[tuple[str, Binding]]:
    if interface.output_kind == "none":
        return
    if interface.output_kind == "single":
        values = {"o0": result}
    else:
        if not isinstance(result, tuple) or len(result) != len(interface.outputs):
            raise TypeMismatchError(
                f"workflow {name!r} must return {len(interface.outputs)} values "
                f"({type_name(tuple(interface.outputs.values()))}), got {result!r}",
                workflow=name,
                fix="return one promise or constant per declared output",
            )
        values = dict(zip(interface.outputs, result))
    for output_name, value in values.items():
        expected = interface.outputs[output_name]
        where = f"output {output_name!r} of workflow {name!r}"
        yield output_name, _bind(value, expected, where=where)


def _bind(value: Any, expected: Any, *, where: str) -> Binding:
    """The binding for ``value`` feeding something declared ``expected``, type-checked."""
    if isinstance(value, Promise):
        if not is_compatible(value.type, expected):
            raise TypeMismatchError(
                f"{where} expects {type_name(expected)}, but {value.producer} "
                f"is declared {type_name(value.type)}",
                expected=type_name(expected),
                actual=type_name(value.type),
                fix="change one of the two annotations so that they agree",
            )
        return value.binding
    if _contains_promise(value):
        return _collect(value, expected, where=where)
    _check_constant(value, expected, where=where)
    return Const(value)


def _collect(value: Any, expected: Any, *, where: str) -> Binding:
    """A list or dict holding promises: a node that builds it when the workflow runs."""
    builder = current_builder()
    if builder is None or not isinstance(value, (list, dict)):
        raise DefinitionError(
            f"{where} got a {type(value).__name__} containing promises; "
            "only a list or a dict of promises can be passed",
            fix="pass the values through a task that builds them, or use map_task",
        )
    origin, args = typing.get_origin(expected), typing.get_args(expected)
    if isinstance(value, list):
        keys: list[Any] = list(range(len(value)))
        items = value
        element = args[0] if origin in (list, Sequence) and args else Any
    else:
        keys, items = list(value), list(value.values())
        element = args[1] if origin in (dict, Mapping) and len(args) == 2 else Any
    kind = "list" if isinstance(value, list) else "dict"
    if element is Any and expected is not Any and origin is None and expected is not object:
        raise TypeMismatchError(
            f"{where} expects {type_name(expected)}, got a {kind}",
            expected=type_name(expected),
            actual=kind,
            fix="pass a value of the declared type",
        )
    collector = CollectTask(kind, keys, [element] * len(items), expected)
    bindings = {
        f"i{index}": _bind(item, element, where=f"{where}[{key!r}]")
        for index, (key, item) in enumerate(zip(keys, items))
    }
    node = builder.add_node(
        Node(builder.unique_id(f"collect_{kind}"), collector, bindings, label=f"{kind} for {where}")
    )
    return NodeOutput(node.id, "o0")


def _check_constant(value: Any, expected: Any, *, where: str) -> None:
    problem = check_value(value, expected)
    if problem is not None:
        raise TypeMismatchError(
            f"{where} expects {type_name(expected)}, got {problem}",
            expected=type_name(expected),
            actual=problem,
            fix="pass a value of the declared type",
        )


def _contains_promise(value: Any) -> bool:
    if isinstance(value, (list, tuple, set)):
        return any(isinstance(item, Promise) or _contains_promise(item) for item in value)
    if isinstance(value, dict):
        return any(isinstance(item, Promise) or _contains_promise(item) for item in value.values())
    return False


def add_call(builder: GraphBuilder, task: Task, kwargs: Mapping[str, Any]) -> Any:
    """Add a node for ``task(**kwargs)`` to the traced graph; return its output promises."""
    bindings = bind_inputs(task, kwargs, bind=_bind)
    node = builder.add_node(Node(builder.unique_id(task.name), task, bindings, label=task.name))
    return _output_promises(node, task.interface)


def bind_inputs(task: Task, kwargs: Mapping[str, Any], *, bind: Callable[..., Any]) -> dict:
    """Check a call's keyword arguments against the task's interface and bind each."""
    interface = task.interface
    _refuse_unknown_inputs("task", task.name, interface.inputs, kwargs)
    bindings = {}
    for name, expected in interface.inputs.items():
        if name in kwargs:
            value = kwargs[name]
        elif name in interface.defaults:
            value = interface.defaults[name]
        else:
            raise SignatureError(
                f"task {task.name!r} is missing input {name!r} ({type_name(expected)})",
                task=task.name,
                variable=name,
                fix=f"pass {name}=... when calling {task.name}",
            )
        bindings[name] = bind(value, expected, where=f"input {name!r} of task {task.name!r}")
    return bindings


def _refuse_unknown_inputs(
    kind: str, name: str, inputs: Iterable[str], kwargs: Mapping[str, Any]
) -> None:
    """A keyword the task or workflow does not declare (a typo, usually) is an error."""
    known = list(inputs)
    unknown = [keyword for keyword in kwargs if keyword not in known]
    if unknown:
        raise SignatureError(
            f"{kind} {name!r} has no input {unknown[0]!r}; "
            f"its inputs are: {', '.join(known) or '(none)'}",
            variable=unknown[0],
            fix="check the spelling of the keyword argument",
            **{kind: name},
        )


def _output_promises(node: Node, interface: Interface) -> Any:
    promises = [
        Promise(NodeOutput(node.id, name), type_, f"output {name!r} of task {node.id!r}")
        for name, type_ in interface.outputs.items()
    ]
    if interface.output_kind == "none":
        return NodeHandle(node.id)
    if interface.output_kind == "single":
        return promises[0]
    if interface.output_kind == "namedtuple":
        return interface.namedtuple_type(*promises)
    return tuple(promises)


class NodeHandle:
    """What a task without outputs returns in a workflow body: the node, for ordering."""

    def __init__(self, node: NodeId) -> None:
        self.node = node

    def __rshift__(self, other: Any) -> Any:
        return run_before(self, other)

    def __repr__(self) -> str:
        return f"<NodeHandle {self.node}>"

    def with_overrides(self, **overrides: Any) -> NodeHandle:
        _override(NodeOutput(self.node, ""), overrides)
        return self


def _override(binding: Any, overrides: Mapping[str, Any]) -> None:
    builder = current_builder()
    if builder is None or not isinstance(binding, NodeOutput):
        raise DefinitionError(
            "with_overrides() applies to a task called in a @workflow body",
            fix="call it on what the task call returned, inside the workflow",
        )
    override_node(builder, binding.node, overrides)


class NodeGroup:
    """What a nested workflow without outputs returns in a workflow body: its nodes, for ``>>``."""

    def __init__(self, nodes: tuple[NodeId, ...]) -> None:
        self.nodes = nodes

    def __rshift__(self, other: Any) -> Any:
        return run_before(self, other)

    def __repr__(self) -> str:
        return f"<NodeGroup {', '.join(self.nodes)}>"


def nodes_of(item: Any) -> tuple[NodeId, ...]:
    """The nodes a promise, a handle, a group or a node reference stands for (for ``>>``)."""
    if isinstance(item, Promise):
        if isinstance(item.binding, NodeOutput):
            return (item.binding.node,)
    elif isinstance(item, NodeGroup):
        return item.nodes
    elif isinstance(getattr(item, "node", None), str):
        return (NodeId(item.node),)
    raise DefinitionError(
        f"{item!r} is not the result of a task call, so it cannot be ordered with >>",
        fix="use >> between task calls: first >> second",
    )


def run_before(first: Any, second: Any, builder: GraphBuilder | None = None) -> Any:
    """``first >> second``: ``second`` waits for ``first`` though no data flows between them."""
    builder = builder or current_builder()
    if builder is None:
        raise DefinitionError(
            ">> orders the nodes of a workflow being defined; here nothing is being defined",
            fix="use >> inside a @workflow body or between nodes of an imperative Workflow",
        )
    before = nodes_of(first)
    for after in nodes_of(second):
        waits = builder.node(after).after
        builder.update(after, after=(*waits, *(n for n in before if n not in waits)))
    return second


def _inline(builder: GraphBuilder, child: Workflow, kwargs: Mapping[str, Any]) -> Any:
    """A nested workflow call: copy its nodes into the parent graph under a prefix.

    One with its own ``on_failure`` is one node instead, which runs it and its handler.
    """
    # First, as for a task: a misspelled input would otherwise be reported as a missing one.
    _refuse_unknown_inputs("workflow", child.name, child.graph.params, kwargs)
    if child.on_failure is not None:
        # Imported here: subworkflow.py builds on this module (through dynamic.py).
        from kernelflow.workflows.subworkflow import SubWorkflowTask

        return add_call(builder, SubWorkflowTask(child), kwargs)
    params = {}
    for name, spec in child.graph.params.items():
        if name in kwargs:
            params[name] = _bind(kwargs[name], spec.type, where=f"input {name!r} of {child.name!r}")
        elif spec.default is not REQUIRED:
            params[name] = Const(spec.default)
        else:
            raise SignatureError(
                f"workflow {child.name!r} is missing input {name!r}",
                workflow=child.name,
                variable=name,
                fix=f"pass {name}=...",
            )
    prefix = builder.unique_id(child.name)
    renamed = {node_id: NodeId(f"{prefix}.{node_id}") for node_id in child.graph.nodes}

    def remap(binding: Binding) -> Binding:
        if isinstance(binding, NodeOutput):
            return NodeOutput(renamed[binding.node], binding.output)
        if isinstance(binding, Param):
            return params[binding.name]
        return binding

    for node_id in child.graph.order:
        node = child.graph.nodes[node_id]
        builder.add_node(
            Node(
                renamed[node_id],
                node.task,
                {k: remap(b) for k, b in node.bindings.items()},
                after=tuple(renamed[a] for a in node.after),
                label=f"{prefix}.{node.label or node.task.name}",
            )
        )
    outputs = {
        name: Promise(remap(binding), child.interface.outputs[name], f"output {name!r} of {prefix}")
        for name, binding in child.graph.outputs.items()
    }
    if child.interface.output_kind == "none":
        return NodeGroup(tuple(renamed.values()))  # for ``sub_a() >> sub_b()``
    if child.interface.output_kind == "single":
        return outputs["o0"]
    values = [outputs[name] for name in child.interface.outputs]
    if child.interface.output_kind == "namedtuple":
        return child.interface.namedtuple_type(*values)
    return tuple(values)


# --- running a task outside a workflow --------------------------------------------


def run_task_directly(task: Task, kwargs: Mapping[str, Any]) -> Any:
    """``task(x=1)`` outside a workflow: a one-node workflow, run through the engine."""
    bindings = bind_inputs(task, kwargs, bind=_bind)
    builder = GraphBuilder()
    node = builder.add_node(Node(NodeId(task.name), task, bindings, label=task.name))
    for output_name in task.interface.outputs:
        builder.set_output(output_name, NodeOutput(node.id, output_name))
    from kernelflow.engine.launch import run_target
    from kernelflow.engine.runner import GraphTarget

    result = run_target(GraphTarget(task.name, builder.build()), {})
    result.raise_for_status()
    return task.interface.pack(result.outputs)
