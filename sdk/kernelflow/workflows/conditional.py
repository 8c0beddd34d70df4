"""``conditional``: branches in a workflow, chosen at run time, only the taken one runs.

Flyte's form, in a ``@workflow`` body::

    result = (
        conditional("size")
        .if_((x >= 0) & (x < 10)).then(small(x=x))
        .elif_(x < 100).then(medium(x=x))
        .else_().fail("x is too large")
    )

While a conditional is open, comparing promises builds a condition instead of
raising, and the task calls of each branch go to the branch, not the workflow.
The whole conditional is one node whose inputs are the promises its conditions
and branches read; each branch's outputs are checked against the first
branch's when the workflow is defined. At run time the node evaluates the
conditions on real values, runs the taken branch's tasks as a nested run under
its id (``size.small``), and records the others as skipped.
"""

from __future__ import annotations

import hashlib
import operator
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from kernelflow._core.errors import DefinitionError, TaskFailedError, TypeMismatchError
from kernelflow._core.graph import (
    Binding,
    Const,
    Graph,
    GraphBuilder,
    Node,
    NodeId,
    NodeOutput,
    Param,
)
from kernelflow._core.interface import Interface, is_compatible, type_name
from kernelflow._core.task import Task, TaskOptions
from kernelflow.engine.context import current_context
from kernelflow.engine.nested import record_skipped
from kernelflow.workflows.dynamic import run_graph_here, under
from kernelflow.workflows.task import CallableTask
from kernelflow.workflows.workflow import (
    NodeHandle,
    Promise,
    condition_hook,
    current_builder,
    output_promises,
    reset_condition_hook,
    tracing,
)

# --- conditions -----------------------------------------------------------------------

_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "is_true": lambda value, _: value is True,
    "is_false": lambda value, _: value is False,
    "is_none": lambda value, _: value is None,
}


@dataclass(frozen=True)
class Ref:
    """An operand read from an input of the conditional node."""

    name: str


class Condition:
    """A test on the values of promises; combine with ``&`` and ``|`` (not ``and``/``or``)."""

    def evaluate(self, values: Mapping[str, Any]) -> bool:
        raise NotImplementedError

    def __and__(self, other: Condition) -> Condition:
        return Junction("&", self, _condition(other))

    def __or__(self, other: Condition) -> Condition:
        return Junction("|", self, _condition(other))

    def __bool__(self) -> bool:
        raise DefinitionError(
            f"the condition {self} has no truth value while the workflow is being defined",
            fix="combine conditions with & and | (not and/or), and test them with "
            "conditional(...).if_(...)",
        )


@dataclass(frozen=True, eq=False)
class Comparison(Condition):
    op: str
    left: Any
    right: Any = None

    def evaluate(self, values: Mapping[str, Any]) -> bool:
        def value(operand: Any) -> Any:
            return values[operand.name] if isinstance(operand, Ref) else operand

        return bool(_OPERATORS[self.op](value(self.left), value(self.right)))

    def __str__(self) -> str:
        left = self.left.name if isinstance(self.left, Ref) else repr(self.left)
        if self.op.startswith("is_"):
            return f"{left}.{self.op}()"
        right = self.right.name if isinstance(self.right, Ref) else repr(self.right)
        return f"({left} {self.op} {right})"


@dataclass(frozen=True, eq=False)
class Junction(Condition):
    op: str
    left: Condition
    right: Condition

    def evaluate(self, values: Mapping[str, Any]) -> bool:
        if self.op == "&":
            return self.left.evaluate(values) and self.right.evaluate(values)
        return self.left.evaluate(values) or self.right.evaluate(values)

    def __str__(self) -> str:
        return f"({self.left} {self.op} {self.right})"


def _condition(value: Any) -> Condition:
    if not isinstance(value, Condition):
        raise DefinitionError(
            f"a conditional needs a condition, got {value!r}",
            fix="compare a promise (x > 0, x == y) or test it (x.is_true(), x.is_none())",
        )
    return value


# --- the node -------------------------------------------------------------------------


@dataclass(frozen=True)
class Branch:
    """One case: its condition (None for else), its graph, or the message it fails with."""

    condition: Condition | None
    graph: Graph | None
    failure: str | None = None


class ConditionalTask(Task):
    """The node of a conditional: evaluates the conditions, runs the taken branch."""

    def __init__(self, name: str, interface: Interface, branches: list[Branch]) -> None:
        self.name = name
        self.interface = interface
        self.options = TaskOptions()
        self.branches = branches

    def _tasks(self) -> Iterator[Task]:
        for branch in self.branches:
            if branch.graph is not None:
                for node in branch.graph.nodes.values():
                    yield node.task

    @property
    def code_hash(self) -> str:
        text = "|".join(
            f"{branch.condition}:{branch.failure}:"
            + ",".join(
                f"{node_id}={node.task.code_hash}" for node_id, node in branch.graph.nodes.items()
            )
            if branch.graph is not None
            else f"{branch.condition}:{branch.failure}"
            for branch in self.branches
        )
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def modules(self) -> Mapping[str, str]:
        found: dict[str, str] = {}
        for task in self._tasks():
            found.update(task.modules)
        return found

    @property
    def portable(self) -> bool:
        return all(task.portable for task in self._tasks())

    def run(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        taken = next(
            (b for b in self.branches if b.condition is None or b.condition.evaluate(inputs)),
            None,
        )
        prefix = current_context().node
        record_skipped(
            (f"{prefix}.{node_id}", node.task.name)
            for branch in self.branches
            if branch is not taken and branch.graph is not None
            for node_id, node in branch.graph.nodes.items()
        )
        if taken is None and not self.interface.outputs:
            return {}  # no else_, and no condition holds: the conditional does nothing
        if taken is None:
            raise TaskFailedError(
                f"no branch of conditional {self.name!r} was taken for {dict(inputs)!r}",
                task=self.name,
                fix="add an .else_() branch",
            )
        if taken.failure is not None:
            raise TaskFailedError(
                f"conditional {self.name!r} failed: {taken.failure}",
                task=self.name,
                fix="the workflow's inputs chose a branch that fails on purpose",
            )
        assert taken.graph is not None
        params = {name: inputs[name] for name in taken.graph.params}
        return run_graph_here(under(taken.graph, prefix), prefix, params)


# --- building it ------------------------------------------------------------------------


@dataclass
class _Case:
    condition: Condition | None
    nodes: list[Node] = field(default_factory=list)
    result: Any = None
    failure: str | None = None


class ConditionalSection:
    """A conditional being defined: ``.if_(c).then(...)``, ``.elif_``, ``.else_()``."""

    def __init__(self, name: str) -> None:
        outer = current_builder()
        if outer is None:
            raise DefinitionError(
                f"conditional({name!r}) is used outside a workflow",
                fix="use conditional(...) inside a @workflow or @dynamic body; "
                "in plain Python, use if",
            )
        self.name = name
        self.outer = outer
        self.branch_builder = _BranchBuilder()
        # the node's inputs: binding (or id of a constant's) -> (input name, type, binding)
        self.inputs: dict[Any, tuple[str, Any, Binding]] = {}
        self.cases: list[_Case] = []
        self._hook = condition_hook(self._compare)
        self._tracing: Any = None
        self.finished = False
        outer.before_build(self._finish_if_open)

    # conditions: promises become inputs of the node
    def _compare(self, promise: Promise, op: str, other: Any) -> Any:
        if current_builder() not in (self.outer, self.branch_builder):
            return promise._no_value()  # this conditional was left unfinished, by an error
        right = self._operand(other) if isinstance(other, Promise) else other
        if isinstance(other, Condition):
            raise DefinitionError("a condition cannot be compared", fix="use & and |")
        return Comparison(op, self._operand(promise), right)

    def _operand(self, promise: Promise) -> Ref:
        return Ref(self._input(promise.binding, promise.type))

    def _input(self, binding: Binding, type_: Any) -> str:
        key: Any = ("const", id(binding)) if isinstance(binding, Const) else binding
        if key not in self.inputs:
            self.inputs[key] = (f"in{len(self.inputs)}", type_, binding)
        return self.inputs[key][0]

    # the chain
    def if_(self, condition: Condition) -> _Then:
        if self.cases:
            raise DefinitionError(f"conditional {self.name!r} already has an if_", fix="use elif_")
        return self._open(_condition(condition))

    def elif_(self, condition: Condition) -> _Then:
        if not self.cases:
            raise DefinitionError(f"conditional {self.name!r} starts with if_", fix="use if_")
        return self._open(_condition(condition))

    def else_(self) -> _Then:
        if not self.cases:
            raise DefinitionError(f"conditional {self.name!r} starts with if_", fix="use if_")
        return self._open(None)

    def _open(self, condition: Condition | None) -> _Then:
        case = _Case(condition)
        self.cases.append(case)
        start = len(self.branch_builder.added)
        self._tracing = tracing(self.branch_builder)
        self._tracing.__enter__()
        return _Then(self, case, start)

    def _close(self, case: _Case, start: int) -> None:
        self._tracing.__exit__(None, None, None)
        self._tracing = None
        case.nodes = list(self.branch_builder.added[start:])

    def _finish_if_open(self) -> None:
        """The workflow ends with the conditional still open (no ``else_``)."""
        if self.finished:
            return
        if not self.cases or self._tracing is not None:
            raise DefinitionError(
                f"conditional {self.name!r} was left unfinished",
                fix="complete each case: .if_(condition).then(task(...))",
            )
        if any(_shape(case.result)[1] for case in self.cases if case.failure is None):
            raise DefinitionError(
                f"conditional {self.name!r} has outputs but no else_ branch",
                fix="end it with .else_().then(...) or .else_().fail('message')",
            )
        self._finish()  # side effects only: when no condition holds, nothing runs

    def _finish(self) -> Any:
        self.finished = True
        reset_condition_hook(self._hook)
        results = [c for c in self.cases if c.failure is None]
        kinds, types = _shape(results[0].result) if results else ("none", [])
        for index, case in enumerate(results[1:], start=2):
            _, found = _shape(case.result)
            compatible = len(found) == len(types) and all(
                is_compatible(a, b) or is_compatible(b, a) for a, b in zip(found, types)
            )
            if not compatible:
                raise TypeMismatchError(
                    f"branch {index} of conditional {self.name!r} gives "
                    f"{_types_text(found)}, but the first gives {_types_text(types)}",
                    expected=_types_text(types),
                    actual=_types_text(found),
                    fix="make every branch return the same outputs, of the same types",
                )
        outputs = {f"o{i}": type_ for i, type_ in enumerate(types)}
        branches = [self._branch(case, outputs) for case in self.cases]
        interface = Interface(
            inputs={name: type_ for name, type_, _ in self.inputs.values()},
            outputs=outputs,
            defaults={},
            output_kind=("none" if not types else "single" if kinds == "single" else "tuple"),
        )
        task = ConditionalTask(self.name, interface, branches)
        bindings = {name: binding for name, _, binding in self.inputs.values()}
        node_id = self.outer.unique_id(self.name)
        node = self.outer.add_node(Node(node_id, task, bindings, label=self.name))
        return output_promises(node, interface)

    def _branch(self, case: _Case, outputs: Mapping[str, Any]) -> Branch:
        if case.failure is not None:
            return Branch(case.condition, None, case.failure)
        inside = {node.id for node in case.nodes}
        builder = GraphBuilder()

        def remap(binding: Binding, type_: Any) -> Binding:
            if isinstance(binding, NodeOutput) and binding.node in inside:
                return NodeOutput(_unmarked(binding.node), binding.output)
            if isinstance(binding, Const):
                return binding
            name = self._input(binding, type_)
            builder.add_param(name, type_)
            return Param(name)

        for node in case.nodes:
            inputs = node.task.interface.inputs
            bindings = {k: remap(b, inputs.get(k)) for k, b in node.bindings.items()}
            after = tuple(_unmarked(a) for a in node.after if a in inside)
            label = node.label.replace(_MARK, "")
            builder.add_node(Node(_unmarked(node.id), node.task, bindings, after, label))
        values = _promises(case.result)
        for (name, type_), promise in zip(outputs.items(), values):
            builder.set_output(name, remap(promise.binding, type_))
        return Branch(case.condition, builder.build())


class _Then:
    """The half-written case: ``.then(task(...))`` or ``.fail("message")``."""

    def __init__(self, section: ConditionalSection, case: _Case, start: int) -> None:
        self.section = section
        self.case = case
        self.start = start

    def then(self, result: Any) -> Any:
        self.section._close(self.case, self.start)
        self.case.result = result
        _shape(result)  # refuse anything but promises now, where the user wrote it
        if self.case.condition is None:
            return self.section._finish()
        return self.section

    def fail(self, message: str) -> Any:
        self.section._close(self.case, self.start)
        self.case.failure = message
        if self.case.condition is None:
            return self.section._finish()
        return self.section


class Echo(CallableTask):
    """A task that passes its inputs on as outputs of the same names (Flyte's ``Echo``).

    A branch of a conditional that has nothing to compute: ``.then(echo(x=x))``.
    """

    def __init__(self, name: str, inputs: Mapping[str, Any] | None = None) -> None:
        self.name = name
        self.options = TaskOptions()
        declared = dict(inputs or {})
        kind = "none" if not declared else "single" if len(declared) == 1 else "tuple"
        self.interface = Interface(
            inputs=declared,
            outputs=declared,
            defaults={},
            output_kind=kind,  # type: ignore[arg-type]
        )

    @property
    def code_hash(self) -> str:
        return "echo"

    def run(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        return dict(inputs)


def conditional(name: str) -> ConditionalSection:
    """Start a conditional named ``name`` in a workflow body (Flyte's ``conditional``)."""
    return ConditionalSection(name)


def _promises(result: Any) -> list[Promise]:
    if result is None or isinstance(result, NodeHandle):
        return []
    if isinstance(result, Promise):
        return [result]
    return list(result)


def _shape(result: Any) -> tuple[str, list[Any]]:
    if result is None or isinstance(result, NodeHandle):
        return "none", []
    if isinstance(result, Promise):
        return "single", [result.type]
    if isinstance(result, tuple) and all(isinstance(p, Promise) for p in result):
        return "tuple", [p.type for p in result]
    raise DefinitionError(
        f"then() takes the result of a task call, got {result!r}",
        fix="call a task inside then(...): .then(my_task(x=x))",
    )


def _types_text(types: list[Any]) -> str:
    return "no outputs" if not types else ", ".join(type_name(t) for t in types)


# Marks the ids of branch nodes while they are traced, so that none can be taken for a
# node of the workflow around the conditional with the same name.
_MARK = "\x00branch\x00"


def _unmarked(node_id: NodeId) -> NodeId:
    return NodeId(node_id.replace(_MARK, ""))


class _BranchBuilder(GraphBuilder):
    """Collects the nodes of a conditional's branches, in the order they are added."""

    def __init__(self) -> None:
        super().__init__()
        self.added: list[Node] = []

    def unique_id(self, base: str) -> NodeId:
        return NodeId(_MARK + super().unique_id(base))

    def add_node(self, node: Node) -> Node:
        self.added.append(super().add_node(node))
        return node
