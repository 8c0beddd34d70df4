"""The run recorder: the one place that decides when a run's records are written.

The engine reports what happened (a run started, an attempt ended, a cache
entry was made, user code is about to run, the run ended); the recorder decides
what is written at once, what is deferred and journaled, and when a batch is
committed. The policy, in one place:

- A commit costs more than a quick task, so the records of attempts that
  succeeded (or hit the cache) in less than :data:`QUICK_SECONDS`, their cache
  entries, and the run's own start and end rows are deferred: journaled, then
  committed in batches (when due, before a slow record, or by the store's
  background flusher at most 50 ms later).
- A failure, or the record of real work, is committed at once, after whatever
  was deferred, so records keep their order.
- Before user code runs (it may kill the process), what is deferred is handed
  to the OS in one write (:meth:`RunRecords.sync`): a crash loses nothing.
- A node restored from a cache entry is recorded as a reference to that entry
  (:meth:`RunRecords.record_hit`), not as a copy of it: an all-cached rerun of a
  10,000-task workflow adds well under 1 MB to the run store, not 7 MB.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from kernelflow._core.scope import Scope, current_scope
from kernelflow._core.status import NodeStatus, RunStatus

if TYPE_CHECKING:
    from kernelflow.store.protocols import RunRecords
    from kernelflow.store.runs import Encoded

QUICK_SECONDS = 0.02  # attempts quicker than this have their records batched


class RunRecorder:
    """Writes one run's records to ``runs``.

    ``attached``: the run was opened by someone else (an exported notebook whose
    cells run one by one) and is finished by them; this recorder only adds
    node records to it.
    """

    def __init__(
        self, runs: RunRecords, run_id: str, *, attached: bool = False, scope: Scope | None = None
    ) -> None:
        self.runs = runs
        self.run_id = run_id
        self.attached = attached
        # The run's project and domain, read once (checked: an unknown domain stops
        # the run here, before anything is written), not at every cache hit.
        self.scope = scope or current_scope()

    def started(
        self,
        *,
        workflow: str,
        version: str,
        params: Mapping[str, object],
        environment: Mapping[str, object],
        resumed_from: str | None,
        new_id: bool,
    ) -> None:
        """The run begins. A run id made just now cannot clash, so its row can wait."""
        if self.attached:
            return
        self.runs.start_run(
            run_id=self.run_id,
            workflow=workflow,
            version=version,
            params=params,
            environment=environment,
            pid=os.getpid(),
            resumed_from=resumed_from,
            defer=new_id,  # committed with the run's first batch of records
            scope=self.scope,
        )

    def before_user_code(self) -> None:
        """User code runs next and may kill the process: make the records so far survive."""
        self.runs.sync()

    def attempt(
        self,
        *,
        node: str,
        task: str,
        attempt: int,
        status: NodeStatus,
        cache_key: str | None,
        code_hash: str,
        inputs: Mapping[str, Mapping[str, object]],
        outputs: Mapping[str, Mapping[str, object]] | Encoded,
        started: float,
        duration: float,
        error: str | None = None,
    ) -> None:
        """One attempt of one node ended (or was restored from the cache or a resumed run)."""
        defer = status in ("succeeded", "cached") and duration < QUICK_SECONDS
        if not defer:
            self.runs.flush()
        if status == "cached" and cache_key is not None:
            self.runs.record_hit(
                run_id=self.run_id,
                node=node,
                task=task,
                cache_key=cache_key,
                code_hash=code_hash,
                inputs=inputs,
                outputs=outputs,
                started=started,
                defer=defer,
                scope=self.scope,
            )
        else:
            self.runs.record_node(
                run_id=self.run_id,
                node=node,
                task=task,
                attempt=attempt,
                status=status,
                cache_hit=status == "cached",
                cache_key=cache_key,
                code_hash=code_hash,
                inputs=inputs,
                outputs=outputs,
                started=started,
                duration=duration,
                error=error,
                defer=defer,
            )
        if defer and self.runs.flush_due():
            self.runs.flush()

    def cached(
        self,
        key: str,
        *,
        task: str,
        outputs: Mapping[str, Mapping[str, object]],
        manifest: Mapping[str, object],
        duration: float,
    ) -> None:
        """Outputs computed for ``key`` (a node, or one item of a map node) may be reused."""
        self.runs.cache_put(
            key,
            task=task,
            outputs=outputs,
            manifest=manifest,
            duration=duration,
            defer=duration < QUICK_SECONDS,
            scope=self.scope,
        )

    def finished(
        self, *, status: RunStatus, error: str | None, outputs: Mapping[str, object]
    ) -> None:
        """The run ended: its end row is committed with the deferred records, off this path."""
        if self.attached:
            self.runs.flush()
        else:
            self.runs.finish_run(
                self.run_id, status=status, error=error, outputs=outputs, defer=True
            )
        self.runs.sync()
