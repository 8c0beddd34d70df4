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
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kernelflow._core.describe import describe as _describe
from kernelflow._core.errors import TargetError
from kernelflow._core.graph import Graph
from kernelflow._core.interface import parse_parameter
from kernelflow._core.names import name_from_stem, validate_name
from kernelflow.engine.backends import BACKENDS
from kernelflow.engine.events import Event, Listener
from kernelflow.engine.launch import run_target
from kernelflow.engine.params import parse_params as _parse_params
from kernelflow.engine.runner import RunResult, RunTarget
from kernelflow.notebook.export import Export, export
from kernelflow.notebook.lineage import LINEAGE_COLUMNS, lineage_rows
from kernelflow.notebook.outputs import MIMETYPE, output_record, read_outputs
from kernelflow.notebook.versions import diff, versions
from kernelflow.store._liveness import pid_alive
from kernelflow.store.gc import GcReport, clear_cache, collect
from kernelflow.store.home import HOME_ENV, Store, default_home, open_store

if TYPE_CHECKING:
    import pandas as pd

    from kernelflow.notebook.kernel.session import Session

__all__ = [
    "BACKENDS",
    "CACHE_COLUMNS",
    "MIMETYPE",
    "PARAM_OPTION",
    "Event",
    "Export",
    "GcReport",
    "Graph",
    "HOME_ENV",
    "LINEAGE_COLUMNS",
    "Listener",
    "RunResult",
    "RunTarget",
    "cache_clear",
    "cache_entries",
    "close_kernel_session",
    "default_home",
    "describe",
    "diff",
    "export",
    "gc",
    "lineage",
    "lineage_table",
    "load_target",
    "name_from_stem",
    "open_kernel_session",
    "output_record",
    "outputs_record_of",
    "parse_parameter",
    "parse_params",
    "pid_alive",
    "read_outputs",
    "run",
    "runs",
    "validate_name",
    "versions",
    "write_executed_copy",
]

RUN_COLUMNS = ["run_id", "workflow", "version", "status", "started", "finished"]
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
) -> RunResult:
    """Run a workflow and return its :class:`RunResult`; a failed task does not raise.

    ``target`` is a workflow, a notebook path or ``"script.py:workflow"``;
    ``resume`` (a run id, or ``"last"``: the workflow's latest run) continues an
    unfinished run; ``tasks``
    restricts the run to those tasks and what they need; ``force`` ignores cached
    results. Call ``result.raise_for_status()`` to raise on failure.
    """
    resolved = load_target(target) if isinstance(target, (str, os.PathLike)) else target
    return run_target(
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
    )


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
    from kernelflow.workflows.workflow import Workflow

    kinds = (Workflow, ImperativeWorkflow)
    found = getattr(module, attribute, None)
    if isinstance(found, kinds):
        return found
    workflows = sorted(n for n, v in vars(module).items() if isinstance(v, kinds))
    what = "is not a @workflow" if found is not None else "is not defined"
    raise TargetError(
        f"{attribute!r} in {path!r} {what}; workflows there: {', '.join(workflows) or '(none)'}",
        target=f"{path}:{attribute}",
        fix=f"run one of them, e.g. {path}:{workflows[0]}"
        if workflows
        else "decorate a function with @workflow",
    )


def runs(workflow: str | None = None, *, store: Store | str | None = None) -> pd.DataFrame:
    """Run history, newest first, as a DataFrame with the columns of :data:`RUN_COLUMNS`."""
    import pandas as pd

    rows = _store(store).runs.list_runs(workflow)
    return pd.DataFrame([{c: row.get(c) for c in RUN_COLUMNS} for row in rows], columns=RUN_COLUMNS)


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


def _store(store: Store | str | os.PathLike[str] | None) -> Store:
    return store if isinstance(store, Store) else open_store(store)


def describe(target: RunTarget) -> str:
    """The workflow in plain text: parameters, tasks, typed inputs and outputs, edges."""
    return _describe(target.name, target.graph)


def parse_params(target: RunTarget, texts: Mapping[str, str]) -> dict[str, Any]:
    """``-p NAME VALUE`` texts parsed by each parameter's declared type (never evaluated)."""
    return _parse_params(target.name, target.graph, texts)


CACHE_COLUMNS = ["task", "key", "created", "hits", "duration"]


def cache_entries(task: str | None = None, *, store: Store | str | None = None) -> list[dict]:
    """Cache entries (of ``task``, if given), newest first."""
    return _store(store).runs.cache_entries(task)


def cache_clear(task: str | None = None, *, store: Store | str | None = None) -> GcReport:
    """Remove the cache entries (of ``task``, if given), then the artifacts that only
    they referred to, and compact the store; ``.cache_entries`` is how many went."""
    return clear_cache(_store(store), task)


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
    return output_record(task, str(store.home), values, refs)


def open_kernel_session(shell: Any) -> Session:
    """The kernelflow session of an IPython shell (made when the extension loads)."""
    from kernelflow.notebook.kernel.session import open_session

    return open_session(shell)


def close_kernel_session(shell: Any) -> None:
    """Forget a shell's session (the extension is unloaded)."""
    from kernelflow.notebook.kernel.session import close_session

    close_session(shell)
