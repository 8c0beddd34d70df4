"""The engine: the one place that runs workflows.

Every front end (``@workflow`` calls, direct task calls, notebooks, the CLI,
papermill) hands a graph to :class:`Engine`. For each node, in dependency order,
it resolves the inputs, looks the cache up, hands a miss to the executor,
checks and persists the outputs as they arrive, records every attempt in the run
store, retries failures with backoff, and tells listeners what happened.
Independent branches go on when one fails, so their work is kept.
"""

from __future__ import annotations

import functools
import os
import platform
import secrets
import sys
import time
import warnings
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from kernelflow._core.cache_key import cache_key
from kernelflow._core.errors import (
    DefinitionError,
    IntegrityError,
    KernelflowError,
    KernelflowWarning,
    OutputTypeError,
    TaskFailedError,
    TaskTimeoutError,
)
from kernelflow._core.graph import Const, Graph, Node, NodeId, NodeOutput, Param
from kernelflow._core.hashing import hash_or_none
from kernelflow._core.interface import type_name
from kernelflow._core.version import graph_version
from kernelflow._version import __version__
from kernelflow.engine.backends import Executor, SequentialExecutor
from kernelflow.engine.context import ExecutionContext
from kernelflow.engine.events import EventBus, Listener
from kernelflow.engine.execute import execute_task
from kernelflow.engine.mapping import MapNodes, MapState
from kernelflow.engine.params import resolve_params
from kernelflow.store.artifacts import ArtifactRef
from kernelflow.store.home import Store

if TYPE_CHECKING:
    from kernelflow.engine.resume import ResumePlan
    from kernelflow.store.runs import Encoded

RunStatus = Literal["running", "succeeded", "failed", "interrupted"]
TaskStatus = Literal["pending", "running", "succeeded", "cached", "failed", "skipped"]


class RunTarget(Protocol):
    """What the engine runs: a named graph with a version (a Workflow, a notebook)."""

    name: str
    graph: Graph

    @property
    def version(self) -> str: ...


@dataclass(frozen=True)
class GraphTarget:
    """A graph built on the fly (a task called on its own)."""

    name: str
    graph: Graph
    # Hashes of the graph's constants, by id of their binding, shared by the
    # version and the run's cache keys: a task called on a big frame hashes it once.
    const_hashes: dict[int, str | None] = field(default_factory=dict, compare=False, repr=False)

    @functools.cached_property
    def version(self) -> str:
        return graph_version(self.graph, known=self.const_hashes)


@dataclass
class TaskRun:
    """What happened to one node in a run."""

    node: str
    task: str
    status: TaskStatus = "pending"
    attempts: int = 0
    duration: float = 0.0
    saved: float = 0.0
    cache_key: str | None = None
    error: KernelflowError | None = None


@dataclass
class RunResult:
    """The outcome of a run: ``outputs`` by workflow output name, ``tasks`` by node id."""

    run_id: str
    workflow: str
    version: str
    status: RunStatus
    outputs: dict[str, Any]
    tasks: dict[str, TaskRun]
    error: KernelflowError | None = None
    duration: float = 0.0
    values: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Every value produced or restored in the run: node id -> output name -> value."""

    def raise_for_status(self) -> None:
        """Raise the first task error, if the run failed."""
        if self.error is not None:
            raise self.error

    def __repr__(self) -> str:
        counts: dict[str, int] = {}
        for task_run in self.tasks.values():
            counts[task_run.status] = counts.get(task_run.status, 0) + 1
        summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        return f"<RunResult {self.run_id} {self.workflow} {self.status}: {summary}>"


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
        run = _Run(
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
        return run.execute()


_DEFER_BELOW_SECONDS = 0.02  # tasks quicker than this have their records batched


def run_environment(packages: Mapping[str, str]) -> dict[str, Any]:
    """What a run needs to be reproduced: interpreter, platform, package versions."""
    return {
        "python": platform.python_version(),
        "kernelflow": __version__,
        "platform": platform.platform(),
        "executable": sys.executable,
        "packages": dict(sorted(packages.items())),
    }


def new_run_id() -> str:
    """Sortable by start time, unique across processes.

    48 random bits: a notebook calling a task 1,000 times in one second (each
    call is a run) would, with 24 bits, collide about once in 30 such seconds.
    """
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(6)}"


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


@dataclass
class _Attempt:
    node: NodeId
    attempt: int
    key: str | None
    manifest: Mapping[str, object] | None
    inputs: dict[str, dict[str, object]]
    started: float
    clock: float
    deadline: float | None = None


@dataclass
class _Values:
    """Values and content hashes flowing along the edges of one run."""

    params: Mapping[str, Any]
    outputs: dict[tuple[str, str], Any] = field(default_factory=dict)
    hashes: dict[tuple[str, str], str | None] = field(default_factory=dict)
    refs: dict[tuple[str, str], dict[str, object]] = field(default_factory=dict)
    _fixed_hashes: dict[int, str | None] = field(default_factory=dict)

    def resolve(self, binding: Any) -> tuple[Any, str | None, dict[str, object]]:
        """The value, its content hash, and its provenance for the run store."""
        if isinstance(binding, NodeOutput):
            slot = (binding.node, binding.output)
            source = {"node": binding.node, "output": binding.output}
            return self.outputs[slot], self.hashes[slot], source
        if isinstance(binding, Param):
            value = self.params[binding.name]
            return value, self._hash_once(binding, value), {"param": binding.name}
        assert isinstance(binding, Const)
        return binding.value, self._hash_once(binding, binding.value), {"const": True}

    def _hash_once(self, binding: Any, value: Any) -> str | None:
        key = id(binding)
        if key not in self._fixed_hashes:
            self._fixed_hashes[key] = hash_or_none(value)
        return self._fixed_hashes[key]


class _Run(MapNodes):
    """The state of one run while it executes; the engine's scheduling loop."""

    def __init__(
        self,
        engine: Engine,
        target: RunTarget,
        params: Mapping[str, Any],
        selected: list[NodeId],
        *,
        force: bool,
        run_id: str,
        resume: ResumePlan | None = None,
        attach: bool = False,
        new_id: bool = False,
    ) -> None:
        self.engine = engine
        self.new_id = new_id
        self.attach = attach
        self.resume = resume
        self.checkpoint_run = resume.root if resume is not None else run_id
        self.store = engine.store
        self.target = target
        self.graph = target.graph
        self.run_id = run_id
        self.force = force
        known = getattr(target, "const_hashes", None)
        self.values = _Values(params, _fixed_hashes=known if known is not None else {})
        self.bus = EventBus(run_id, target.name, engine.listeners)
        chosen = set(selected)
        self.order = selected
        self.tasks = {n: TaskRun(n, self.graph.nodes[n].task.name) for n in selected}
        self.children = {
            n: [c for c in kids if c in chosen]
            for n, kids in self.graph.downstream().items()
            if n in chosen
        }
        self.waiting = {n: len(set(self.graph.nodes[n].upstream())) for n in selected}
        self.ready = deque(n for n in selected if self.waiting[n] == 0)
        self.running: dict[Future[Any], _Attempt] = {}
        self.maps: dict[str, MapState] = {}
        self._type_names: dict[Any, str] = {}
        self.delayed: list[tuple[float, NodeId, int]] = []
        self.failures: list[KernelflowError] = []

    # --- the loop -------------------------------------------------------------

    def execute(self) -> RunResult:
        started = time.perf_counter()
        if not self.attach:
            self._start_record()
        self.bus.emit("run_started", nodes=tuple(self.order))
        status: RunStatus = "interrupted"
        try:
            self._loop()
            status = "failed" if self.failures else "succeeded"
        except BaseException:
            for future in self.running:
                future.cancel()
            raise
        finally:
            outputs = self._outputs()
            error = self.failures[0] if self.failures else None
            if self.attach:
                self.store.runs.flush()
            else:  # with the deferred records, in one transaction
                self._finish_record(status, error)
            self.store.runs.sync()
            duration = time.perf_counter() - started
            self.bus.emit(
                "run_finished",
                status=status,
                duration=duration,
                error=str(error) if error else None,
            )
        values: dict[str, dict[str, Any]] = {}
        for (node_id, name), value in self.values.outputs.items():
            values.setdefault(node_id, {})[name] = value
        return RunResult(
            self.run_id,
            self.target.name,
            self.target.version,
            status,
            outputs,
            self.tasks,
            error,
            duration,
            values,
        )

    def _loop(self) -> None:
        while self.ready or self.running or self.delayed:
            self._release_due_retries()
            # At most one task per worker in flight: a timeout counts from submission,
            # so a task must not wait in the executor's queue behind busy workers.
            capacity = max(1, self.engine.executor.workers)
            while self.ready and len(self.running) < capacity:
                self._launch(self.ready.popleft(), attempt=1)
            if self.running:
                self._collect()
            elif self.delayed and not self.ready:
                time.sleep(max(0.0, min(due for due, _, _ in self.delayed) - time.monotonic()))

    def _collect(self) -> None:
        now = time.monotonic()
        horizon = [a.deadline for a in self.running.values() if a.deadline is not None]
        horizon += [due for due, _, _ in self.delayed]
        timeout = max(0.0, min(horizon) - now) if horizon else None
        done, _ = wait(list(self.running), timeout=timeout, return_when=FIRST_COMPLETED)
        for future in done:
            self._settle(self.running.pop(future), future)
        now = time.monotonic()
        for future, attempt in list(self.running.items()):
            if attempt.deadline is not None and now >= attempt.deadline:
                if self.running.pop(future, None) is None:
                    continue  # another batch of the same map node timed out first
                future.cancel()
                timeout_s = self.graph.nodes[attempt.node].task.options.timeout
                self._attempt_failed(
                    attempt,
                    TaskTimeoutError(
                        f"task {attempt.node!r} ran longer than its timeout of {timeout_s:g} s",
                        task=attempt.node,
                        timeout=timeout_s,
                        fix="raise the task's timeout, or make it faster",
                    ),
                )

    def _release_due_retries(self) -> None:
        now = time.monotonic()
        due = [item for item in self.delayed if item[0] <= now]
        for item in due:
            self.delayed.remove(item)
            self._launch(item[1], attempt=item[2])

    # --- one node ---------------------------------------------------------------

    def _launch(self, node_id: NodeId, *, attempt: int) -> None:
        node = self.graph.nodes[node_id]
        task = node.task
        inputs, provenance, hashes = self._inputs(node)
        finished = self.resume.finished if self.resume is not None else {}
        if (
            attempt == 1
            and node_id in finished
            and self._restore_finished(node, finished[node_id], provenance)
        ):
            return
        key, manifest = self._cache_key(node, hashes)
        if (
            key is not None
            and attempt == 1
            and not self.force
            and self._restore(node, key, provenance)
        ):
            return
        self.tasks[node_id].status = "running"
        self.tasks[node_id].attempts = attempt
        self.bus.emit("task_started", node=node_id, task=task.name, attempt=attempt)
        context = ExecutionContext(
            self.run_id, task.name, node_id, attempt, str(self.store.home), self.checkpoint_run
        )
        timeout = task.options.timeout
        record = _Attempt(
            node_id,
            attempt,
            key,
            manifest,
            provenance,
            time.time(),
            time.perf_counter(),
            time.monotonic() + timeout if timeout is not None else None,
        )
        split = getattr(task, "map_items", None)
        pieces = split(inputs) if split is not None else None
        if pieces is not None:
            self._launch_map(record, context, pieces[0], pieces[1], inputs, hashes)
            return
        self.store.runs.sync()  # user code may kill the process: records so far survive
        future = self.engine.executor.submit(
            execute_task, task, inputs, context, timeout=timeout, label=node_id
        )
        if future.done():
            self._settle(record, future)
        else:
            self.running[future] = record

    def _inputs(
        self, node: Node
    ) -> tuple[dict[str, Any], dict[str, dict[str, object]], dict[str, str | None]]:
        inputs, provenance, hashes = {}, {}, {}
        for name, binding in node.bindings.items():
            value, digest, source = self.values.resolve(binding)
            inputs[name] = value
            hashes[name] = digest
            provenance[name] = {"hash": digest, "source": source}
        return inputs, provenance, hashes

    def _cache_key(
        self, node: Node, hashes: Mapping[str, str | None]
    ) -> tuple[str | None, Mapping[str, object] | None]:
        task = node.task
        if not task.options.cache:
            return None, None
        missing = [name for name, digest in hashes.items() if digest is None]
        if missing:
            warnings.warn(
                f"task {node.id!r} is not cached in this run: its input {missing[0]!r} has no "
                "content hash (it cannot be pickled)",
                KernelflowWarning,
                stacklevel=2,
            )
            return None, None
        key = cache_key(
            task=task.name,
            code_hash=task.code_hash,
            cache_version=task.options.cache_version,
            input_hashes=hashes,
        )  # type: ignore[arg-type]
        return key.key, key.manifest

    def _restore(self, node: Node, key: str, provenance: dict[str, dict[str, object]]) -> bool:
        """Bind the outputs of a cache hit; False on a miss or a damaged entry."""
        hit = self.store.runs.cache_lookup(key)
        if hit is None:
            return False
        if not self._bind_saved(node, hit.outputs, what="cached"):
            self.store.runs.cache_delete(key=key)
            return False
        outputs = hit.outputs_json  # recorded as read, not re-encoded
        self._record(node, 1, "cached", key, provenance, outputs, time.time(), 0.0)
        self._mark_cached(node, key, hit.duration)
        return True

    def _restore_finished(
        self, node: Node, record: Mapping[str, Any], provenance: dict[str, dict[str, object]]
    ) -> bool:
        """Bind what a node produced in the run being resumed; False if it is damaged."""
        outputs: Mapping[str, Any] = record.get("outputs") or {}
        if set(outputs) != set(node.task.interface.outputs):
            return False  # some output was never saved: run the node again
        if not self._bind_saved(node, outputs, what="saved"):
            return False
        self._record(
            node, 1, "cached", record.get("cache_key"), provenance, outputs, time.time(), 0.0
        )
        self._mark_cached(node, record.get("cache_key"), float(record.get("duration") or 0.0))
        return True

    def _load_saved(
        self, node: Node, outputs: Mapping[str, Any], *, what: str
    ) -> dict[str, Any] | None:
        """Saved outputs by name; None (with a warning) when one is damaged: recompute."""
        loaded: dict[str, Any] = {}
        for name, meta in outputs.items():
            try:
                loaded[name] = self.store.artifacts.get(ArtifactRef.from_dict(meta["artifact"]))
            except IntegrityError as error:
                warnings.warn(
                    f"{what} output {name!r} of task {node.id!r} is damaged "
                    f"({getattr(error, 'reason', error)}); recomputing it",
                    KernelflowWarning,
                    stacklevel=3,
                )
                return None
        return loaded

    def _bind_saved(self, node: Node, outputs: Mapping[str, Any], *, what: str) -> bool:
        """Load saved outputs into the run; a damaged one means recompute."""
        loaded = self._load_saved(node, outputs, what=what)
        if loaded is None:
            return False
        for name, meta in outputs.items():
            slot = (node.id, name)
            self.values.outputs[slot] = loaded[name]
            self.values.hashes[slot] = meta.get("hash")
            self.values.refs[slot] = meta
        return True

    def _mark_cached(self, node: Node, key: str | None, saved: float) -> None:
        task_run = self.tasks[node.id]
        task_run.status, task_run.saved, task_run.cache_key = "cached", saved, key
        self.bus.emit("task_cached", node=node.id, task=node.task.name, saved=saved)
        self._done(node.id)

    def _settle(self, attempt: _Attempt, future: Future[Any]) -> None:
        if attempt.node in self.maps:
            self._settle_batch(attempt, future)
            return
        try:
            outputs = future.result()
        except Exception as error:
            self._attempt_failed(attempt, error)
            return
        self._succeeded(attempt, outputs)

    def _succeeded(self, attempt: _Attempt, outputs: Mapping[str, Any]) -> None:
        duration = time.perf_counter() - attempt.clock
        node = self.graph.nodes[attempt.node]
        persisted = self._persist(node, outputs)
        if attempt.key is not None and len(persisted) == len(outputs):
            self.store.runs.cache_put(
                attempt.key,
                task=node.task.name,
                outputs=persisted,
                manifest=attempt.manifest or {},
                duration=duration,
                defer=duration < _DEFER_BELOW_SECONDS,
            )
        self._record(
            node,
            attempt.attempt,
            "succeeded",
            attempt.key,
            attempt.inputs,
            persisted,
            attempt.started,
            duration,
        )
        task_run = self.tasks[node.id]
        task_run.status, task_run.duration, task_run.cache_key = "succeeded", duration, attempt.key
        self.bus.emit(
            "task_finished",
            node=node.id,
            task=node.task.name,
            attempt=attempt.attempt,
            duration=duration,
        )
        self._done(node.id)

    def _persist(self, node: Node, outputs: Mapping[str, Any]) -> dict[str, dict[str, object]]:
        """Hash and store each output; one that cannot be stored is kept in memory only."""
        persisted = {}
        for name, value in outputs.items():
            slot = (node.id, name)
            self.values.outputs[slot] = value
            digest = self.values.hashes[slot] = hash_or_none(value)
            try:
                ref = self.store.artifacts.put(value)
            except Exception as error:
                warnings.warn(
                    f"output {name!r} of task {node.id!r} could not be saved "
                    f"({type(error).__name__}: {error}); it is not cached and a resumed run "
                    "will compute it again",
                    KernelflowWarning,
                    stacklevel=2,
                )
                continue
            meta = {
                "hash": digest,
                "artifact": ref.to_dict(),
                "type": self._type_name(node.task.interface.outputs.get(name)),
            }
            self.values.refs[slot] = meta
            persisted[name] = meta
        return persisted

    def _type_name(self, declared: Any) -> str:
        try:
            return self._type_names[declared]
        except KeyError:
            text = self._type_names[declared] = type_name(declared)
            return text
        except TypeError:  # an unhashable annotation
            return type_name(declared)

    def _attempt_failed(self, attempt: _Attempt, error: BaseException) -> None:
        node = self.graph.nodes[attempt.node]
        self._abort_map(node.id)
        if not isinstance(error, KernelflowError):
            error = TaskFailedError(
                f"task {node.id!r} could not run: {type(error).__name__}: {error}",
                task=node.id,
                error_type=type(error).__name__,
                fix="check that the task's inputs and outputs can be sent to the worker",
            )
        duration = time.perf_counter() - attempt.clock
        self._record(
            node,
            attempt.attempt,
            "failed",
            attempt.key,
            attempt.inputs,
            {},
            attempt.started,
            duration,
            error=str(error),
        )
        retryable = not isinstance(error, (OutputTypeError, DefinitionError))
        if retryable and attempt.attempt <= node.task.options.retries:
            delay = min(self.engine.retry_delay * 2 ** (attempt.attempt - 1), 60.0)
            self.delayed.append((time.monotonic() + delay, node.id, attempt.attempt + 1))
            self.bus.emit(
                "task_retrying",
                node=node.id,
                task=node.task.name,
                attempt=attempt.attempt,
                error=str(error),
                duration=delay,
            )
            return
        task_run = self.tasks[node.id]
        task_run.status, task_run.error, task_run.duration = "failed", error, duration
        self.failures.append(error)
        self.bus.emit(
            "task_failed",
            node=node.id,
            task=node.task.name,
            attempt=attempt.attempt,
            error=str(error),
            duration=duration,
        )
        self._skip_downstream(node.id)

    def _skip_downstream(self, node_id: NodeId) -> None:
        stack = list(self.children.get(node_id, []))
        while stack:
            child = stack.pop()
            if self.tasks[child].status != "pending":
                continue
            self.tasks[child].status = "skipped"
            self.bus.emit("task_skipped", node=child, task=self.tasks[child].task)
            stack.extend(self.children.get(child, []))

    def _done(self, node_id: NodeId) -> None:
        for child in self.children.get(node_id, []):
            self.waiting[child] -= 1
            if self.waiting[child] == 0:
                self.ready.append(child)

    # --- records ----------------------------------------------------------------

    def _record(
        self,
        node: Node,
        attempt: int,
        status: str,
        key: str | None,
        inputs: Mapping[str, Mapping[str, object]],
        outputs: Mapping[str, Mapping[str, object]] | Encoded,
        started: float,
        duration: float,
        error: str | None = None,
    ) -> None:
        # Quick tasks' records are written in batches (see RunStore.flush): a commit
        # costs more than they do. A record of real work, or a failure, is written
        # at once, after what was deferred, so the order of records is kept.
        runs = self.store.runs
        defer = status in ("succeeded", "cached") and duration < _DEFER_BELOW_SECONDS
        if not defer:
            runs.flush()
        runs.record_node(
            run_id=self.run_id,
            node=node.id,
            task=node.task.name,
            attempt=attempt,
            status=status,
            cache_hit=status == "cached",
            cache_key=key,  # type: ignore[arg-type]
            code_hash=node.task.code_hash,
            inputs=inputs,
            outputs=outputs,
            started=started,
            duration=duration,
            error=error,
            defer=defer,
        )
        if defer and runs.flush_due():
            runs.flush()

    def _start_record(self) -> None:
        packages: dict[str, str] = {}
        for node_id in self.order:
            packages.update(self.graph.nodes[node_id].task.modules)
        environment = run_environment(packages)
        self.store.runs.start_run(
            run_id=self.run_id,
            workflow=self.target.name,
            version=self.target.version,
            params=dict(self.values.params),
            environment=environment,
            pid=os.getpid(),
            resumed_from=self.resume.previous if self.resume is not None else None,
            defer=self.new_id,  # committed with the run's first batch of records
        )

    def _finish_record(self, status: RunStatus, error: KernelflowError | None) -> None:
        self.store.runs.finish_run(
            self.run_id,
            status=status,
            error=str(error) if error else None,
            outputs={
                name: self.values.refs.get(slot, {}) for name, slot in self._output_slots().items()
            },
            defer=True,  # committed in the background, with the deferred records
        )

    def _output_slots(self) -> dict[str, tuple[str, str]]:
        return {
            name: (b.node, b.output)
            for name, b in self.graph.outputs.items()
            if isinstance(b, NodeOutput)
        }

    def _outputs(self) -> dict[str, Any]:
        outputs = {}
        for name, binding in self.graph.outputs.items():
            if isinstance(binding, NodeOutput):
                slot = (binding.node, binding.output)
                if slot in self.values.outputs:
                    outputs[name] = self.values.outputs[slot]
            else:
                outputs[name] = self.values.resolve(binding)[0]
        return outputs
