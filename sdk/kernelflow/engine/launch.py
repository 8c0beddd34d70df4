"""Starting a run: the store, the executor and the resume plan around one :class:`Engine`.

Every front end that runs a graph comes through :func:`run_target`: a
``@workflow`` or a task called directly, ``kernelflow.run`` (which first
resolves a notebook path or ``script.py:wf``), the CLI and the kernel.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from kernelflow._core.resources import check_fits, requirements_of
from kernelflow.engine.backends import get_executor
from kernelflow.engine.events import Listener
from kernelflow.engine.runner import Engine, RunResult, RunTarget
from kernelflow.store.home import Store, open_artifacts, open_store


def run_target(
    target: RunTarget,
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
    restore: Mapping[str, Mapping[str, Any]] | None = None,
    run_id: str | None = None,
) -> RunResult:
    """Run ``target`` on a fresh executor; a failed task does not raise (see ``RunResult``).

    ``restore``: node id -> an execution record of that node (from any run) whose
    outputs are restored instead of running it: a kernel's tasks that are up to
    date (``%workflow run`` runs only what is stale).
    """
    for node in target.graph.nodes.values():  # refused before anything is recorded
        requirements = requirements_of(node.task)
        if requirements is not None:
            check_fits(node.task.name, requirements.requests)
    # An artifact store that cannot be used is refused before the run database is
    # even opened: nothing is recorded of a run that could not have kept its outputs.
    (store.artifacts if isinstance(store, Store) else open_artifacts(store)).check()
    opened = store if isinstance(store, Store) else open_store(store)
    plan = None
    if restore:
        from kernelflow.engine.resume import ResumePlan

        plan = ResumePlan(previous=None, root="", params=params or {}, finished=restore)
    if resume is not None:
        from kernelflow.engine.resume import plan_resume

        plan = plan_resume(opened, target, resume, params)
        params = plan.params
    # Tasks are passed so that one that cannot leave this process (a cell of a
    # live kernel) is refused before anything runs, not at its first submit.
    tasks_to_run = [node.task for node in target.graph.nodes.values()]
    executor = get_executor(backend, parallel, address, tasks=tasks_to_run)
    engine = Engine(opened, executor=executor, listeners=listeners)
    try:
        return engine.run(target, params, force=force, targets=tasks, resume=plan, run_id=run_id)
    finally:
        executor.close()
