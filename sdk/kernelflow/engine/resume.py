"""Resuming a run that crashed, was interrupted or failed: what is kept, what reruns.

A resumed run is a new run (``resumed_from`` points at the old one) with the old
run's parameters. Every node that finished in the old run (or in a run that run
resumed) is restored from its persisted outputs instead of running again; the
others run. Checkpoints are shared along the chain, so a task that saved state
before the crash starts its next attempt from there.

``"last"`` is the latest run of the workflow. There is nothing to resume when it
succeeded, nor in a run that a later run resumed and finished; a run still going
is not resumed beside itself.

Resuming is refused when a finished node's code changed since: its old outputs
would silently disagree with the code that now claims to produce them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kernelflow._core.errors import ResumeError
from kernelflow._core.scope import current_scope

if TYPE_CHECKING:
    from kernelflow.engine.runner import RunTarget
    from kernelflow.store.home import Store


@dataclass(frozen=True)
class ResumePlan:
    """What a resumed run starts from."""

    previous: str | None  # the run being resumed (None: outputs restored from several runs)
    root: str  # the first run of the chain: checkpoints are kept under its id
    params: Mapping[str, Any]
    finished: Mapping[str, Mapping[str, Any]]  # node id -> its finished execution record


def plan_resume(
    store: Store, target: RunTarget, which: str, params: Mapping[str, Any] | None
) -> ResumePlan:
    """Find the run to resume (``"last"`` or a run id) and check it can be resumed."""
    run = _find(store, target, which)
    run_id = str(run["run_id"])
    if run["workflow"] != target.name:
        raise ResumeError(
            f"run {run_id} is of workflow {run['workflow']!r}, not {target.name!r}",
            run_id=run_id,
            fix=f"resume it with its own workflow, or pick a run of {target.name!r} "
            "(kernelflow runs --workflow NAME)",
        )
    if run["status"] == "succeeded":
        raise ResumeError(
            f"run {run_id} succeeded; there is nothing to resume",
            run_id=run_id,
            fix="run the workflow again (cached tasks are reused)",
        )
    finisher = finished_by(store, run_id)
    if finisher is not None:
        raise ResumeError(
            f"run {run_id} was resumed by run {finisher}, which succeeded; there is nothing "
            "to resume",
            run_id=run_id,
            finished_by=finisher,
            fix="run the workflow again (cached tasks are reused)",
        )
    old_params = dict(run.get("params") or {})  # type: ignore[call-overload]
    if params and dict(params) != old_params:
        raise ResumeError(
            f"run {run_id} ran with parameters {old_params}; a resumed run keeps them",
            run_id=run_id,
            fix="drop -p to resume, or start a new run with the new parameters",
        )
    finished = store.runs.finished_nodes(run_id)
    _refuse_changed_code(run_id, target, finished)
    return ResumePlan(run_id, store.runs.chain_root(run_id), old_params, finished)


def _find(store: Store, target: RunTarget, which: str) -> Mapping[str, Any]:
    # "last" is the latest run, whatever became of it: an older unfinished run is
    # not picked up again behind the runs that came after it.
    if which == "last":  # of this project and domain: another domain's runs are not ours
        scope = current_scope()
        run = store.runs.last_run(target.name, project=scope.project, domain=scope.domain)
        if run is None:
            raise ResumeError(
                f"workflow {target.name!r} has no unfinished run to resume",
                fix="run it without --resume",
            )
        if run["status"] == "running":
            raise ResumeError(
                f"the latest run of {target.name!r}, {run['run_id']}, is still running "
                f"(process {run['pid']} on {run['host']})",
                run_id=run["run_id"],
                fix="wait for it to end or stop it (a run whose process is gone shows as "
                "died and can be resumed), or resume another run by its id",
            )
        return run
    run = store.runs.get_run(which)
    if run is None:
        raise ResumeError(
            f"no run {which!r} in this store",
            run_id=which,
            fix="list runs with `kernelflow runs` (or pass --resume last)",
        )
    return run


def finished_by(store: Store, run_id: str) -> str | None:
    """A run that succeeded by resuming ``run_id``, or a run that resumed it; or None."""
    pending, seen = [run_id], {run_id}
    while pending:
        for run in store.runs.resumed_by(pending.pop()):
            if run["status"] == "succeeded":
                return str(run["run_id"])
            if run["run_id"] not in seen:
                seen.add(str(run["run_id"]))
                pending.append(str(run["run_id"]))
    return None


def _refuse_changed_code(
    run_id: str, target: RunTarget, finished: Mapping[str, Mapping[str, Any]]
) -> None:
    changed = []
    for node_id, record in finished.items():
        node = target.graph.nodes.get(node_id)  # type: ignore[call-overload]
        if node is None and built_at_run_time(node_id, target.graph.nodes):
            continue  # its parent runs again, or is restored with its outputs
        if node is None or record.get("code_hash") != node.task.code_hash:
            changed.append(node_id)
    if changed:
        raise ResumeError(
            f"cannot resume run {run_id}: the code of {', '.join(map(repr, changed))} changed "
            "since it ran (or the task is gone), so its saved outputs no longer match",
            run_id=run_id,
            nodes=changed,
            fix="run the workflow again without --resume; unchanged cached tasks are reused",
        )


def built_at_run_time(node_id: str, nodes: Mapping[str, Any]) -> bool:
    """Whether ``node_id`` is a child a node of the graph built as it ran (``dyn.child``).

    A dynamic workflow, a conditional's branch and an eager workflow's calls are
    recorded under their node's id; they are not nodes of the graph.
    """
    parts = node_id.split(".")
    return any(".".join(parts[:end]) in nodes for end in range(len(parts) - 1, 0, -1))
