"""Cells to a typed graph: who produces each name, who reads it, and in what order.

Everything here happens before any task runs, so every mistake in the notebook's
structure (two producers of a name, a read of a name nothing defines, a cycle,
an unknown option, a cell that does not parse) is refused here, naming the cells
and the names.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kernelflow._core.errors import (
    DefinitionError,
    DuplicateProducerError,
    KernelflowWarning,
    UndefinedNameError,
)
from kernelflow._core.graph import Binding, Graph, GraphBuilder, Node, NodeId, NodeOutput, Param
from kernelflow._core.interface import Interface
from kernelflow._core.task import TaskOptions
from kernelflow.notebook.analysis import CellAnalysis, analyze_cell
from kernelflow.notebook.cell_task import CellTask
from kernelflow.notebook.cells import NotebookCell, TaskSpec
from kernelflow.notebook.environment import Environment
from kernelflow.notebook.parameters import ParameterDecl


@dataclass
class _TaskCell:
    cell: NotebookCell
    spec: TaskSpec
    analysis: CellAnalysis
    outputs: list[str] = field(default_factory=list)
    inputs: dict[str, Binding] = field(default_factory=dict)
    setup_refs: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class NotebookGraph:
    """The graph and what the front ends need to know beside it."""

    graph: Graph
    tasks: Mapping[str, CellTask]
    setup_cells: tuple[NotebookCell, ...]
    report_cells: tuple[NotebookCell, ...]  # read task outputs: not part of the workflow


def build_graph(
    cells: Sequence[NotebookCell],
    params: Mapping[str, ParameterDecl],
    environment: Environment,
    type_namespace: Mapping[str, Any],
) -> NotebookGraph:
    """Turn classified cells into a graph of :class:`CellTask` nodes."""
    tasks = _analyze_tasks(cells)
    if not tasks:
        raise DefinitionError(
            "the notebook has no task cells",
            fix="start a cell with %%task NAME (or tag it task:NAME) to make it a task",
        )
    setup = [c for c in cells if c.kind == "setup"]
    setup_defs, report = _setup_defs(setup, tasks)
    _decide_outputs(tasks)
    _refuse_duplicates(tasks, params, setup_defs)
    producers = {name: t for t in tasks.values() for name in t.outputs}
    for task_cell in tasks.values():
        _bind_inputs(task_cell, params, producers, setup_defs)
    builder = GraphBuilder()
    for name, decl in params.items():
        builder.add_param(name, decl.type, decl.default)
    built = {}
    previous: list[str] = []
    for name, task_cell in tasks.items():
        built[name] = _cell_task(task_cell, params, tasks, environment, type_namespace)
        after = _after(task_cell, tasks, previous)
        builder.add_node(
            Node(NodeId(name), built[name], dict(task_cell.inputs), after=after, label=name)
        )
        previous.append(name)
    consumed = {
        (b.node, b.output)
        for t in tasks.values()
        for b in t.inputs.values()
        if isinstance(b, NodeOutput)
    }
    for name, task_cell in tasks.items():
        for output in task_cell.outputs:
            if (name, output) not in consumed:
                builder.set_output(output, NodeOutput(NodeId(name), output))
    return NotebookGraph(
        builder.build(), built, tuple(c for c in setup if c not in report), tuple(report)
    )


def _analyze_tasks(cells: Sequence[NotebookCell]) -> dict[str, _TaskCell]:
    tasks: dict[str, _TaskCell] = {}
    for cell in cells:
        if cell.kind != "task" or cell.spec is None:
            continue
        if cell.spec.name in tasks:
            first = tasks[cell.spec.name].cell.label
            raise DuplicateProducerError(
                f"two cells are named task {cell.spec.name!r}: {first} and {cell.label}",
                task=cell.spec.name,
                cells=[first, cell.label],
                fix="give each task cell its own name",
            )
        analysis = analyze_cell(cell.body, cell=cell.label, line_offset=1)
        tasks[cell.spec.name] = _TaskCell(cell, cell.spec, analysis)
    return tasks


def _setup_defs(
    setup: Sequence[NotebookCell], tasks: Mapping[str, _TaskCell]
) -> tuple[dict[str, str], list[NotebookCell]]:
    """Names the setup cells define (name -> cell label), and the cells that read task
    outputs, which cannot run before the tasks and so are left out of the workflow."""
    task_defs = {name for t in tasks.values() for name in t.analysis.defs}
    defs: dict[str, str] = {}
    report = []
    for cell in setup:
        analysis = analyze_cell(cell.body, cell=cell.label)
        reads_tasks = sorted(set(analysis.refs) & task_defs - set(defs))
        if reads_tasks:
            report.append(cell)
            warnings.warn(
                f"{cell.label} reads {', '.join(map(repr, reads_tasks))}, produced by a task; "
                "it is not part of the workflow (make it a %%task cell to include it)",
                KernelflowWarning,
                stacklevel=3,
            )
            continue
        for name in analysis.defs:
            defs.setdefault(name, cell.label)
    return defs, report


def _decide_outputs(tasks: Mapping[str, _TaskCell]) -> None:
    """Outputs: ``--outputs`` exactly, else names other tasks read plus annotated names."""
    for name, task_cell in tasks.items():
        defs = [d for d in task_cell.analysis.defs if d not in task_cell.analysis.imports]
        if task_cell.spec.outputs is not None:
            missing = [o for o in task_cell.spec.outputs if o not in defs]
            if missing:
                raise DefinitionError(
                    f"task {name!r} declares output {missing[0]!r} with --outputs, "
                    "but its cell never assigns it",
                    task=name,
                    variable=missing[0],
                    cell=task_cell.cell.label,
                    fix=f"assign {missing[0]!r} in the cell, or remove it from --outputs",
                )
            task_cell.outputs = list(task_cell.spec.outputs)
            continue
        read_elsewhere = {r for other, t in tasks.items() if other != name for r in t.analysis.refs}
        task_cell.outputs = [
            d
            for d in defs
            if not d.startswith("_")
            and (d in read_elsewhere or d in task_cell.analysis.annotations)
        ]


def _refuse_duplicates(
    tasks: Mapping[str, _TaskCell],
    params: Mapping[str, ParameterDecl],
    setup_defs: Mapping[str, str],
) -> None:
    seen: dict[str, str] = {name: "the parameters cell" for name in params}
    for name, value in setup_defs.items():
        seen.setdefault(name, value)
    for task_name, task_cell in tasks.items():
        for output in task_cell.outputs:
            if output in seen:
                raise DuplicateProducerError(
                    f"{output!r} is produced twice: by {seen[output]} and by task "
                    f"{task_name!r} ({task_cell.cell.label})",
                    variable=output,
                    cells=[seen[output], task_cell.cell.label],
                    fix=f"every name has one producer: rename one of the two {output!r}",
                )
            seen[output] = f"task {task_name!r} ({task_cell.cell.label})"
        for rebound in task_cell.analysis.rebinds:
            if rebound in seen or rebound in params:
                raise DefinitionError(
                    f"task {task_name!r} ({task_cell.cell.label}) assigns to {rebound!r}, "
                    f"which it reads from {seen.get(rebound, 'the parameters cell')}",
                    task=task_name,
                    variable=rebound,
                    cell=task_cell.cell.label,
                    fix=f"assign to a new name (e.g. {rebound}_2 = ...) instead of "
                    f"changing {rebound!r}",
                )


def _bind_inputs(
    task_cell: _TaskCell,
    params: Mapping[str, ParameterDecl],
    producers: Mapping[str, _TaskCell],
    setup_defs: Mapping[str, str],
) -> None:
    name = task_cell.spec.name
    for ref in task_cell.analysis.refs:
        producer = producers.get(ref)
        if producer is not None and producer is not task_cell:
            task_cell.inputs[ref] = NodeOutput(NodeId(producer.spec.name), ref)
        elif ref in params:
            task_cell.inputs[ref] = Param(ref)
        elif ref in setup_defs:
            task_cell.setup_refs.append(ref)
        elif task_cell.analysis.opaque is None and not ref.startswith("_"):
            raise UndefinedNameError(
                f"task {name!r} ({task_cell.cell.label}) reads {ref!r}, which no parameter, "
                "task or setup cell defines",
                task=name,
                variable=ref,
                cell=task_cell.cell.label,
                fix=f"define {ref!r} in a setup cell, the parameters cell, or another task "
                "(check the spelling)",
            )
    for mutation in task_cell.analysis.mutations:
        if mutation.name in task_cell.inputs:
            warnings.warn(
                f"task {name!r} changes its input {mutation.name!r} in place "
                f"(line {mutation.line}: {mutation.text.strip()}); the producer's cached value "
                "no longer matches what this task saw. Copy it first "
                f"({mutation.name}_2 = {mutation.name}.copy()).",
                KernelflowWarning,
                stacklevel=4,
            )


def _cell_task(
    task_cell: _TaskCell,
    params: Mapping[str, ParameterDecl],
    tasks: Mapping[str, _TaskCell],
    environment: Environment,
    type_namespace: Mapping[str, Any],
) -> CellTask:
    spec = task_cell.spec
    analysis = task_cell.analysis
    inputs = {
        ref: _input_type(binding, params, tasks, type_namespace)
        for ref, binding in task_cell.inputs.items()
    }
    outputs = {o: _declared_type(tasks[spec.name], o, type_namespace) for o in task_cell.outputs}
    if spec.map is not None:
        if spec.map not in inputs:
            raise DefinitionError(
                f"task {spec.name!r} maps over {spec.map!r}, which is not one of its inputs "
                f"({', '.join(inputs) or 'none'})",
                task=spec.name,
                variable=spec.map,
                cell=task_cell.cell.label,
                fix="--map names a list the cell reads from a parameter or another task",
            )
        outputs = {o: list[t] for o, t in outputs.items()}  # type: ignore[valid-type]
    cache = spec.cache
    if analysis.opaque is not None:
        warnings.warn(
            f"task {spec.name!r} ({task_cell.cell.label}) cannot be analysed reliably "
            f"({analysis.opaque}); it is not cached and runs after the tasks before it",
            KernelflowWarning,
            stacklevel=4,
        )
        cache = False
    kind = "none" if not outputs else "single" if len(outputs) == 1 else "tuple"
    return CellTask(
        name=spec.name,
        cell=task_cell.cell.label,
        analysis=analysis,
        interface=Interface(inputs=inputs, outputs=outputs, defaults={}, output_kind=kind),
        options=TaskOptions(
            cache=cache,
            cache_version=spec.cache_version,
            retries=spec.retries,
            timeout=spec.timeout,
        ),
        setup_refs=tuple(sorted(set(task_cell.setup_refs))),
        environment=environment,
        map_over=spec.map,
    )


def _input_type(
    binding: Binding,
    params: Mapping[str, ParameterDecl],
    tasks: Mapping[str, _TaskCell],
    type_namespace: Mapping[str, Any],
) -> Any:
    if isinstance(binding, Param):
        return params[binding.name].type
    assert isinstance(binding, NodeOutput)
    producer = tasks[binding.node]
    declared = _declared_type(producer, binding.output, type_namespace)
    return list[declared] if producer.spec.map is not None else declared  # type: ignore[valid-type]


def _declared_type(task_cell: _TaskCell, name: str, type_namespace: Mapping[str, Any]) -> Any:
    text = task_cell.analysis.annotations.get(name)
    if text is None:
        return Any
    try:
        return eval(text, dict(type_namespace))  # the user's own annotation
    except Exception as error:
        raise DefinitionError(
            f"task {task_cell.spec.name!r} ({task_cell.cell.label}) annotates {name!r} as "
            f"{text!r}, which cannot be resolved: {type(error).__name__}: {error}",
            task=task_cell.spec.name,
            variable=name,
            cell=task_cell.cell.label,
            fix="import the type in a setup cell (imports there are read for annotations)",
        ) from error


def _after(
    task_cell: _TaskCell, tasks: Mapping[str, _TaskCell], previous: Sequence[str]
) -> tuple[NodeId, ...]:
    after = []
    for other in task_cell.spec.after:
        if other not in tasks:
            raise DefinitionError(
                f"task {task_cell.spec.name!r} runs --after {other!r}, which is not a task; "
                f"the tasks are: {', '.join(tasks)}",
                task=task_cell.spec.name,
                cell=task_cell.cell.label,
                fix="name an existing task after --after",
            )
        after.append(NodeId(other))
    if task_cell.analysis.opaque is not None:
        after.extend(NodeId(p) for p in previous)
    return tuple(dict.fromkeys(after))
