"""The scheduling loop of one run: the only code that decides what runs when.

For each node, in dependency order, it resolves the inputs, restores what a
resumed run or the cache already has, hands a miss to the executor, and binds
what comes back; it retries failures with backoff, skips what depends on a
failure, and lets independent branches go on. What a node's computation needs
around its execution (keys, look-ups, persistence) is :class:`NodeCompute`;
what is written to the run store, and when, is the recorder's business; map
nodes are :class:`~kernelflow.engine.mapping.MapRun` objects the loop drives.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Mapping
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kernelflow._core.adapt import adapt
from kernelflow._core.cache_key import CacheKey
from kernelflow._core.errors import (
    KernelflowError,
    StoreError,
    TaskFailedError,
    TaskTimeoutError,
)
from kernelflow._core.graph import Const, Node, NodeId, NodeOutput, Param
from kernelflow._core.hash_method import output_hash
from kernelflow._core.hashing import hash_or_none
from kernelflow._core.resources import requirements_of
from kernelflow._core.status import RunStatus
from kernelflow._core.task import Task, check_success_ratio
from kernelflow._core.validators import validator_modules
from kernelflow.engine.compute import NodeCompute, OutputMeta
from kernelflow.engine.context import ExecutionContext
from kernelflow.engine.events import EventBus
from kernelflow.engine.execute import execute_and_store, execute_task
from kernelflow.engine.mapping import MapRun, execute_batch, in_flight_limit
from kernelflow.engine.nested import ParentRun, enter_run, leave_run
from kernelflow.engine.results import RunResult, RunTarget, TaskRun, run_environment
from kernelflow.engine.stored import (
    REF_TYPES,
    LoadedOutputs,
    Stored,
    holds_refs,
    load_output,
    materialize_inputs,
)
from kernelflow.store.cache_locks import CacheLocks
from kernelflow.store.recorder import RunRecorder

if TYPE_CHECKING:
    from kernelflow.engine.resume import ResumePlan
    from kernelflow.engine.runner import Engine
    from kernelflow.store.runs import Encoded


@dataclass
class Attempt:
    """One attempt of one node in flight: what its record and its retry need."""

    node: NodeId
    attempt: int
    key: CacheKey | None
    inputs: dict[str, dict[str, object]]
    started: float
    clock: float
    deadline: float | None = None


@dataclass
class Values:
    """Values and content hashes flowing along the edges of one run."""

    params: Mapping[str, Any]
    outputs: dict[tuple[str, str], Any] = field(default_factory=dict)
    hashes: dict[tuple[str, str], str | None] = field(default_factory=dict)
    refs: dict[tuple[str, str], Mapping[str, object]] = field(default_factory=dict)
    fixed_hashes: dict[int, str | None] = field(default_factory=dict)

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

    def bind(
        self,
        node: str,
        values: Mapping[str, Any],
        metas: Mapping[str, Any],
        declared: Mapping[str, Any] | None = None,
    ) -> None:
        """Bind a node's outputs, with their hashes and refs where they were persisted."""
        for name, value in values.items():
            slot = (node, name)
            self.outputs[slot] = value
            meta = metas.get(name)
            if meta is None:  # kept in memory only: hashed here for the downstream keys
                self.hashes[slot] = output_hash(value, (declared or {}).get(name))
            else:
                self.hashes[slot] = meta.get("hash")  # type: ignore[assignment]
                self.refs[slot] = meta

    def _hash_once(self, binding: Any, value: Any) -> str | None:
        key = id(binding)
        if key not in self.fixed_hashes:
            self.fixed_hashes[key] = hash_or_none(value)
        return self.fixed_hashes[key]


def retryable(error: KernelflowError) -> bool:
    """Whether a failed attempt may be retried: Flyte's rule.

    Recoverable failures are retried: what the body raised as
    ``RecoverableError`` (``FlyteRecoverableException``), system failures (a
    worker that died, a store that could not be written) and timeouts. Any other
    exception from a task's body is a user error: the same code on the same
    inputs would fail again, so it fails the task at once, its retries unspent.
    """
    if isinstance(error, TaskTimeoutError):
        return True
    return bool(getattr(error, "recoverable", False))


class RunLoop:
    """The state of one run while it executes."""

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
        self.executor = engine.executor
        self.new_id = new_id
        self.resume = resume
        self.checkpoint_run = resume.root if resume is not None else run_id
        self.store = engine.store
        self.recorder = RunRecorder(engine.store.runs, run_id, attached=attach)
        # On a process backend, workers write outputs where they run and only
        # references come back (kernelflow.engine.stored).
        self.in_workers = self.executor.crosses_processes
        self.compute = NodeCompute(
            engine.store.artifacts, engine.store.runs, self.recorder, lazy=self.in_workers
        )
        # The store key's fingerprint, which workers that write values must share.
        self.key_id = engine.store.artifacts.key_id(create=True) if self.in_workers else None
        self.locks = CacheLocks(engine.store.home)  # cache_serialize=True (Flyte's option)
        self.target = target
        self.graph = target.graph
        self.run_id = run_id
        self.force = force
        known = getattr(target, "const_hashes", None)
        self.values = Values(params, fixed_hashes=known if known is not None else {})
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
        self.running: dict[Future[Any], Attempt] = {}
        self.maps: dict[str, MapRun] = {}
        self.delayed: list[tuple[float, NodeId, int]] = []
        self.failures: list[KernelflowError] = []
        # The validator plugins (pandera) a worker must import: known when the run starts.
        self.plugins = validator_modules()
        self.attach = attach

    # --- the loop -------------------------------------------------------------

    def execute(self) -> RunResult:
        started = time.perf_counter()
        self._report_start()
        self.bus.emit("run_started", nodes=tuple(self.order))
        status: RunStatus = "interrupted"
        if not self.attach:  # nodes that build graphs as they run nest theirs in this run
            enter_run(
                ParentRun(
                    self.run_id, self.target.name, tuple(self.bus.listeners), self.executor.workers
                )
            )
        try:
            self._loop()
            status = "failed" if self.failures else "succeeded"
        except StoreError as error:  # the store cannot take records (a full disk...)
            self._cancel_running()
            self.failures.append(error)
            status = "failed"
        except BaseException:
            self._cancel_running()
            raise
        finally:
            self.locks.release_all()
            if not self.attach:
                leave_run(self.run_id)
            outputs = self._outputs()
            status = self._record_end(status)
            error = self.failures[0] if self.failures else None
            duration = time.perf_counter() - started
            self.bus.emit(
                "run_finished",
                status=status,
                duration=duration,
                error=str(error) if error else None,
            )
        values: dict[str, Any] = {}
        for (node_id, name), value in self.values.outputs.items():
            values.setdefault(node_id, {})[name] = value
        for node_id, produced in values.items():  # loaded from the store when asked for
            for value in produced.values():
                if isinstance(value, REF_TYPES):
                    values[node_id] = LoadedOutputs(node_id, produced, self.store.artifacts)
                    break
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
            dict(self.values.params),
        )

    def _cancel_running(self) -> None:
        for future in self.running:
            future.cancel()

    def _record_end(self, status: RunStatus) -> RunStatus:
        """Tell the recorder how the run ended; a store that cannot take it fails the run.

        The values computed so far stay in the result either way: nothing already
        computed is lost with the store.
        """
        error = self.failures[0] if self.failures else None
        try:
            self.recorder.finished(
                status=status, error=str(error) if error else None, outputs=self._output_refs()
            )
        except StoreError as store_error:
            if store_error not in self.failures:
                self.failures.append(store_error)
            return "failed" if status == "succeeded" else status
        return status

    def _loop(self) -> None:
        while self.ready or self.running or self.delayed:
            self._release_due_retries()
            # At most one task per worker in flight: a timeout counts from submission,
            # so a task must not wait in the executor's queue behind busy workers.
            capacity = max(1, self.executor.workers)
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
            if future in self.running:  # not withdrawn by a failed sibling batch
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
        key = self.compute.key(task, node_id, hashes)
        if (
            key is not None
            and attempt == 1
            and not self.force
            and self._restore_cached(node, key, provenance)
        ):
            return
        if (
            key is not None
            and task.options.cache_serialize
            and self.locks.acquire(key.key)  # waits while another process computes it
            and attempt == 1
            and not self.force
            and self._restore_cached(node, key, provenance)  # it did: a hit after all
        ):
            self.locks.release(key.key)
            return
        self.tasks[node_id].status = "running"
        self.tasks[node_id].attempts = attempt
        self.bus.emit("task_started", node=node_id, task=task.name, attempt=attempt)
        if task.waiting_for is not None:  # a gate node (workflows.human)
            self.bus.emit(
                "task_waiting",
                node=node_id,
                task=task.name,
                waiting_for=task.waiting_for,
                gate=task.gate,
                signal=task.signal,
            )
        context = ExecutionContext(
            self.run_id,
            task.name,
            node_id,
            attempt,
            str(self.store.home),
            self.checkpoint_run,
            plugins=self.plugins,
            store_url=self.store.store_url,
            key_id=self.key_id,
        )
        timeout = task.options.timeout
        record = Attempt(
            node_id,
            attempt,
            key,
            provenance,
            time.time(),
            time.perf_counter(),
            time.monotonic() + timeout if timeout is not None else None,
        )
        pieces = None if type(task).map_items is Task.map_items else self._map_items(task, inputs)
        if pieces is not None:
            self._launch_map(record, context, pieces[0], pieces[1], inputs, hashes)
            return
        self.recorder.before_user_code()
        run = execute_and_store if self.in_workers else execute_task
        future = self.executor.submit(run, task, inputs, context, timeout=timeout, label=node_id)
        if future.done():
            self._settle(record, future)
        else:
            self.running[future] = record

    def _map_items(
        self, task: Task, inputs: dict[str, Any]
    ) -> tuple[Task, list[dict[str, Any]]] | None:
        """A map's item task and items.

        A value that is one reference (a list a worker made) is loaded here to be
        split; another map's output, a list of references, is split as it is, so
        each item is read by the worker that runs it. An input that every item
        shares stays a reference, for the workers to read.
        """
        whole = {name: value for name, value in inputs.items() if isinstance(value, Stored)}
        if not whole:
            return task.map_items(inputs)
        loaded = {**inputs, **materialize_inputs(whole, lambda: self.store.artifacts, task.name)}
        pieces = task.map_items(loaded)
        for item in pieces[1] if pieces is not None else ():
            for name in whole:
                if item.get(name) is loaded[name]:
                    item[name] = inputs[name]
        return pieces

    def _inputs(
        self, node: Node
    ) -> tuple[dict[str, Any], dict[str, dict[str, object]], dict[str, str | None]]:
        inputs, provenance, hashes = {}, {}, {}
        for name, binding in node.bindings.items():
            value, digest, source = self.values.resolve(binding)
            # A value in the store is read (and adapted) by the task's worker.
            adapted = (
                value
                if isinstance(value, REF_TYPES)
                else adapt(value, node.task.interface.inputs.get(name))
            )
            if adapted is not value:  # a path where a file is declared: hash the content
                value, digest = adapted, hash_or_none(adapted)
            inputs[name] = value
            hashes[name] = digest
            provenance[name] = {"hash": digest, "source": source}
        return inputs, provenance, hashes

    def _restore_cached(
        self, node: Node, key: CacheKey, provenance: dict[str, dict[str, object]]
    ) -> bool:
        """Bind the outputs of a cache hit; False on a miss or a damaged entry."""
        found = self.compute.lookup(key.key, node.id, node.task)
        if found is None:
            return False
        loaded, hit = found
        self.values.bind(node.id, loaded, hit.outputs)
        self._restored(node, key.key, provenance, hit.outputs_json, hit.duration)
        return True

    def _restore_finished(
        self, node: Node, record: Mapping[str, Any], provenance: dict[str, dict[str, object]]
    ) -> bool:
        """Bind what a node produced in the run being resumed; False if it is damaged."""
        outputs: Mapping[str, Any] = record.get("outputs") or {}
        if set(outputs) != set(node.task.interface.outputs):
            return False  # some output was never saved: run the node again
        loaded = self.compute.load(outputs, node.id, what="saved")
        if loaded is None:
            return False
        self.values.bind(node.id, loaded, outputs)
        duration = float(record.get("duration") or 0.0)
        self._restored(node, record.get("cache_key"), provenance, outputs, duration)
        return True

    def _restored(
        self,
        node: Node,
        key: str | None,
        provenance: Mapping[str, Mapping[str, object]],
        outputs: Mapping[str, Mapping[str, object]] | Encoded,
        saved: float,
    ) -> None:
        self.recorder.attempt(
            node=node.id,
            task=node.task.name,
            attempt=1,
            status="cached",
            cache_key=key,
            code_hash=node.task.code_hash,
            inputs=provenance,
            outputs=outputs,
            started=time.time(),
            duration=0.0,
        )
        task_run = self.tasks[node.id]
        task_run.status, task_run.saved, task_run.cache_key = "cached", saved, key
        self.bus.emit("task_cached", node=node.id, task=node.task.name, saved=saved)
        self._done(node.id)

    def _settle(self, attempt: Attempt, future: Future[Any]) -> None:
        if attempt.node in self.maps:
            self._settle_batch(attempt, future)
            return
        try:
            outputs = future.result()
        except Exception as error:
            self._attempt_failed(attempt, error)
            return
        self._succeeded(attempt, outputs)

    def _succeeded(self, attempt: Attempt, outputs: Mapping[str, Any]) -> None:
        duration = time.perf_counter() - attempt.clock
        node = self.graph.nodes[attempt.node]
        try:
            persisted = self.compute.persist(node.task, node.id, outputs)
        except TaskFailedError as error:  # an output's transformer raised (custom types)
            self._attempt_failed(attempt, error)
            return
        self.values.bind(node.id, outputs, persisted, node.task.interface.outputs)
        self.compute.remember(
            attempt.key, node.task, persisted, produced=len(outputs), duration=duration
        )
        if attempt.key is not None:  # cache_serialize: the entry is made, let waiters in
            self.locks.release(attempt.key.key)
        self._report_attempt(attempt, "succeeded", persisted, duration)
        task_run = self.tasks[node.id]
        task_run.status, task_run.duration = "succeeded", duration
        task_run.cache_key = attempt.key.key if attempt.key is not None else None
        self.bus.emit(
            "task_finished",
            node=node.id,
            task=node.task.name,
            attempt=attempt.attempt,
            duration=duration,
        )
        self._done(node.id)

    def _attempt_failed(self, attempt: Attempt, error: BaseException) -> None:
        node = self.graph.nodes[attempt.node]
        if attempt.key is not None:  # cache_serialize: a waiter computes it in turn
            self.locks.release(attempt.key.key)
        self._abort_map(node.id)
        if not isinstance(error, KernelflowError):
            # Not raised by the task's body: a system failure (a worker died, a value
            # could not be sent to it). As in Flyte, it may be retried.
            error = TaskFailedError(
                f"task {node.id!r} could not run: {type(error).__name__}: {error}",
                task=node.id,
                error_type=type(error).__name__,
                recoverable=True,
                fix="check that the task's inputs and outputs can be sent to the worker",
            )
        duration = time.perf_counter() - attempt.clock
        self._report_attempt(attempt, "failed", {}, duration, error=str(error))
        if retryable(error) and attempt.attempt <= node.task.options.retries:
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

    # --- map nodes ----------------------------------------------------------------

    def _launch_map(
        self,
        attempt: Attempt,
        context: ExecutionContext,
        item_task: Task,
        items: list[dict[str, Any]],
        inputs: Mapping[str, Any],
        hashes: Mapping[str, str | None],
    ) -> None:
        node = self.graph.nodes[attempt.node]
        mapped = MapRun(node.id, item_task, items, self.compute, self.bus)
        if node.task.options.cache:
            mapped.restore_cached(inputs, hashes, force=self.force)
        mapped.report_progress()
        todo = mapped.todo()
        if not todo:
            self._succeeded(attempt, mapped.outputs(list(node.task.interface.outputs)))
            return
        self.maps[node.id] = mapped
        limit = in_flight_limit(node.task.concurrency, self.executor.workers)
        mapped.plan(todo, limit, context)
        self._feed_map(attempt, mapped)

    def _feed_map(self, attempt: Attempt, mapped: MapRun) -> None:
        """Submit a map's next batches, up to its limit; the rest wait for a batch to finish.

        A batch that finished at once (the sequential executor) is collected by the
        loop like any other, so a long map does not recurse through its batches.
        """
        task = self.graph.nodes[attempt.node].task
        self.recorder.before_user_code()
        while (batch := mapped.next_batch()) is not None:
            future = self.executor.submit(
                execute_batch,
                mapped.item_task,
                [mapped.items[i] for i in batch],
                batch,
                mapped.context,
                task.min_success_ratio < 1.0,
                self.in_workers,
                timeout=task.options.timeout,
                label=attempt.node,
            )
            mapped.submitted(future, batch)
            self.running[future] = attempt

    def _settle_batch(self, attempt: Attempt, future: Future[Any]) -> None:
        mapped = self.maps.get(attempt.node)
        if mapped is None or not mapped.owns(future):
            return
        try:
            mapped.settle(future)
        except Exception as error:
            self._attempt_failed(attempt, error)
            return
        self._feed_map(attempt, mapped)
        if mapped.finished:
            del self.maps[attempt.node]
            task = self.graph.nodes[attempt.node].task
            try:
                check_success_ratio(
                    attempt.node, len(mapped.results), len(mapped.failed), task.min_success_ratio
                )
            except TaskFailedError as error:
                self._attempt_failed(attempt, error)
                return
            self._succeeded(attempt, mapped.outputs(list(task.interface.outputs)))

    def _abort_map(self, node_id: str) -> None:
        mapped = self.maps.pop(node_id, None)
        if mapped is not None:
            for future in mapped.cancel():
                self.running.pop(future, None)

    # --- what the recorder is told ----------------------------------------------------

    def _report_start(self) -> None:
        packages: dict[str, str] = {}
        for node_id in self.order:
            packages.update(self.graph.nodes[node_id].task.modules)
        self.recorder.started(
            workflow=self.target.name,
            version=self.target.version,
            params=dict(self.values.params),
            environment=self._environment(packages),
            resumed_from=self.resume.previous if self.resume is not None else None,
            new_id=self.new_id,
        )

    def _environment(self, packages: Mapping[str, str]) -> dict[str, Any]:
        """The run environment, with what tasks declared of theirs (images, resources)."""
        environment = run_environment(packages)
        declared = {}
        for node_id in self.order:
            requirements = requirements_of(self.graph.nodes[node_id].task)
            if requirements is not None and requirements.record():
                declared[str(node_id)] = requirements.record()
        if declared:
            environment["tasks"] = declared
        return environment

    def _report_attempt(
        self,
        attempt: Attempt,
        status: str,
        outputs: Mapping[str, OutputMeta],
        duration: float,
        error: str | None = None,
    ) -> None:
        node = self.graph.nodes[attempt.node]
        self.recorder.attempt(
            node=node.id,
            task=node.task.name,
            attempt=attempt.attempt,
            status=status,  # type: ignore[arg-type]
            cache_key=attempt.key.key if attempt.key is not None else None,
            code_hash=node.task.code_hash,
            inputs=attempt.inputs,
            outputs=outputs,
            started=attempt.started,
            duration=duration,
            error=error,
        )

    def _output_refs(self) -> dict[str, Mapping[str, object]]:
        return {
            name: self.values.refs.get((b.node, b.output), {})
            for name, b in self.graph.outputs.items()
            if isinstance(b, NodeOutput)
        }

    def _loaded(self, slot: tuple[str, str]) -> Any:
        """A workflow output as the caller wants it: loaded, when it stayed in the store."""
        value = self.values.outputs[slot]
        if not holds_refs(value):
            return value
        try:
            return load_output(value, self.store.artifacts, *slot)
        except KernelflowError as error:  # the run's other outputs are still returned
            self.failures.append(error)
            return None

    def _outputs(self) -> dict[str, Any]:
        outputs = {}
        for name, binding in self.graph.outputs.items():
            if isinstance(binding, NodeOutput):
                slot = (binding.node, binding.output)
                if slot in self.values.outputs:
                    outputs[name] = self._loaded(slot)
            else:
                outputs[name] = self.values.resolve(binding)[0]
        return outputs
