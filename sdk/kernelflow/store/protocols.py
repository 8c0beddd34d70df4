"""The two narrow interfaces the engine uses to reach a store.

The engine is written against these, not against the SQLite and file-system
classes, so another backend (an object store for artifacts, a server database
for run records) is added by implementing them; nothing in the engine changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from kernelflow._core.scope import Scope
    from kernelflow._core.status import NodeStatus, RunStatus
    from kernelflow.store.artifacts import ArtifactRef
    from kernelflow.store.runs import CacheHit, Encoded


class Artifacts(Protocol):
    """Where output values are kept: content-addressed, verified on read."""

    def put(self, value: object) -> ArtifactRef: ...

    def get(self, ref: ArtifactRef) -> object: ...

    def exists(self, ref: ArtifactRef) -> bool: ...

    def delete(self, ref: ArtifactRef) -> None: ...


class RunRecords(Protocol):
    """Run history, node executions and the cache index.

    ``defer=True`` writes may be batched; :meth:`sync` makes them survive this
    process's death, :meth:`flush` commits them. Which writes are deferred is
    decided by :class:`~kernelflow.store.recorder.RunRecorder`, not by callers.
    Runs and cache entries are recorded and looked up in ``scope``'s project and
    domain (default: :func:`kernelflow._core.scope.current_scope`).
    """

    def start_run(
        self,
        *,
        run_id: str,
        workflow: str,
        version: str,
        params: Mapping[str, object],
        environment: Mapping[str, object],
        pid: int | None = None,
        resumed_from: str | None = None,
        defer: bool = False,
        scope: Scope | None = None,
    ) -> None: ...

    def finish_run(
        self,
        run_id: str,
        *,
        status: RunStatus,
        error: str | None = None,
        outputs: Mapping[str, object] | None = None,
        defer: bool = False,
    ) -> None: ...

    def record_node(
        self,
        *,
        run_id: str,
        node: str,
        task: str,
        attempt: int,
        status: NodeStatus,
        cache_hit: bool,
        cache_key: str | None,
        code_hash: str,
        inputs: Mapping[str, Mapping[str, object]],
        outputs: Mapping[str, Mapping[str, object]] | Encoded,
        started: float,
        duration: float,
        error: str | None = None,
        defer: bool = False,
    ) -> None: ...

    def record_hit(
        self,
        *,
        run_id: str,
        node: str,
        task: str,
        cache_key: str,
        code_hash: str,
        inputs: Mapping[str, Mapping[str, object]],
        outputs: Mapping[str, Mapping[str, object]] | Encoded,
        started: float,
        defer: bool = False,
        scope: Scope | None = None,
    ) -> None: ...

    def cache_lookup(self, key: str, *, scope: Scope | None = None) -> CacheHit | None: ...

    def cache_put(
        self,
        key: str,
        *,
        task: str,
        outputs: Mapping[str, Mapping[str, object]],
        manifest: Mapping[str, object],
        duration: float,
        defer: bool = False,
        scope: Scope | None = None,
    ) -> None: ...

    def cache_delete(
        self,
        *,
        task: str | None = None,
        key: str | None = None,
        project: str | None = None,
        domain: str | None = None,
    ) -> int: ...

    def finished_nodes(self, run_id: str) -> dict[str, dict[str, Any]]: ...

    def sync(self) -> None: ...

    def flush(self) -> None: ...

    def flush_due(self) -> bool: ...
