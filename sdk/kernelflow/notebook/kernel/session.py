"""The per-kernel session: task cells registered so far, and runs through the engine.

In a kernel the notebook is whatever the user has run: each ``%%task`` cell
registers (or replaces) a task; names the tasks read that no task produces come
from the live namespace: modules, functions and classes are setup code (part of
the cache key by their source), other values are workflow parameters whose
defaults are their current values (``-p NAME VALUE`` overrides them), typed by
those values as the loader types an unannotated parameters cell.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import os
import sys
import types
import weakref
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kernelflow._core.errors import DefinitionError, KernelflowError, UndefinedNameError
from kernelflow._core.graph import Const, GraphBuilder, Node, NodeId, NodeOutput
from kernelflow._core.hashing import hash_or_none
from kernelflow._core.interface import Interface, type_name
from kernelflow._core.resources import Requirements
from kernelflow._core.task import TaskOptions
from kernelflow.engine.events import Listener
from kernelflow.engine.runner import GraphTarget, RunResult
from kernelflow.notebook.analysis import CellAnalysis, analyze_cell
from kernelflow.notebook.build import build_graph, code_statements
from kernelflow.notebook.cell_task import CellTask, file_name, file_state, is_file_name
from kernelflow.notebook.cells import NotebookCell, TaskSpec, parse_header
from kernelflow.notebook.environment import is_code, register_source
from kernelflow.notebook.kernel.capture import OutputSink, capture_task_outputs, figures_of_task
from kernelflow.notebook.kernel.deck import displays_to_deck
from kernelflow.notebook.kernel.states import TaskStates, TaskStatus
from kernelflow.notebook.parameters import ParameterDecl, infer_type

RUNS_REMEMBERED = 200


@dataclass
class RegisteredCell:
    """A task cell as the kernel last ran it."""

    spec: TaskSpec
    body: str
    analysis: CellAnalysis

    @functools.cached_property
    def values(self) -> frozenset[str]:
        """The names the cell binds or changes: the versions it may make."""
        return frozenset([*self.analysis.defs, *(m.name for m in self.analysis.mutations)])


class KernelEnvironment:
    """Task bodies run in the user's namespace, as cells do, so their output shows.

    The body is the analysis' source, where magics and ``!cmd`` are already
    calls of ``get_ipython()``: it is compiled once and run directly, its last
    expression goes to the display hook and an error shows IPython's traceback,
    as in a cell, without the ~0.3 ms (in a kernel) of a nested ``run_cell``.
    What does not compile as plain Python (top-level ``await``) runs as a nested
    cell. One difference remains: a bare name that is an automagic (``pwd`` alone
    on a line) is plain Python, so it is a NameError here, as in a script.
    """

    portable = False  # the kernel's namespace cannot be rebuilt in a worker

    def __init__(self, shell: Any) -> None:
        self.shell = shell

    def namespace(self) -> dict[str, Any]:
        return self.shell.user_ns

    def execute(self, code: str, filename: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
        self.shell.user_ns.update(inputs)
        compiled = self._compile(code)
        # Displays go to the deck too with --deck; figures show under the task when
        # %workflow run captures outputs (each a no-op otherwise).
        with displays_to_deck(self.shell), figures_of_task(self.shell):
            if compiled is None:
                self._run_as_cell(code)
            else:
                self._run(compiled)
        return self.shell.user_ns

    def _run_as_cell(self, code: str) -> None:
        result = self.shell.run_cell(code, store_history=False, silent=False)
        error = result.error_before_exec or result.error_in_exec
        if error is not None:
            raise error

    def _run(self, compiled: _Compiled) -> None:
        namespace = self.shell.user_ns
        try:
            exec(compiled.body, namespace)
            if compiled.last is not None:  # 'single' mode: the value goes to the display hook
                exec(compiled.last, namespace)
        except BaseException as error:
            etype, value, tb = sys.exc_info()
            # From the cell's first frame, as IPython shows a cell's error.
            self.shell.showtraceback((etype, value, tb.tb_next if tb else None))
            raise error

    def _compile(self, code: str) -> _Compiled | None:
        """The body as code objects, or None when it needs IPython's transforms."""
        shell = self.shell
        number = max(shell.execution_count - 1, 0)  # the running cell's, in tracebacks
        flags = getattr(shell.compile, "flags", 0)
        return _compile_plain(code, shell.compile, flags, number, shell.displayhook)


@dataclass(frozen=True)
class _Compiled:
    body: types.CodeType
    last: types.CodeType | None


@functools.lru_cache(maxsize=256)  # a --map cell runs one body for every item
def _compile_plain(
    code: str, compiler: Any, flags: int, number: int, displayhook: Any
) -> _Compiled | None:
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return None  # IPython syntax left in the body: a nested cell transforms it
    # Registered with IPython's compiler, so tracebacks show the cell's lines.
    name = compiler.cache(code, number) if hasattr(compiler, "cache") else "<kernelflow task>"
    quiet = getattr(displayhook, "semicolon_at_end_of_expression", None)
    shown = not (quiet and quiet(code))  # 'x;' shows nothing, as in a cell
    last = None
    if shown and tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.Interactive(body=[tree.body.pop()])
    try:
        body = compile(tree, name, "exec", flags=flags, dont_inherit=True)
        value = compile(last, name, "single", flags=flags, dont_inherit=True) if last else None
    except SyntaxError:  # top-level await, and what only IPython's compiler accepts
        return None
    return _Compiled(body, value)


is_setup_object = is_code  # the kernel's name for it


@dataclass
class ExportedRun:
    """The run an exported notebook's task cells join, one cell at a time."""

    run_id: str
    workflow: str
    version: str
    pending: list[str]


class Session:
    """What one kernel knows about its task cells."""

    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self.environment = KernelEnvironment(shell)
        self.cells: dict[str, RegisteredCell] = {}
        self.last_run: RunResult | None = None
        self.states = TaskStates()
        # The runs this kernel made, oldest first (each %%task cell is one): where
        # %workflow lineage looks first. Ids only, so old values are not kept alive.
        self.run_ids: deque[str] = deque(maxlen=RUNS_REMEMBERED)
        self.exported: ExportedRun | None = None
        # The code each task last ran (or was restored) with, and the tasks registered
        # since with other code: what a cell's status line checks its upstream against,
        # without building the workflow (``stale_upstream``).
        self.ran_code: dict[str, str] = {}
        self.edited: set[str] = set()
        # The id of the cell being run (JupyterLab sends it; None elsewhere), and the
        # task each cell id last registered: a cell whose task is renamed replaces it.
        self.cell_id: str | None = None
        self.cell_tasks: dict[str, str] = {}
        # Values the tasks read from outside the tasks (plain cells, parameters), as
        # they were when read: a task that rebinds the name later (``df = df.dropna()``)
        # does not change what the earlier readers read, as a setup cell in a file. And
        # which object each name got from a task last, to tell a plain cell's rebinding.
        self.outside: dict[str, Any] = {}
        self.task_made: dict[str, Any] = {}
        # Per task, the outside values it last ran with (tokens): a parameter changed
        # since makes it stale for the status lines of its readers.
        self.read_outside: dict[str, dict[str, Any]] = {}
        self.code_defined: set[str] = set()  # deferred cells whose code has been run
        # (cell order, names made, names read unbound) up to the last cell: see
        # _summary_before_last; the next one is committed when a cell is added.
        self._summary: tuple[tuple[str, ...], set[str], set[str]] | None = None
        self._next_summary: tuple[tuple[str, ...], set[str], set[str]] | None = None

    def note_cell(self, info: Any) -> None:
        """IPython's ``pre_run_cell`` event: remember which cell is running."""
        self.cell_id = getattr(info, "cell_id", None)

    def begin_exported_run(
        self, workflow: str, version: str, params: Mapping[str, Any], tasks: Sequence[str]
    ) -> str:
        """Open one run of an exported workflow; its task cells will be recorded in it."""
        import os

        from kernelflow.engine.runner import new_run_id, run_environment
        from kernelflow.store.home import open_store

        run_id = new_run_id()
        open_store().runs.start_run(
            run_id=run_id,
            workflow=workflow,
            version=version,
            params=params,
            environment=run_environment({}),
            pid=os.getpid(),
        )
        self.exported = ExportedRun(run_id, workflow, version, list(tasks))
        return run_id

    def exported_run_of(self, name: str) -> str | None:
        """The id of the exported run task ``name`` is still to join, if any."""
        run = self.exported
        return run.run_id if run is not None and name in run.pending else None

    def exported_task_done(self, name: str, result: RunResult) -> None:
        """Finish the exported run when its last task succeeded, or when one failed."""
        from kernelflow.store.home import open_store

        run = self.exported
        if run is None or name not in run.pending:
            return
        run.pending.remove(name)
        failed = result.status != "succeeded"
        if failed or not run.pending:
            open_store().runs.finish_run(
                run.run_id,
                status="failed" if failed else "succeeded",
                error=str(result.error) if result.error else None,
            )
            self.exported = None

    def register_cell(self, header: str, body: str) -> TaskSpec:
        """``%%task HEADER`` over ``body``: parse the header, register the cell, return its spec."""
        spec = parse_header(header, cell="this cell")
        self.register(spec, body)
        return spec

    def run(self, target: GraphTarget, params: Mapping[str, Any], **options: Any) -> RunResult:
        """Run ``target`` through the engine and bind what it made into the namespace.

        ``options`` are those of :func:`run_in_kernel`.
        """
        return run_in_kernel(self, target, params, **options)

    def register(self, spec: TaskSpec, body: str) -> RegisteredCell:
        """Parse and remember a task cell, replacing an older version of it in place.

        The cells keep the order they were first run in, which stands for their
        order in the notebook: re-running or editing a cell replaces it where it
        was (JupyterLab sends the cell's id, so a renamed task replaces its old
        name too), so the versions of a name bind as in the file. What the file
        would refuse (an order that cannot decide, a cycle) is refused here too,
        before the body runs, and the session is left as it was.
        """
        analysis = analyze_cell(body, cell=f"task {spec.name!r}", line_offset=1)
        cell = RegisteredCell(spec, body, analysis)
        before = dict(self.cells)
        self._place(spec.name, cell)
        self._note_outside(spec.name)
        try:
            self._check_order(spec.name)
        except DefinitionError:
            self.cells = before
            self._forget_summary()
            raise
        if self.cell_id is not None:
            self.cell_tasks[self.cell_id] = spec.name
        last = self.ran_code.get(spec.name)
        if last is not None and last != analysis.code_hash:
            self.edited.add(spec.name)
        else:
            self.edited.discard(spec.name)
        return cell

    def _place(self, name: str, cell: RegisteredCell) -> None:
        """Put ``cell`` where its earlier version was (by task name, or by cell id when the
        task was renamed), else after the cells registered so far."""
        renamed_from = self.cell_tasks.get(self.cell_id) if self.cell_id is not None else None
        if name in self.cells or renamed_from in self.cells:
            self._forget_summary()  # a cell changed in place: what is made before it too
        if name not in self.cells and renamed_from in self.cells:
            self.cells = {
                (name if other == renamed_from else other): (cell if other == renamed_from else c)
                for other, c in self.cells.items()
            }
        elif name in self.cells:
            self.cells[name] = cell  # in place
        else:
            self._insert_new(name, cell)

    def _insert_new(self, name: str, cell: RegisteredCell) -> None:
        """A cell first run: where the saved notebook has it, among the cells it knows of;
        else (unsaved, or no cell id) after the cells registered so far."""
        order = _saved_cell_order(self.shell.user_ns.get("__session__"))
        position = order.get(self.cell_id) if self.cell_id is not None else None
        if position is None:
            self.cells[name] = cell
            return
        ids = {task: cell_id for cell_id, task in self.cell_tasks.items()}
        items = list(self.cells.items())
        at = next(
            (
                i
                for i, (other, _) in enumerate(items)
                if order.get(ids.get(other, ""), -1) > position
            ),
            len(items),
        )
        items.insert(at, (name, cell))
        self.cells = dict(items)
        if at < len(items) - 1:
            self._forget_summary()

    def _forget_summary(self) -> None:
        self._summary = self._next_summary = None

    def _note_outside(self, name: str) -> None:
        """Remember the values task ``name`` reads from outside the tasks, as they are now."""
        namespace = self.shell.user_ns
        made_before = self._made_before(name)
        for ref in self.cells[name].analysis.refs:
            if ref not in made_before and ref in namespace:
                self._outside_value(ref)

    def _outside_value(self, name: str) -> Any:
        """The value of ``name`` from outside the tasks: the namespace's, unless a task
        bound what the namespace holds, then the one remembered before that."""
        namespace = self.shell.user_ns
        if name in namespace:
            value = namespace[name]
            made = self.task_made.get(name)
            if (made is None or not _is_object(made, value)) and not is_setup_object(value):
                self.outside[name] = value
        return self.outside.get(name, _MISSING)

    def bound_by_task(self, values: Mapping[str, Any]) -> None:
        """A run bound these values into the namespace."""
        for name, value in values.items():
            self.task_made[name] = _token_of(value)

    def _check_order(self, name: str) -> None:
        """Refuse what building the workflow would refuse because of task ``name``.

        Only a cell that reads a name no earlier cell makes, while a later one
        does, can make the order undecidable or close a cycle; that is rare, so
        the whole workflow is built (by the one builder the files use) only then.
        """
        if not self._reads_forward(name):
            return
        try:
            self.workflow()
        except DefinitionError as error:
            for found in getattr(error, "errors", None) or [error]:
                if _concerns(found, name):
                    raise found from None

    def _reads_forward(self, name: str) -> bool:
        """Whether a cell reads a version of a name that only a later cell makes, where
        ``name`` is that cell or the later one."""
        summary = self._summary_before_last(name)
        if summary is not None:  # a cell added at the end, the usual case: no walk
            return not self.cells[name].values.isdisjoint(summary[1])
        made_by = {other: c.values for other, c in self.cells.items()}
        order = list(self.cells)
        index = order.index(name)
        made_before: set[str] = set()
        for position, other in enumerate(order):
            refs = self.cells[other].analysis.refs
            unbound = [ref for ref in refs if ref not in made_before]
            if position < index and any(ref in made_by[name] for ref in unbound):
                return True
            if position == index and any(
                ref in made_by[later] for ref in unbound for later in order[index + 1 :]
            ):
                return True
            made_before |= made_by[other]
        return False

    def task_ran(self, name: str) -> None:
        """Task ``name`` ran (or was restored) with its registered code: it is not edited."""
        cell = self.cells.get(name)
        if cell is not None:
            self.ran_code[name] = cell.analysis.code_hash
            self.edited.discard(name)
            made_before = self._made_before(name)
            read = {
                ref: _token_of(self.outside[ref])
                for ref in cell.analysis.refs
                if ref in self.outside and ref not in made_before
            }
            if read:
                self.read_outside[name] = read
            else:  # only tasks that read outside values are looked at by stale_upstream
                self.read_outside.pop(name, None)

    def _made_before(self, name: str) -> set[str]:
        """The names the cells registered before task ``name`` bind or change."""
        summary = self._summary_before_last(name)
        if summary is not None:
            return summary[0]
        made: set[str] = set()
        for other, cell in self.cells.items():
            if other == name:
                break
            made |= cell.values
        return made

    def _summary_before_last(self, name: str) -> tuple[set[str], set[str]] | None:
        """For the last cell ``name``: what the cells before it make, and what they read
        that no cell before the reader makes. Kept as cells are added at the end, so a
        new cell costs no walk over the others; None when ``name`` is not the last.
        """
        order = tuple(self.cells)
        if not order or order[-1] != name:
            return None
        before = order[:-1]
        stale = self._summary is None or self._summary[0] != before
        if stale and self._next_summary is not None and self._next_summary[0] == before:
            self._summary = self._next_summary  # the cells before only grew at the end
        if self._summary is None or self._summary[0] != before:
            made: set[str] = set()
            unbound: set[str] = set()
            for other in before:
                cell = self.cells[other]
                unbound.update(ref for ref in cell.analysis.refs if ref not in made)
                made |= cell.values
            self._summary = (before, made, unbound)
        _, made, unbound = self._summary
        cell = self.cells[name]
        # Ready for the next cell added after this one (copies: these sets are returned).
        next_made = made | cell.values
        next_unbound = unbound | {ref for ref in cell.analysis.refs if ref not in made}
        self._next_summary = (order, next_made, next_unbound)
        return made, unbound

    def _changed_outside(self, task: str) -> bool:
        """Whether a value task ``task`` read from outside the tasks changed since it ran.

        The same object is unchanged (changes in place are found by ``%workflow
        status``, which hashes); another object is compared by content with what
        the run recorded, so re-running ``n = 3`` changes nothing.
        """
        namespace = self.shell.user_ns
        for ref, token in self.read_outside.get(task, {}).items():
            if _is_object(token, namespace.get(ref, _MISSING)):
                continue  # the usual case, checked without a look at the tasks
            now = self._outside_value(ref)
            if _is_object(token, now):
                continue
            self.states.settle()
            record = self.states.records.get(task)
            if record is None or record.inputs.get(ref) != hash_or_none(now):
                return True
        return False

    def stale_upstream(self, name: str) -> list[str]:
        """The tasks ``name`` reads from that are stale: edited since they ran, or reading one.

        Cheap on every ``%%task`` cell: nothing is looked at unless some task was
        registered with code other than it last ran with (``--defer``, or a cell
        edited and not run). A task's upstream are, for each name it reads, the
        last other registered cell that binds it.
        """
        changed = {task for task in self.read_outside if self._changed_outside(task)}
        if not self.edited and not changed:
            return []
        producers: dict[str, list[str]] = {}
        for other, cell in self.cells.items():
            for made in cell.analysis.defs:
                producers.setdefault(made, []).append(other)

        def upstream(task: str) -> list[str]:
            makers: list[str] = []
            for ref in self.cells[task].analysis.refs:
                maker = next((o for o in reversed(producers.get(ref, ())) if o != task), None)
                if maker is not None and maker not in makers:
                    makers.append(maker)
            return makers

        stale: dict[str, bool] = {}

        def is_stale(task: str, seen: frozenset[str]) -> bool:
            if task not in stale:
                stale[task] = (
                    task in self.edited
                    or task in changed
                    or any(is_stale(up, seen | {task}) for up in upstream(task) if up not in seen)
                )
            return stale[task]

        return [up for up in upstream(name) if is_stale(up, frozenset({name}))]

    def differences_from(self, path: str | os.PathLike[str]) -> list[str]:
        """How the task cells this kernel ran differ from those of the saved ``path``.

        An export is made from the saved file; if the kernel ran other code (a
        cell edited and run, not saved), the export would not be what the user
        just saw: each task whose code differs, or that the file lacks, is named.
        """
        from kernelflow.notebook.load import load_notebook

        saved = load_notebook(path).built.tasks
        found = []
        for name, cell in self.cells.items():
            task = saved.get(name)
            if task is None:
                found.append(f"task {name!r} is not in the file")
            elif task.analysis.code_hash != cell.analysis.code_hash:
                found.append(f"task {name!r} has other code in the file")
        return found

    def statuses(self) -> dict[str, TaskStatus]:
        """Each task's state in this kernel now: ran, cached, failed, stale (why), never run."""
        return self.states.statuses(self.workflow())

    def define_code(self, name: str) -> None:
        """Run a cached cell's imports, functions and classes: later cells use them.

        A cache hit restores a cell's values without running its body; its code
        (``import math``, ``def helper``) is not data and is not cached, so it
        is defined here, as running the cell would have.
        """
        source = code_statements(self.cells[name].analysis)
        if source:
            # With its source findable, a function is hashed by its source, as when the
            # cell ran: the cache keys of the tasks that call it stay the same (issue 11).
            filename = f"<kernelflow code of {name}>"
            register_source(filename, source)
            exec(compile(source, filename, "exec"), self.shell.user_ns)

    def _define_code_of_deferred(self) -> None:
        """Run the imports, functions and classes of cells registered but never run.

        A file's task cells have theirs run before any task (``build.py``); a
        ``--defer``red cell's are defined here, so a task after it can use them
        and its cache key sees the same code as when the cells ran.
        """
        for name, cell in self.cells.items():
            if name not in self.ran_code and cell.analysis.code_hash not in self.code_defined:
                self.define_code(name)
                self.code_defined.add(cell.analysis.code_hash)

    def missing_upstream(self, name: str) -> list[str]:
        """Names the task reads that another registered task produces but that are unset."""
        unset = [ref for ref in self.cells[name].analysis.refs if ref not in self.shell.user_ns]
        if not unset:  # the usual case, and then the other cells need not be looked at
            return []
        produced = {d for other, c in self.cells.items() if other != name for d in c.analysis.defs}
        return [ref for ref in unset if ref in produced]

    # --- graphs ---------------------------------------------------------------

    def single_task(self, name: str) -> GraphTarget:
        """One task cell as a one-node workflow over the current namespace."""
        cell = self.cells[name]
        outputs = self._all_outputs(cell)
        inputs, setup_refs = self._split_refs(cell, produced={})
        bindings: dict[str, Any] = {ref: Const(self.shell.user_ns[ref]) for ref in inputs}
        for path in cell.analysis.reads:  # files as a workflow would see them: by content
            bindings[file_name(path)] = Const(file_state(path))
        task = self._cell_task(cell, list(bindings), outputs, setup_refs)
        builder = GraphBuilder()
        builder.add_node(Node(NodeId(name), task, bindings, label=name))
        for output in outputs:
            if not is_file_name(output):
                builder.set_output(output, NodeOutput(NodeId(name), output))
        return GraphTarget(name, builder.build())

    def workflow(self) -> GraphTarget:
        """Every registered task cell as one workflow, built as a notebook file is.

        The cells count in the order they were registered (run); the names they
        read that no cell makes come from the namespace: modules, functions and
        classes are code, other values are parameters whose defaults are their
        current values (``-p NAME VALUE`` overrides them).
        """
        if not self.cells:
            raise DefinitionError(
                "no task cells have run in this kernel yet",
                fix="run (or --defer) some %%task cells first",
            )
        cells = [
            NotebookCell(index, "task", cell.body, f"task {name!r}", cell.spec)
            for index, (name, cell) in enumerate(self.cells.items(), start=1)
        ]
        self._define_code_of_deferred()
        params, code = self._namespace_inputs()
        built = build_graph(cells, params, self.environment, self.shell.user_ns, known_code=code)
        return GraphTarget(self._name(), built.graph)

    def _namespace_inputs(self) -> tuple[dict[str, ParameterDecl], dict[str, str]]:
        """The names the cells read from the namespace: data (parameters) and code."""
        makers: dict[str, set[str]] = {}
        for name, cell in self.cells.items():
            for made in cell.analysis.defs:
                makers.setdefault(made, set()).add(name)
        namespace = self.shell.user_ns
        params: dict[str, ParameterDecl] = {}
        code: dict[str, str] = {}
        for name, cell in self.cells.items():
            for ref in cell.analysis.refs:
                if ref in params or ref in code:
                    continue
                if makers.get(ref, set()) - {name}:
                    # Made by a task too: a parameter only for the cells that read it
                    # before any task makes it (the build decides), with its value then.
                    value = self._outside_value(ref)
                elif ref in namespace:
                    value = namespace[ref]
                else:
                    continue
                if value is _MISSING:
                    continue
                if is_setup_object(value):
                    code[ref] = "the kernel"
                else:
                    kind = infer_type(value)
                    params[ref] = ParameterDecl(ref, kind, type_name(kind), value)
        return params, code

    def _name(self) -> str:
        path = self.shell.user_ns.get("__session__") or ""
        stem = str(path).rsplit("/", 1)[-1].removesuffix(".ipynb")
        return stem or "notebook"

    def _all_outputs(self, cell: RegisteredCell) -> list[str]:
        """A cell run on its own keeps every value it binds or changes (not code)."""
        if cell.spec.outputs is not None:
            return list(cell.spec.outputs)
        analysis = cell.analysis
        code = set(analysis.imports) | set(analysis.definitions) | set(analysis.resources)
        changed = [m.name for m in analysis.mutations if m.name not in analysis.defs]
        values = [
            name
            for name in dict.fromkeys([*analysis.defs, *changed])
            if name not in code
            and not name.startswith("_")
            and not is_setup_object(self.shell.user_ns.get(name))
        ]
        return values + [file_name(path) for path in analysis.writes]

    def _split_refs(
        self, cell: RegisteredCell, produced: Mapping[str, str]
    ) -> tuple[list[str], list[str]]:
        """The refs that are data inputs, and those that are setup code."""
        inputs, setup = [], []
        namespace = self.shell.user_ns
        for ref in cell.analysis.refs:
            if ref in produced and produced[ref] != cell.spec.name:
                inputs.append(ref)
            elif ref not in namespace:
                if cell.analysis.opaque is None and not ref.startswith("_"):
                    raise UndefinedNameError(
                        f"task {cell.spec.name!r} reads {ref!r}, which is not defined in this "
                        "kernel",
                        task=cell.spec.name,
                        variable=ref,
                        fix=f"run the cell that defines {ref!r} first (or check the spelling)",
                    )
            elif is_setup_object(namespace[ref]):
                setup.append(ref)
            else:
                inputs.append(ref)
        return inputs, setup

    def _cell_task(
        self,
        cell: RegisteredCell,
        inputs: Sequence[str],
        outputs: Iterable[str],
        setup_refs: Sequence[str],
    ) -> CellTask:
        spec = cell.spec
        types_ns = self.shell.user_ns
        declared = {o: _resolve(cell, o, types_ns) for o in outputs}
        if spec.map is not None:
            declared = {o: list[t] for o, t in declared.items()}  # type: ignore[valid-type]
        kind = "none" if not declared else "single" if len(declared) == 1 else "tuple"
        cache = spec.cache and cell.analysis.opaque is None
        return CellTask(
            name=spec.name,
            cell=f"task {spec.name!r}",
            analysis=cell.analysis,
            interface=Interface(
                inputs={i: Any for i in inputs}, outputs=declared, defaults={}, output_kind=kind
            ),
            options=TaskOptions(
                cache=cache,
                cache_version=spec.cache_version,
                retries=spec.retries,
                timeout=spec.timeout,
            ),
            setup_refs=tuple(sorted(set(setup_refs))),
            environment=self.environment,
            map_over=spec.map,
            # No copies of inputs changed in place: a cell run on its own is the only
            # task of its run, and its input is the kernel's own object, which a
            # plain cell would change too; the copy would only cost time.
            requirements=Requirements(enable_deck=True) if spec.deck else None,
        )


def _resolve(cell: RegisteredCell, name: str, namespace: Mapping[str, Any]) -> Any:
    text = cell.analysis.annotations.get(name)
    if text is None:
        return Any
    try:
        return eval(text, dict(namespace))  # the user's own annotation, in their kernel
    except Exception as error:
        raise DefinitionError(
            f"task {cell.spec.name!r} annotates {name!r} as {text!r}, which cannot be "
            f"resolved: {type(error).__name__}: {error}",
            task=cell.spec.name,
            variable=name,
            fix="import the type before running the cell",
        ) from error


_MISSING: Any = object()


def _token_of(value: Any) -> Any:
    """What tells later whether a name still holds ``value``, without keeping a large
    object alive where a weak reference can do."""
    try:
        return weakref.ref(value)
    except TypeError:
        return value


def _is_object(token: Any, value: Any) -> bool:
    return (token() if isinstance(token, weakref.ref) else token) is value


_saved_orders: dict[str, tuple[float, dict[str, int]]] = {}


def _saved_cell_order(path: Any) -> dict[str, int]:
    """Cell id -> position in the saved notebook at ``path`` ({} if there is none).

    Read only when a task cell is run for the first time, and again only when
    the file changed.
    """
    if not path or not str(path).endswith(".ipynb"):
        return {}
    try:
        mtime = os.stat(path).st_mtime
        cached = _saved_orders.get(str(path))
        if cached is not None and cached[0] == mtime:
            return cached[1]
        import nbformat

        notebook = nbformat.read(path, as_version=4)
    except Exception:  # unreadable or not a notebook: the execution order stands
        return {}
    order = {cell.get("id"): i for i, cell in enumerate(notebook.cells) if cell.get("id")}
    _saved_orders[str(path)] = (mtime, order)
    return order


def _concerns(error: DefinitionError, name: str) -> bool:
    """Whether a build error is about task ``name`` (so running its cell must stop)."""
    label = f"task {name!r}"
    return (
        getattr(error, "task", None) == name
        or name in (getattr(error, "cycle", None) or ())
        or label in (getattr(error, "cells", None) or ())
    )


def run_in_kernel(
    session: Session,
    target: GraphTarget,
    params: Mapping[str, Any],
    *,
    listeners: Sequence[Listener],
    force: bool = False,
    tasks: Sequence[str] | None = None,
    resume: str | None = None,
    attach_to: str | None = None,
    parallel: int = 1,
    backend: str = "threading",
    stale_only: bool = False,
    capture: OutputSink | None = None,
) -> RunResult:
    """Run through the engine and bind the produced values into the namespace.

    ``attach_to`` records the nodes in a run that is already open (an exported
    notebook's run) instead of opening a new one. ``stale_only``: tasks that are
    up to date in this kernel are restored from what they last made, not run.
    ``capture`` receives what each task prints and displays, by node, instead
    of the cell (``capture.py``).
    """
    capturing = (
        capture_task_outputs(session.shell, capture, target.graph.nodes)
        if capture is not None
        else contextlib.nullcontext()
    )
    with capturing:
        if attach_to is not None:
            from kernelflow.engine.runner import Engine
            from kernelflow.store.home import open_store

            engine = Engine(open_store(), listeners=listeners)
            result = engine.run(target, params, force=force, run_id=attach_to, attach=True)
        else:
            from kernelflow.engine.launch import run_target

            result = run_target(
                target,
                params,
                listeners=listeners,
                force=force,
                tasks=tasks or None,
                resume=resume,
                parallel=parallel,
                backend=backend,
                restore=(
                    session.states.fresh_executions(target, params)
                    if stale_only and not force
                    else None
                ),
            )
    session.last_run = result
    session.states.record(target, result)
    session.run_ids.append(result.run_id)
    for values in result.values.values():
        session.shell.user_ns.update(values)
        session.bound_by_task(values)
    for node, task_run in result.tasks.items():
        if task_run.status == "cached" and node in session.cells:
            session.define_code(node)
        if task_run.status in ("succeeded", "cached"):
            session.task_ran(node)
    return result


# --- one session per shell ------------------------------------------------------------

_sessions: dict[int, Session] = {}


def open_session(shell: Any) -> Session:
    """The session of ``shell``, made on first use (when the extension loads)."""
    session = _sessions.get(id(shell))
    if session is None:
        session = _sessions[id(shell)] = Session(shell)
        shell.events.register("pre_run_cell", session.note_cell)
    return session


def session_of(shell: Any) -> Session:
    """The session of a shell that loaded the extension (``%load_ext kernelflow``)."""
    try:
        return _sessions[id(shell)]
    except KeyError:
        raise KernelflowError(
            "kernelflow is not loaded in this kernel",
            fix="run %load_ext kernelflow first",
        ) from None


def close_session(shell: Any) -> None:
    """Forget the session of ``shell`` (the extension is unloaded)."""
    session = _sessions.pop(id(shell), None)
    if session is not None:
        with contextlib.suppress(ValueError):  # the shell was reset meanwhile
            shell.events.unregister("pre_run_cell", session.note_cell)
