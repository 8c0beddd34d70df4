"""Cells to a typed graph: who produces each version of a name, who reads it, in what order.

Notebooks are written top to bottom, and people rebind names step by step
(``df = load()``, then ``df = df.dropna()``) or change them in place
(``df["x"] = ...``). So a name can have several *versions*, one per task that
binds it or changes it in place, and a read binds to the nearest version
*before* the reading cell in notebook order (``df@load``, then ``df@clean``).
Only when no version comes before the read does a later one count, and then
it must be the only one: otherwise the order cannot decide, and that is an
error naming the cells. A task that changes an input in place gets its own
copy of it, so a value in the cache is never changed under another task.

Files are edges too: a file named by a literal path that one task writes
(``df.to_csv("clean.csv")``) and a later one reads (``pd.read_csv("clean.csv")``)
is the pseudo-value ``file:clean.csv`` passed between them (its content hash),
so the reader runs after the writer and again when the file changes; a file
read that no task writes is an input by its content hash.

Imports, functions and classes that a task cell defines are code, not data:
they become setup for the other cells (and part of their cache keys, by
source), never task outputs.

Everything here happens before any task runs. Every mistake in the notebook's
structure is collected, and all of them are reported together
(:class:`~kernelflow.errors.NotebookErrors`), each naming its cell by the
notebook's own index.
"""

from __future__ import annotations

import ast
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from kernelflow._core.errors import (
    DefinitionError,
    DuplicateProducerError,
    KernelflowWarning,
    NotebookErrors,
    UndefinedNameError,
)
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
from kernelflow._core.interface import Interface
from kernelflow._core.resources import Requirements
from kernelflow._core.task import TaskOptions
from kernelflow.notebook.analysis import CellAnalysis, analyze_cell
from kernelflow.notebook.cell_task import CellTask, file_name, file_state, is_file_name, path_of
from kernelflow.notebook.cells import NotebookCell, TaskSpec
from kernelflow.notebook.environment import Environment
from kernelflow.notebook.parameters import ParameterDecl


@dataclass
class _TaskCell:
    cell: NotebookCell
    spec: TaskSpec
    analysis: CellAnalysis
    order: int
    values: list[str] = field(default_factory=list)  # data names it binds or changes
    outputs: list[str] = field(default_factory=list)
    inputs: dict[str, Binding] = field(default_factory=dict)
    setup_refs: list[str] = field(default_factory=list)
    copies: list[str] = field(default_factory=list)  # inputs it changes in place

    @property
    def name(self) -> str:
        return self.spec.name


@dataclass(frozen=True)
class NotebookGraph:
    """The graph and what the front ends need to know beside it."""

    graph: Graph
    tasks: Mapping[str, CellTask]
    setup_cells: tuple[NotebookCell, ...]
    report_cells: tuple[NotebookCell, ...]  # read task outputs: not part of the workflow
    versions: Mapping[tuple[str, str], str] = field(default_factory=dict)
    """(task, output) -> its versioned name (``df@clean``) where a name has several."""


class _Errors:
    """Build errors, collected: the user fixes them all in one round."""

    def __init__(self) -> None:
        self.found: list[DefinitionError] = []

    def add(self, error: DefinitionError) -> None:
        self.found.append(error)

    def raise_if_any(self) -> None:
        if len(self.found) == 1:
            raise self.found[0]
        if self.found:
            raise NotebookErrors(self.found)


def build_graph(
    cells: Sequence[NotebookCell],
    params: Mapping[str, ParameterDecl],
    environment: Environment,
    type_namespace: Mapping[str, Any],
    *,
    known_code: Mapping[str, str] | None = None,
) -> NotebookGraph:
    """Turn classified cells into a graph of :class:`CellTask` nodes.

    The notebook loader and the kernel session both build their graphs here, so
    they agree on versions, outputs, errors and cache keys. ``known_code`` names
    code defined outside the cells (a kernel's modules and functions), by where
    it comes from.

    Raises
    ------
    DefinitionError
        One mistake in the notebook's structure; :class:`NotebookErrors` for several.
    """
    errors = _Errors()
    setup = [c for c in cells if c.kind == "setup"]
    tasks = _analyze_tasks(cells, _code_names(setup), errors)
    if not tasks and not errors.found:
        raise DefinitionError(
            "the notebook has no task cells",
            fix="start a cell with %%task NAME (or tag it task:NAME) to make it a task",
        )
    setup_defs, report = _setup_defs(setup, tasks)
    setup_defs.update(known_code or {})
    code_cells = _code_of_tasks(tasks)
    for cell in code_cells:
        for name in analyze_cell(cell.body, cell=cell.label).defs:
            setup_defs.setdefault(name, cell.label)
    versions = _versions(tasks)
    for task_cell in tasks.values():
        _bind_inputs(task_cell, params, versions, setup_defs, errors)
    _decide_outputs(tasks, errors)
    errors.raise_if_any()
    graph, built = _graph(tasks, params, environment, type_namespace, errors)
    setup_cells = tuple(c for c in setup if c not in report) + tuple(code_cells)
    return NotebookGraph(graph, built, setup_cells, tuple(report), _version_names(tasks))


def _code_names(setup: Sequence[NotebookCell]) -> set[str]:
    """Names setup cells bind to modules, functions and classes: never task data."""
    names: set[str] = set()
    for cell in setup:
        try:
            analysis = analyze_cell(cell.body, cell=cell.label)
        except DefinitionError:
            continue  # reported where the cell is run
        names.update(analysis.imports, analysis.definitions)
    return names


def _analyze_tasks(
    cells: Sequence[NotebookCell], setup_code: set[str], errors: _Errors
) -> dict[str, _TaskCell]:
    """Each task cell analysed, with the data names it binds or changes (its versions)."""
    tasks: dict[str, _TaskCell] = {}
    analyses = []
    for order, cell in enumerate(cells):
        if cell.kind != "task" or cell.spec is None:
            continue
        if cell.spec.name in tasks:
            first = tasks[cell.spec.name].cell.label
            errors.add(
                DuplicateProducerError(
                    f"two cells are named task {cell.spec.name!r}: {first} and {cell.label}",
                    task=cell.spec.name,
                    cells=[first, cell.label],
                    fix="give each task cell its own name",
                )
            )
            continue
        try:
            analysis = analyze_cell(cell.body, cell=cell.label, line_offset=1)
        except DefinitionError as error:
            errors.add(error)
            continue
        tasks[cell.spec.name] = _TaskCell(cell, cell.spec, analysis, order)
        analyses.append(analysis)
    code = setup_code.union(
        *(set(a.imports) | set(a.definitions) | set(a.resources) for a in analyses)
    )
    for task_cell in tasks.values():
        analysis = task_cell.analysis
        changed = [m.name for m in analysis.mutations if m.name not in analysis.defs]
        task_cell.values = [
            name
            for name in dict.fromkeys([*analysis.defs, *changed])
            if name not in code and not name.startswith("_")
        ]
        task_cell.values += [file_name(path) for path in analysis.writes]
    return tasks


def _setup_defs(
    setup: Sequence[NotebookCell], tasks: Mapping[str, _TaskCell]
) -> tuple[dict[str, str], list[NotebookCell]]:
    """Names the setup cells define (name -> cell label), and the cells that read task
    outputs, which cannot run before the tasks and so are left out of the workflow."""
    task_values = {name for t in tasks.values() for name in t.values}
    defs: dict[str, str] = {}
    report = []
    for cell in setup:
        analysis = analyze_cell(cell.body, cell=cell.label)
        reads_tasks = sorted(set(analysis.refs) & task_values - set(defs))
        if reads_tasks:
            report.append(cell)
            _warn(
                cell,
                f"{cell.label} reads {', '.join(map(repr, reads_tasks))}, produced by a task; "
                "it is not part of the workflow (make it a %%task cell to include it)",
            )
            continue
        for name in analysis.defs:
            defs.setdefault(name, cell.label)
    return defs, report


_CODE_STATEMENTS = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def _code_of_tasks(tasks: Mapping[str, _TaskCell]) -> list[NotebookCell]:
    """The imports, functions and classes of each task cell, as setup cells of their own.

    They run before the tasks (in workers and exports too), so a later task can
    use them; a task cell still runs its whole body, these statements included.
    """
    cells = []
    for task_cell in tasks.values():
        body = code_statements(task_cell.analysis)
        if body:
            label = f"{task_cell.cell.label}: imports and definitions"
            cells.append(replace(task_cell.cell, kind="setup", body=body, label=label, spec=None))
    return cells


def code_statements(analysis: CellAnalysis) -> str:
    """The imports, ``def`` and ``class`` statements of a cell, as source ('' if none)."""
    if not analysis.imports and not analysis.definitions:
        return ""
    statements = [
        ast.get_source_segment(analysis.source, node) or ""
        for node in ast.parse(analysis.source).body
        if isinstance(node, _CODE_STATEMENTS)
    ]
    return "\n\n".join(statement for statement in statements if statement)


def _versions(tasks: Mapping[str, _TaskCell]) -> dict[str, list[_TaskCell]]:
    """Each data name -> the tasks that make a version of it, in notebook order."""
    versions: dict[str, list[_TaskCell]] = {}
    for task_cell in tasks.values():
        for name in task_cell.values:
            versions.setdefault(name, []).append(task_cell)
    return versions


def _bind_inputs(
    task_cell: _TaskCell,
    params: Mapping[str, ParameterDecl],
    versions: Mapping[str, list[_TaskCell]],
    setup_defs: Mapping[str, str],
    errors: _Errors,
) -> None:
    name = task_cell.name
    files = [file_name(path) for path in task_cell.analysis.reads]
    for ref in [*task_cell.analysis.refs, *files]:
        producers = [t for t in versions.get(ref, []) if t is not task_cell]
        before = [t for t in producers if t.order < task_cell.order]
        if before:
            task_cell.inputs[ref] = NodeOutput(NodeId(before[-1].name), ref)
        elif is_file_name(ref) and not producers:  # a file that exists before the run
            task_cell.inputs[ref] = Const(file_state(path_of(ref)))
        elif ref in params:
            task_cell.inputs[ref] = Param(ref)
        elif ref in setup_defs:
            task_cell.setup_refs.append(ref)
        elif len(producers) == 1:  # one producer, further down: dataflow decides
            task_cell.inputs[ref] = NodeOutput(NodeId(producers[0].name), ref)
        elif producers:
            cells = [t.cell.label for t in producers]
            errors.add(
                DuplicateProducerError(
                    f"task {name!r} ({task_cell.cell.label}) reads {ref!r} before any cell "
                    f"makes it, and {len(producers)} later cells do ({', '.join(cells)}): "
                    "the notebook order cannot decide which one it means",
                    task=name,
                    variable=ref,
                    cells=[task_cell.cell.label, *cells],
                    fix=f"move the cell that makes the {ref!r} this task needs above it, "
                    "or give the versions different names",
                )
            )
        elif task_cell.analysis.opaque is None and not ref.startswith("_"):
            errors.add(
                UndefinedNameError(
                    f"task {name!r} ({task_cell.cell.label}) reads {ref!r}, which no "
                    "parameter, task or setup cell defines",
                    task=name,
                    variable=ref,
                    cell=task_cell.cell.label,
                    fix=f"define {ref!r} in a setup cell, the parameters cell, or another "
                    "task (check the spelling)",
                )
            )
    rebound = set(task_cell.analysis.defs)
    task_cell.copies = [
        m.name
        for m in task_cell.analysis.mutations
        if m.name in task_cell.inputs and m.name not in rebound
    ]
    task_cell.copies = list(dict.fromkeys(task_cell.copies))


def _decide_outputs(tasks: Mapping[str, _TaskCell], errors: _Errors) -> None:
    """``--outputs`` exactly; else the versions other tasks read, annotated names, and
    every data name of a leaf task (one whose values no task reads): its results."""
    read: dict[str, set[str]] = {name: set() for name in tasks}
    for task_cell in tasks.values():
        for ref, binding in task_cell.inputs.items():
            if isinstance(binding, NodeOutput):
                read[binding.node].add(ref)
    for name, task_cell in tasks.items():
        if task_cell.spec.outputs is not None:
            missing = [o for o in task_cell.spec.outputs if o not in task_cell.analysis.defs]
            if missing:
                errors.add(
                    DefinitionError(
                        f"task {name!r} declares output {missing[0]!r} with --outputs, "
                        "but its cell never assigns it",
                        task=name,
                        variable=missing[0],
                        cell=task_cell.cell.label,
                        fix=f"assign {missing[0]!r} in the cell, or remove it from --outputs",
                    )
                )
            task_cell.outputs = list(task_cell.spec.outputs)
            continue
        leaf = not read[name]
        annotated = task_cell.analysis.annotations
        task_cell.outputs = [
            value
            for value in task_cell.values
            if value in read[name] or ((leaf or value in annotated) and not is_file_name(value))
        ]


def _graph(
    tasks: Mapping[str, _TaskCell],
    params: Mapping[str, ParameterDecl],
    environment: Environment,
    type_namespace: Mapping[str, Any],
    errors: _Errors,
) -> tuple[Graph, dict[str, CellTask]]:
    builder = GraphBuilder()
    for name, decl in params.items():
        builder.add_param(name, decl.type, decl.default)
    built: dict[str, CellTask] = {}
    previous: list[str] = []
    for name, task_cell in tasks.items():
        try:
            built[name] = _cell_task(task_cell, params, tasks, environment, type_namespace)
            after = _after(task_cell, tasks, previous)
        except DefinitionError as error:
            errors.add(error)
            continue
        builder.add_node(
            Node(NodeId(name), built[name], dict(task_cell.inputs), after=after, label=name)
        )
        previous.append(name)
    errors.raise_if_any()
    consumed = {
        (b.node, b.output)
        for t in tasks.values()
        for b in t.inputs.values()
        if isinstance(b, NodeOutput)
    }
    final: dict[str, str] = {}
    for name, task_cell in tasks.items():
        for output in task_cell.outputs:
            if (name, output) not in consumed and not is_file_name(output):
                final[output] = name  # the latest unread version gets the plain name
    for name, task_cell in tasks.items():
        for output in task_cell.outputs:
            if (name, output) not in consumed and not is_file_name(output):
                key = output if final[output] == name else f"{output}@{name}"
                builder.set_output(key, NodeOutput(NodeId(name), output))
    return builder.build(), built


def _version_names(tasks: Mapping[str, _TaskCell]) -> dict[tuple[str, str], str]:
    """``df@load``, ``df@clean``: the names of versions, where a name has several."""
    makers: dict[str, list[str]] = {}
    for task_cell in tasks.values():
        for output in task_cell.outputs:
            makers.setdefault(output, []).append(task_cell.name)
    return {
        (task, output): f"{output}@{task}"
        for output, names in makers.items()
        if len(names) > 1
        for task in names
    }


def _warn(cell: NotebookCell, message: str, line: int = 1) -> None:
    """A warning attributed to the user's cell, not to kernelflow's own source."""
    warnings.warn_explicit(
        message, KernelflowWarning, filename=f"<{cell.label}>", lineno=line, module="kernelflow"
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
        _warn(
            task_cell.cell,
            f"task {spec.name!r} ({task_cell.cell.label}) cannot be analysed reliably "
            f"({analysis.opaque}); it is not cached and runs after the tasks before it",
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
        copies=tuple(task_cell.copies),
        requirements=Requirements(enable_deck=True) if spec.deck else None,
    )


def _input_type(
    binding: Binding,
    params: Mapping[str, ParameterDecl],
    tasks: Mapping[str, _TaskCell],
    type_namespace: Mapping[str, Any],
) -> Any:
    if isinstance(binding, Param):
        return params[binding.name].type
    if isinstance(binding, Const):  # a file's content hash
        return str
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
