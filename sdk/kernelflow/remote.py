"""``kernelflow.remote.FlyteRemote``: Flyte's remote client, pointed at the run store.

The method names and the shapes of what they return are Flyte's
(``fetch_execution``, ``wait``, ``execute``, ``recent_executions``,
``set_signal``; executions with ``.id.name``, ``.is_done``, ``.outputs``,
``.node_executions``), so code written against a Flyte backend reads local runs
unchanged. Executions are records read through :mod:`kernelflow.api`; nothing
here talks to the engine. ``execute`` runs the workflow or launch plan locally
and returns once it has finished, whatever ``wait`` says (there is no backend to
leave it running on).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from kernelflow import api
from kernelflow.configuration import Config
from kernelflow.errors import KernelflowError, ParameterError

_DEFAULT_POLL = timedelta(seconds=0.5)


@dataclass(frozen=True)
class WorkflowExecutionIdentifier:
    """Flyte's execution id; ``name`` is the run id."""

    project: str | None
    domain: str | None
    name: str


@dataclass(frozen=True)
class NodeExecutionIdentifier:
    node_id: str
    execution_id: WorkflowExecutionIdentifier


class LiteralsResolver(dict):  # type: ignore[type-arg]
    """Values by name; ``get(name, as_type=...)`` as on Flyte's resolver (the type is unused:
    the values are Python objects already)."""

    def get(self, key: str, as_type: Any = None, default: Any = None) -> Any:  # type: ignore[override]
        return super().get(key, default)


@dataclass(frozen=True)
class FlyteNodeExecution:
    """One node of an execution: its last attempt."""

    id: NodeExecutionIdentifier
    task: str
    status: str
    attempts: int
    inputs: LiteralsResolver
    outputs: LiteralsResolver
    error: str | None

    @property
    def is_done(self) -> bool:
        return self.status not in ("running", "pending")


@dataclass(frozen=True)
class FlyteWorkflowExecution:
    """A run, as Flyte's execution object: read with :meth:`FlyteRemote.fetch_execution`."""

    id: WorkflowExecutionIdentifier
    workflow: str
    status: str
    inputs: LiteralsResolver
    error: str | None
    node_executions: Mapping[str, FlyteNodeExecution]
    _outputs: LiteralsResolver

    @property
    def is_done(self) -> bool:
        return self.status != "running"

    @property
    def is_successful(self) -> bool:
        return self.status == "succeeded"

    @property
    def outputs(self) -> LiteralsResolver:
        """The workflow's outputs by name (``o0``... or the NamedTuple's names)."""
        if not self.is_done:
            raise KernelflowError(
                f"execution {self.id.name!r} is still running; it has no outputs yet",
                fix="remote.wait(execution) first",
            )
        return self._outputs


class FlyteRemote:
    """Executions of the run store that ``config`` names (default: ``Config.auto()``).

    ``default_project`` and ``default_domain`` are kernelflow's project and domain
    (``--project`` / ``--domain``) for what ``execute`` runs and what
    ``recent_executions`` lists, as in Flyte; a call's own ``project`` / ``domain``
    win. Without either, runs go to the current ones (``$KERNELFLOW_PROJECT`` /
    ``$KERNELFLOW_DOMAIN``) and every run is listed. An execution's id names the
    project and domain its run was recorded in.
    """

    def __init__(
        self,
        config: Config | None = None,
        default_project: str | None = None,
        default_domain: str | None = None,
        data_upload_location: str | None = None,
        **options: Any,
    ) -> None:
        self.config = config or Config.auto()
        self.default_project = default_project
        self.default_domain = default_domain

    def fetch_execution(
        self, project: str | None = None, domain: str | None = None, name: str | None = None
    ) -> FlyteWorkflowExecution:
        """The execution (run) ``name``, as it is now."""
        if name is None:
            raise ParameterError(
                "fetch_execution needs name=RUN_ID", fix="`kernelflow runs` lists the run ids"
            )
        record = api.execution_record(name, store=self.config.store)
        if record is None:
            raise ParameterError(
                f"no execution {name!r} in the store {self.config.store}",
                parameter="name",
                actual=name,
                fix="`kernelflow runs` lists the run ids; check the Config's store",
            )
        return self._execution(record, project, domain)

    def sync_execution(
        self, execution: FlyteWorkflowExecution, sync_nodes: bool = True
    ) -> FlyteWorkflowExecution:
        """The execution read again (records are immutable snapshots)."""
        return self.fetch_execution(name=execution.id.name)

    sync = sync_execution

    def wait(
        self,
        execution: FlyteWorkflowExecution,
        timeout: timedelta | None = None,
        poll_interval: timedelta | None = None,
        sync_nodes: bool = True,
    ) -> FlyteWorkflowExecution:
        """Poll the store until the execution is done; a ``timeout`` raises TimeoutError."""
        interval = (poll_interval or _DEFAULT_POLL).total_seconds()
        deadline = None if timeout is None else time.monotonic() + timeout.total_seconds()
        current = self.sync_execution(execution)
        while not current.is_done:
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"execution {execution.id.name!r} is still running")
            time.sleep(interval)
            current = self.sync_execution(current)
        return current

    def execute(
        self,
        entity: Any,
        inputs: Mapping[str, Any] | None = None,
        project: str | None = None,
        domain: str | None = None,
        name: str | None = None,
        version: str | None = None,
        execution_name: str | None = None,
        wait: bool = False,
        **options: Any,
    ) -> FlyteWorkflowExecution:
        """Run a workflow or launch plan locally, into this store, and return its execution.

        As in Flyte, without ``wait`` it returns at once, the run going on in a
        background thread (:func:`kernelflow.api.start`; ``wait()`` follows it);
        with ``wait=True`` it returns the finished execution. A failed task does
        not raise: the execution says ``status == "failed"``.
        """
        scope = {
            "project": project or self.default_project,
            "domain": domain or self.default_domain,
        }
        if not wait:
            run_id = api.start(entity, dict(inputs or {}), store=self.config.store, **scope)
            return self.fetch_execution(name=run_id)
        result = api.run(entity, dict(inputs or {}), store=self.config.store, **scope)
        return self.fetch_execution(name=result.run_id)

    def recent_executions(
        self, project: str | None = None, domain: str | None = None, limit: int | None = 100
    ) -> list[FlyteWorkflowExecution]:
        """The newest executions first, at most ``limit``."""
        records = api.execution_records(
            limit,
            project=project or self.default_project,
            domain=domain or self.default_domain,
            store=self.config.store,
        )
        return [self.fetch_execution(name=record["run_id"]) for record in records]

    def set_signal(
        self,
        signal_id: str,
        execution_name: str,
        value: Any,
        project: str | None = None,
        domain: str | None = None,
        python_type: Any = None,
        literal_type: Any = None,
    ) -> None:
        """Give a waiting ``wait_for_input``/``approve`` node its value."""
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        api.send_signal(execution_name, signal_id, text, store=self.config.store)

    def list_signals(
        self, execution_name: str, project: str | None = None, domain: str | None = None, **_: Any
    ) -> list[dict[str, Any]]:
        """The signals the execution's nodes are waiting for now."""
        return api.waiting_nodes(execution_name, store=self.config.store)

    def _execution(
        self, record: Mapping[str, Any], project: str | None, domain: str | None
    ) -> FlyteWorkflowExecution:
        run_id = WorkflowExecutionIdentifier(
            record.get("project") or project or self.default_project,
            record.get("domain") or domain or self.default_domain,
            record["run_id"],
        )
        nodes = {
            node_id: FlyteNodeExecution(
                NodeExecutionIdentifier(node_id, run_id),
                node["task"],
                node["status"],
                node["attempts"],
                LiteralsResolver(node["inputs"]),
                LiteralsResolver(node["outputs"]),
                node["error"],
            )
            for node_id, node in record.get("nodes", {}).items()
        }
        return FlyteWorkflowExecution(
            run_id,
            record["workflow"],
            record["status"],
            LiteralsResolver(record["params"]),
            record["error"],
            nodes,
            LiteralsResolver(record.get("outputs") or {}),
        )


__all__ = [
    "FlyteNodeExecution",
    "FlyteRemote",
    "FlyteWorkflowExecution",
    "LiteralsResolver",
    "WorkflowExecutionIdentifier",
]
