"""The Python entry points of DESIGN.md: run, runs, lineage, and friends.

Thin on purpose: each resolves what the user named (a workflow object, a
``script.py:workflow`` string, a notebook path) and hands it to the engine or
the store. The CLI is a thin layer over these.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kernelflow.engine.backends import get_executor
from kernelflow.engine.events import Listener
from kernelflow.engine.runner import Engine, RunResult, RunTarget
from kernelflow.errors import TargetError
from kernelflow.store.home import Store, open_store

if TYPE_CHECKING:
    import pandas as pd

RUN_COLUMNS = ["run_id", "workflow", "version", "status", "started", "finished"]


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
    ``resume`` (a run id, or ``"last"``) continues an unfinished run; ``tasks``
    restricts the run to those tasks and what they need; ``force`` ignores cached
    results. Call ``result.raise_for_status()`` to raise on failure.
    """
    resolved = load_target(target) if isinstance(target, (str, os.PathLike)) else target
    opened = _store(store)
    plan = None
    if resume is not None:
        from kernelflow.engine.resume import plan_resume

        plan = plan_resume(opened, resolved, resume, params)
        params = plan.params
    # Tasks are passed so that one that cannot leave this process (a cell of a
    # live kernel) is refused before anything runs, not at its first submit.
    tasks_to_run = [node.task for node in resolved.graph.nodes.values()]
    executor = get_executor(backend, parallel, address, tasks=tasks_to_run)
    engine = Engine(opened, executor=executor, listeners=listeners)
    try:
        return engine.run(resolved, params, force=force, targets=tasks, resume=plan)
    finally:
        executor.close()


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
    from kernelflow.workflow import Workflow

    found = getattr(module, attribute, None)
    if isinstance(found, Workflow):
        return found
    workflows = sorted(n for n, v in vars(module).items() if isinstance(v, Workflow))
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


def _store(store: Store | str | os.PathLike[str] | None) -> Store:
    return store if isinstance(store, Store) else open_store(store)
