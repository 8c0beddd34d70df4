"""The Python entry points: run, runs, lineage, export, the cache, and the kernel session.

Thin on purpose: each resolves what the user named (a workflow object, a
``script.py:workflow`` string, a notebook path) and hands it to the engine, the
notebook layer or the store. The CLI, the scheduler and the Jupyter magics call
these and nothing deeper (``tests/test_layers.py`` keeps it so).
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kernelflow._core.describe import describe as _describe
from kernelflow._core.environ import environment_variable
from kernelflow._core.errors import TargetError
from kernelflow._core.graph import Graph
from kernelflow._core.interface import parse_parameter
from kernelflow._core.names import name_from_stem, validate_name
from kernelflow._core.scope import (
    ANY,
    CACHE_FROM_ENV,
    DOMAIN_ENV,
    DOMAINS,
    PROJECT_ENV,
    Scope,
    current_scope,
    in_scope,
    scope_filter,
)
from kernelflow.engine.backends import BACKENDS
from kernelflow.engine.events import (
    Event,
    Listener,
    add_ambient_listener,
    ambient_listeners,
    remove_ambient_listener,
)
from kernelflow.engine.launch import run_target
from kernelflow.engine.params import parse_params as _parse_params
from kernelflow.engine.results import new_run_id
from kernelflow.engine.runner import RunResult, RunTarget
from kernelflow.notebook.export import Export, export
from kernelflow.notebook.lineage import LINEAGE_COLUMNS, lineage_rows
from kernelflow.notebook.outputs import MIMETYPE, output_record, read_outputs, store_location
from kernelflow.notebook.promote import check_in_domain as _check_in_domain
from kernelflow.notebook.promote import promote as _promote
from kernelflow.notebook.promote import versions_in
from kernelflow.notebook.versions import diff
from kernelflow.store._liveness import pid_alive
from kernelflow.store.gc import GcReport, clear_cache, collect
from kernelflow.store.home import (
    HOME_ENV,
    STORE_ENV,
    Store,
    default_home,
    open_store,
    open_tables,
)
from kernelflow.store.small_db import PLANS, FileTables, SmallTables
from kernelflow.workflows.failure import run_on_failure
from kernelflow.workflows.human import send_signal as deliver_signal

if TYPE_CHECKING:
    import pandas as pd

    from kernelflow.notebook.kernel.session import Session

__all__ = [
    "ANY",
    "BACKENDS",
    "CACHE_COLUMNS",
    "CACHE_FROM_ENV",
    "DOMAINS",
    "DOMAIN_ENV",
    "PROJECT_ENV",
    "PROMOTION_COLUMNS",
    "Scope",
    "MIMETYPE",
    "PARAM_OPTION",
    "Event",
    "add_ambient_listener",
    "remove_ambient_listener",
    "PLANS",
    "FileTables",
    "SmallTables",
    "open_tables",
    "start",
    "Export",
    "GcReport",
    "Graph",
    "HOME_ENV",
    "LINEAGE_COLUMNS",
    "Listener",
    "RunResult",
    "RunTarget",
    "STORE_ENV",
    "cache_clear",
    "cache_entries",
    "close_kernel_session",
    "current_scope",
    "default_home",
    "describe",
    "diff",
    "environment_variable",
    "execution_record",
    "execution_records",
    "export",
    "gc",
    "in_scope",
    "lineage",
    "lineage_table",
    "load_target",
    "name_from_stem",
    "open_kernel_session",
    "output_record",
    "outputs_record_of",
    "parse_parameter",
    "parse_params",
    "plan_schedule",
    "promote",
    "promotions",
    "pid_alive",
    "read_outputs",
    "run",
    "run_report",
    "runs",
    "send_signal",
    "validate_name",
    "waiting_nodes",
    "versions",
    "check_schedulable",
    "write_executed_copy",
]

RUN_COLUMNS = [
    "run_id", "workflow", "version", "status", "started", "finished", "project", "domain"
]  # fmt: skip
# ``-p NAME VALUE``, repeatable: one spelling of a parameter in every front end's parser.
# (argparse copies an "append" default before appending to it, so sharing [] is safe.)
PARAM_OPTION: dict[str, Any] = {
    "nargs": 2,
    "action": "append",
    "default": [],
    "metavar": ("NAME", "VALUE"),
}


def run(
    target: RunTarget | str | os.PathLike[str],
    params: Mapping[str, Any] | None = None,
    *,
    parallel: int = 1,
    backend: str = "loky",
    address: str | None = None,
    resume: str | None = None,
    force: bool = False,
    tasks: Iterable[str] | None = None,
    listeners: Sequence[Listener] = (),
    store: Store | str | os.PathLike[str] | None = None,
    project: str | None = None,
    domain: str | None = None,
    cache_from: str | None = None,
    run_id: str | None = None,
) -> RunResult:
    """Run a workflow and return its :class:`RunResult`; a failed task does not raise.

    ``target`` is a workflow, a notebook path or ``"script.py:workflow"``;
    ``resume`` (a run id, or ``"last"``: the workflow's latest run) continues an
    unfinished run; ``tasks``
    restricts the run to those tasks and what they need; ``force`` ignores cached
    results. Call ``result.raise_for_status()`` to raise on failure.
    ``project`` and ``domain`` (default: the current ones) are where the run and
    its cache entries are recorded; ``cache_from`` names another domain whose
    cache entries it may also use.
    """
    resolved = load_target(target) if isinstance(target, (str, os.PathLike)) else target
    _check_plan_inputs(resolved, params or {})
    with in_scope(project, domain, cache_from):
        result = run_target(
            resolved,
            params,
            parallel=parallel,
            backend=backend,
            address=address,
            resume=resume,
            force=force,
            tasks=tasks,
            listeners=listeners,
            store=store,
            run_id=run_id,
        )
    cleanup = getattr(resolved, "on_failure", None)  # Flyte's @workflow(on_failure=...)
    if result.error is not None and cleanup is not None:
        run_on_failure(cleanup, result.params, result.error)
    return result


def load_target(spec: str | os.PathLike[str]) -> RunTarget:
    """``"path/script.py:workflow_name"`` → the workflow object (notebooks: ``.ipynb``)."""
    text = os.fspath(spec)
    if text.endswith(".ipynb"):
        from kernelflow.notebook.load import load_notebook

        return load_notebook(text)
    path_text, _, attribute = text.rpartition(":")
    if not path_text.endswith(".py") or not attribute:
        raise TargetError(
            f"cannot tell what to run from {text!r}",
            target=text,
            fix="name a notebook (flow.ipynb) or a workflow in a script (flow.py:my_workflow)",
        )
    module = _import_script(Path(path_text))
    return _workflow_in(module, attribute, path_text)


def _import_script(path: Path) -> Any:
    if not path.is_file():
        raise TargetError(
            f"no such script: {str(path)!r}",
            target=str(path),
            fix="check the path (it is relative to the current directory)",
        )
    name = path.stem
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise TargetError(f"cannot import {str(path)!r} as a Python module", target=str(path))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # so that tasks in it can be pickled by reference
    folder = str(path.parent.absolute())
    if folder not in sys.path:
        sys.path.insert(0, folder)  # its sibling modules import as they would when run
    try:
        spec.loader.exec_module(module)
    except SyntaxError as error:
        sys.modules.pop(name, None)
        raise TargetError(
            f"{str(path)!r} line {error.lineno} does not parse: {error.msg}",
            target=str(path),
            line=error.lineno,
            fix="fix the syntax error (python -m py_compile SCRIPT.py shows it too)",
        ) from error
    except Exception as error:
        sys.modules.pop(name, None)
        raise TargetError(
            f"importing {str(path)!r} failed: {type(error).__name__}: {error}",
            target=str(path),
            fix="the script's top-level code must run on import; install what it imports, "
            "or move work into tasks",
        ) from error
    return module


def _workflow_in(module: Any, attribute: str, path: str) -> RunTarget:
    from kernelflow.workflows.imperative import ImperativeWorkflow
    from kernelflow.workflows.launch_plan import LaunchPlan
    from kernelflow.workflows.workflow import Workflow

    kinds = (Workflow, ImperativeWorkflow, LaunchPlan)
    found = getattr(module, attribute, None)
    if isinstance(found, kinds):
        return found
    workflows = sorted(n for n, v in vars(module).items() if isinstance(v, kinds))
    what = "is not a @workflow or a LaunchPlan" if found is not None else "is not defined"
    raise TargetError(
        f"{attribute!r} in {path!r} {what}; workflows there: {', '.join(workflows) or '(none)'}",
        target=f"{path}:{attribute}",
        fix=f"run one of them, e.g. {path}:{workflows[0]}"
        if workflows
        else "decorate a function with @workflow",
    )


def runs(
    workflow: str | None = None,
    *,
    project: str | None = None,
    domain: str | None = None,
    store: Store | str | None = None,
) -> pd.DataFrame:
    """Run history, newest first, as a DataFrame with the columns of :data:`RUN_COLUMNS`.

    Only the runs of ``project`` and ``domain``: by default the current ones
    (``$KERNELFLOW_PROJECT``, ``$KERNELFLOW_DOMAIN``); :data:`ANY` (``"*"``) for all.
    """
    import pandas as pd

    opened = _store(store)
    in_project, in_domain = scope_filter(project, domain)
    rows = opened.runs.list_runs(workflow, project=in_project, domain=in_domain)
    if any(row["status"] == "running" for row in rows):
        # A running run with a node waiting for a signal is shown as waiting (Flyte's
        # state): it needs a person, not more time. The record itself stays running.
        waiting = {wait["run_id"] for wait in waiting_nodes(store=opened)}
        for row in rows:
            if row["status"] == "running" and row["run_id"] in waiting:
                row["status"] = "waiting"
    return pd.DataFrame([{c: row.get(c) for c in RUN_COLUMNS} for row in rows], columns=RUN_COLUMNS)


def start(
    target: RunTarget | str | os.PathLike[str],
    params: Mapping[str, Any] | None = None,
    *,
    store: Store | str | os.PathLike[str] | None = None,
    listeners: Sequence[Listener] | None = None,
    started_within: float = 60.0,
    project: str | None = None,
    domain: str | None = None,
) -> str:
    """Start a run in a background thread of this process; its id once it is recorded.

    Flyte's ``FlyteRemote.execute`` without ``wait``: the caller goes on (in a
    notebook the kernel stays free, so the progress view's Approve and Send
    buttons answer a node that waits), and follows the run in the store
    (``kernelflow runs``, ``FlyteRemote.wait``). Inputs are checked here, before
    the thread starts; an error before the run is recorded is raised here too.
    Without ``listeners``, what the front end offers is used (a kernel's
    progress view). The thread is a daemon: the run dies with the process.
    ``project`` and ``domain`` are checked here, as :func:`run` checks them.
    """
    import threading

    current_scope(project, domain)  # an unknown domain: refused before the thread

    resolved = load_target(target) if isinstance(target, (str, os.PathLike)) else target
    _check_plan_inputs(resolved, params or {})
    opened = _store(store)
    run_id = new_run_id()
    chosen = list(listeners) if listeners is not None else ambient_listeners(resolved)
    failed: list[BaseException] = []

    def body() -> None:
        try:
            run(
                resolved,
                params,
                store=opened,
                listeners=chosen,
                run_id=run_id,
                project=project,
                domain=domain,
            )
        except BaseException as error:  # shown to the caller if the run never started
            failed.append(error)

    thread = threading.Thread(target=body, name=f"kernelflow run {run_id}", daemon=True)
    thread.start()
    deadline = time.monotonic() + started_within
    while opened.runs.get_run(run_id) is None:
        if failed:
            raise failed[0]
        if not thread.is_alive() or time.monotonic() > deadline:
            raise TargetError(
                f"run {run_id} of {getattr(resolved, 'name', resolved)!r} did not start",
                fix="run it in the foreground (kernelflow.run) to see why",
            )
        time.sleep(0.01)
    return run_id


def lineage(run_id: str, task: str, *, store: Store | str | None = None) -> dict[str, Any]:
    """Where a task's outputs in a run came from: code hash, inputs, upstream tasks."""
    return _store(store).runs.lineage(run_id, task)


def lineage_table(
    name: str,
    *,
    run_ids: Sequence[str] = (),
    namespace: Mapping[str, Any] | None = None,
    store: Store | str | None = None,
) -> list[dict[str, str]]:
    """Rows of short text (:data:`LINEAGE_COLUMNS`) on where a task's or a value's data came from.

    For people, where :func:`lineage` is for programs: ``name`` is a task or an
    output; the run is the newest of ``run_ids`` (a kernel's runs) that has it,
    else the store's newest. No artifact bytes, only short reprs and hashes.
    """
    return lineage_rows(name, _store(store), run_ids=run_ids, namespace=namespace)


def deck(run_id: str, task: str, *, store: Store | str | None = None) -> str:
    """The HTML deck a task (a node id) wrote in a run (``@task(enable_deck=True)``)."""
    from kernelflow._core.errors import KernelflowError
    from kernelflow.store.decks import list_decks, read_deck

    home = _store(store).home
    page = read_deck(home, run_id, task)
    if page is None:
        found = list_decks(home, run_id)
        raise KernelflowError(
            f"run {run_id!r} has no deck for task {task!r}"
            + (f" (decks: {', '.join(found)})" if found else ""),
            run_id=run_id,
            task=task,
            fix="check the run id (kernelflow runs) and the task name; a task writes a deck "
            "when declared @task(enable_deck=True) and it adds to one",
        )
    return page


def run_report(run_id: str, *, store: Store | str | None = None) -> dict[str, Any]:
    """What ``kernelflow report`` shows of a run: its fields and, per node, state, cache
    hit, attempts, errors, duration, parents, summarised inputs and outputs (types,
    hashes, short reprs; never their bytes) and deck (see ``store/report.py``)."""
    from kernelflow.store.report import run_report as _run_report

    return _run_report(_store(store), run_id)


def _store(store: Store | str | os.PathLike[str] | None) -> Store:
    return store if isinstance(store, Store) else open_store(store)


def describe(target: RunTarget) -> str:
    """The workflow in plain text: parameters, tasks, typed inputs and outputs, edges."""
    return _describe(target.name, target.graph)


def parse_params(target: RunTarget, texts: Mapping[str, str]) -> dict[str, Any]:
    """``-p NAME VALUE`` texts parsed by each parameter's declared type (never evaluated)."""
    _check_plan_inputs(target, texts)
    return _parse_params(target.name, target.graph, texts)


def plan_schedule(target: RunTarget) -> tuple[str | None, str | None]:
    """A launch plan's schedule as ``(cron, kickoff input)``; ``(None, None)`` without one.

    A ``FixedRate`` that is no cron step raises a :class:`ParameterError` saying so.
    """
    from kernelflow.workflows.launch_plan import LaunchPlan

    if not isinstance(target, LaunchPlan) or target.schedule is None:
        return None, None
    return target.cron, target.schedule.kickoff_time_input_arg


def _check_plan_inputs(target: Any, given: Mapping[str, Any]) -> None:
    """A launch plan's fixed inputs cannot be given: say so, not "no such parameter"."""
    from kernelflow.workflows.launch_plan import LaunchPlan

    if isinstance(target, LaunchPlan):
        target.check_inputs(given)


CACHE_COLUMNS = ["task", "key", "created", "hits", "duration", "domain"]


def cache_entries(
    task: str | None = None,
    *,
    project: str | None = None,
    domain: str | None = None,
    store: Store | str | None = None,
) -> list[dict]:
    """Cache entries (of ``task``, if given), newest first: those of ``project`` and
    ``domain``, by default the current ones; :data:`ANY` (``"*"``) for all."""
    in_project, in_domain = scope_filter(project, domain)
    return _store(store).runs.cache_entries(task, project=in_project, domain=in_domain)


def cache_clear(
    task: str | None = None,
    *,
    project: str | None = None,
    domain: str | None = None,
    store: Store | str | None = None,
) -> GcReport:
    """Remove the cache entries (of ``task``, if given) of ``project`` and ``domain``
    (by default the current ones; :data:`ANY` for all), then the artifacts that only
    they referred to, and compact the store; ``.cache_entries`` is how many went."""
    in_project, in_domain = scope_filter(project, domain)
    return clear_cache(_store(store), task, project=in_project, domain=in_domain)


PROMOTION_COLUMNS = [
    "workflow", "version", "from_domain", "to_domain", "promoted_by", "promoted", "project"
]  # fmt: skip


def promote(
    workflow: str,
    version: str,
    *,
    to: str,
    out: str | os.PathLike[str] = "exports",
    store: Store | str | None = None,
) -> dict[str, object]:
    """Promote an exported version of ``workflow`` from the current domain to ``to``,
    recording who, when and which version in the run database; the record."""
    return _promote(_store(store), workflow, version, to=to, out=out)


def versions(
    workflow: str,
    out: str | os.PathLike[str] = "exports",
    *,
    domain: str | None = ANY,
    store: Store | str | None = None,
) -> list[dict[str, Any]]:
    """The exported versions of ``workflow`` in the current project, oldest first, each
    with the ``domains`` it is in (exported in, then promoted to); ``domain`` keeps
    those in one domain (``None``: the current one; default :data:`ANY`: all)."""
    return versions_in(_store(store), workflow, out, domain=domain)


def check_schedulable(notebook: str | os.PathLike[str], store: Store | str | None = None) -> None:
    """Refuse (:class:`ParameterError`) an exported notebook that is not in the current
    domain: a plan runs only what was exported in, or promoted to, its domain."""
    import nbformat

    try:
        metadata = nbformat.read(os.fspath(notebook), as_version=4).metadata.get("kernelflow")
    except Exception:  # not a notebook: make_plan says so
        return
    if isinstance(metadata, dict):
        _check_in_domain(_store(store), metadata, os.fspath(notebook))


def promotions(
    workflow: str | None = None,
    *,
    project: str | None = None,
    store: Store | str | None = None,
) -> list[dict[str, object]]:
    """Promotions (of ``workflow``, if given), newest first, in ``project`` (default the
    current one; :data:`ANY` for all)."""
    in_project, _ = scope_filter(project, ANY)
    return _store(store).runs.promotions(workflow, project=in_project)


def gc(
    *,
    keep_runs: int | None = None,
    older_than_days: float | None = None,
    dry_run: bool = False,
    store: Store | str | None = None,
) -> GcReport:
    """Remove old runs, their checkpoints, and the artifacts nothing kept refers to;
    compact the store. ``keep_runs`` keeps the newest N runs, ``older_than_days``
    the younger ones (a run goes when no option given keeps it). Never removes a
    cache entry, a running run, or a run that a kept run resumed."""
    return collect(
        _store(store), keep_runs=keep_runs, older_than_days=older_than_days, dry_run=dry_run
    )


def write_executed_copy(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    run_id: str,
    params: Mapping[str, Any],
    store: Store | str | None = None,
) -> Path:
    """The notebook with what run ``run_id`` made: ``kernelflow run NB --output OUT``."""
    from kernelflow.notebook.outputs import write_executed_copy as write

    home = str(_store(store).home)
    return write(source, out, run_id=run_id, params=params, store_home=home)


def outputs_record_of(result: RunResult, task: str) -> dict[str, Any] | None:
    """The outputs record a task cell of an executed notebook displays (for read_outputs)."""
    values = result.values.get(task)
    if not values:
        return None
    store = open_store()
    refs = store.runs.finished_nodes(result.run_id).get(task, {}).get("outputs", {})
    return output_record(task, store_location(store.artifacts), values, refs)


def open_kernel_session(shell: Any) -> Session:
    """The kernelflow session of an IPython shell (made when the extension loads)."""
    from kernelflow.notebook.kernel.session import open_session

    return open_session(shell)


def close_kernel_session(shell: Any) -> None:
    """Forget a shell's session (the extension is unloaded)."""
    from kernelflow.notebook.kernel.session import close_session

    close_session(shell)


# --- signals: human in the loop (issue 14) ---------------------------------------------


def send_signal(
    run_id: str, name: str, value: str, *, store: Store | str | os.PathLike[str] | None = None
) -> str:
    """Give the ``wait_for_input``/``approve`` node ``name`` of a run its value.

    ``value`` is text, parsed as the type the node expects (as a ``-p`` value is);
    a value of the wrong type for a node that waits is refused, nothing stored.
    It may be sent before the node starts waiting, and to a run that died while
    it waited: ``--resume`` runs the node again, and it takes the value sent to
    the old run id or to the new one. Returns the run's status (``running``, or
    ``died``/``failed``/``interrupted``: then the value waits for ``--resume``).
    """
    return deliver_signal(_store(store), run_id, name, value)


def waiting_nodes(
    run_id: str | None = None, *, store: Store | str | os.PathLike[str] | None = None
) -> list[dict[str, Any]]:
    """The nodes waiting for a signal now (of ``run_id``): run_id, name, node, type, since."""
    opened = _store(store)
    found = []
    for wait in opened.signals.waits(run_id, state="waiting"):
        run = opened.runs.get_run(wait["run_id"])
        if run is not None and run["status"] == "running":
            found.append(wait)
    return found


# --- executions, for the remote client (issue 14) ------------------------------------


def execution_records(
    limit: int | None = None,
    *,
    project: str | None = None,
    domain: str | None = None,
    store: Store | str | os.PathLike[str] | None = None,
) -> list[dict[str, Any]]:
    """Runs, newest first, each as :func:`execution_record` gives it, without values;
    those of ``project`` and ``domain`` where given, else of every one."""
    opened = _store(store)
    runs = opened.runs.list_runs(limit=limit, project=project, domain=domain)
    return [_execution(opened, run, with_values=False) for run in runs]


def execution_record(
    run_id: str, *, store: Store | str | os.PathLike[str] | None = None
) -> dict[str, Any] | None:
    """One run with its values: ``run_id, workflow, status, params, outputs, error`` and
    ``nodes`` (node id -> ``status, task, attempts, inputs, outputs, error`` of its last
    attempt). Values load from the store; one that was never persisted is left out."""
    opened = _store(store)
    run = opened.runs.get_run(run_id)
    return None if run is None else _execution(opened, run, with_values=True)


_EXECUTION_KEYS = (
    "run_id", "workflow", "version", "status", "started", "finished", "error", "project", "domain"
)  # fmt: skip


def _execution(opened: Store, run: Mapping[str, Any], *, with_values: bool) -> dict[str, Any]:
    record: dict[str, Any] = {key: run.get(key) for key in _EXECUTION_KEYS}
    record["params"] = dict(run.get("params") or {})
    if not with_values:
        return record
    record["outputs"] = _load_values(opened, run.get("outputs") or {})
    nodes: dict[str, dict[str, Any]] = {}
    for row in opened.runs.node_executions(str(run["run_id"])):
        nodes[row["node"]] = {
            "node": row["node"],
            "task": row["task"],
            "status": row["status"],
            "attempts": row["attempt"],
            "outputs": _load_values(opened, row["outputs"] or {}),
            "error": row["error"],
            "sources": row["inputs"] or {},
        }
    for node in nodes.values():
        node["inputs"] = _node_inputs(node.pop("sources"), record["params"], nodes)
    record["nodes"] = nodes
    return record


def _load_values(opened: Store, refs: Mapping[str, Any]) -> dict[str, Any]:
    from kernelflow.store.artifacts import ArtifactRef

    values = {}
    for name, ref in refs.items():
        artifact = ref.get("artifact") if isinstance(ref, Mapping) else None
        if artifact:
            values[name] = opened.artifacts.get(ArtifactRef.from_dict(artifact))
    return values


def _node_inputs(
    sources: Mapping[str, Any], params: Mapping[str, Any], nodes: Mapping[str, Any]
) -> dict[str, Any]:
    inputs = {}
    for name, record in sources.items():
        source = record.get("source") if isinstance(record, Mapping) else None
        if not isinstance(source, Mapping):
            continue
        if "param" in source and source["param"] in params:
            inputs[name] = params[source["param"]]
        elif "node" in source:
            outputs = nodes.get(source["node"], {}).get("outputs", {})
            if source.get("output") in outputs:
                inputs[name] = outputs[source["output"]]
    return inputs
