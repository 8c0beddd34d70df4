"""The engine: the one place that runs workflows.

Every front end (``@workflow`` calls, direct task calls, notebooks, the CLI,
papermill) hands a graph to :class:`Engine`. A run checks its parameters,
picks the nodes it needs, and executes them in the scheduling loop
(:mod:`kernelflow.engine.loop`): cache look-ups, execution on the executor,
persisted outputs, retries, and events to listeners; the run store is told what
happened through its recorder. Independent branches go on when one fails, so
their work is kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from kernelflow._core.errors import DefinitionError
from kernelflow._core.graph import Graph, NodeId
from kernelflow.engine.backends import Executor, SequentialExecutor
from kernelflow.engine.events import Listener
from kernelflow.engine.loop import RunLoop
from kernelflow.engine.params import resolve_params
from kernelflow.engine.results import (
    GraphTarget,
    RunResult,
    RunTarget,
    TaskRun,
    TaskStatus,
    new_run_id,
    run_environment,
)
from kernelflow.store.home import Store

if TYPE_CHECKING:
    from kernelflow.engine.resume import ResumePlan

__all__ = [
    "Engine",
    "GraphTarget",
    "RunResult",
    "RunTarget",
    "TaskRun",
    "TaskStatus",
    "new_run_id",
    "run_environment",
]


class Engine:
    """Runs targets against one store, on one executor, telling some listeners.

    ``retry_delay`` is the first backoff between attempts; it doubles each time,
    up to a minute.
    """

    def __init__(
        self,
        store: Store,
        *,
        executor: Executor | None = None,
        listeners: Sequence[Listener] = (),
        retry_delay: float = 0.2,
    ) -> None:
        self.store = store
        self.executor = executor or SequentialExecutor()
        self.listeners = list(listeners)
        self.retry_delay = retry_delay

    def run(
        self,
        target: RunTarget,
        params: Mapping[str, Any] | None = None,
        *,
        force: bool = False,
        targets: Iterable[str] | None = None,
        run_id: str | None = None,
        resume: ResumePlan | None = None,
        attach: bool = False,
    ) -> RunResult:
        """Run ``target``; parameters are checked before any task starts.

        With ``resume``, the nodes that finished in the resumed run are restored
        from their saved outputs and only the others run. With ``attach``, the
        nodes are recorded under ``run_id``, a run the caller opened and will
        finish (an exported notebook, whose cells run one by one).
        """
        values = resolve_params(target.name, target.graph, params or {})
        selected = _select(target.graph, targets)
        loop = RunLoop(
            self,
            target,
            values,
            selected,
            force=force,
            run_id=run_id or new_run_id(),
            resume=resume,
            attach=attach,
            new_id=run_id is None,
        )
        return loop.execute()


def _select(graph: Graph, targets: Iterable[str] | None) -> list[NodeId]:
    if targets is None:
        return list(graph.order)
    wanted = list(targets)
    unknown = [name for name in wanted if name not in graph.nodes]
    if unknown:
        raise DefinitionError(
            f"no task named {unknown[0]!r} in this workflow; "
            f"its tasks are: {', '.join(graph.order)}",
            task=unknown[0],
            fix="name one of the workflow's tasks",
        )
    needed = graph.needed_for(NodeId(name) for name in wanted)
    return [node_id for node_id in graph.order if node_id in needed]
