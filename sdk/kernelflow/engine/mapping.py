"""Map nodes: one task over many items, in batches, cached per item, in input order.

A map node (``map_task(t)`` or ``%%task NAME --map VAR``) is split by the engine
into batches of items, so thousands of items cost a few round trips to the
workers, not thousands. With ``cache=True`` each item has its own cache entry:
a map over 10,000 items where one item changed computes one item.

A batch runs its items one after the other, so the items in flight are the
batches in flight: holding back batches is how Flyte's ``concurrency=N`` is kept
on every backend, whatever the executor does with what it is given.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import replace
from typing import Any

from kernelflow._core.adapt import adapt
from kernelflow._core.cache_key import CacheKey
from kernelflow._core.errors import KernelflowError, TaskFailedError
from kernelflow._core.hashing import hash_or_none
from kernelflow._core.task import Task
from kernelflow.engine.compute import NodeCompute
from kernelflow.engine.context import ExecutionContext
from kernelflow.engine.events import EventBus
from kernelflow.engine.execute import check_worker_key, execute_task, store_outputs
from kernelflow.engine.stored import Stored, as_map_output

_BATCHES_PER_WORKER = 4
_MAX_BATCH = 2_000


class FailedItem:
    """What a batch returns for an item that failed in a map allowed to lose some."""

    def __init__(self, error: str) -> None:
        self.error = error


def execute_batch(
    task: Task,
    items: Sequence[Mapping[str, Any]],
    indexes: Sequence[int],
    context: ExecutionContext,
    tolerate: bool = False,
    store: bool = False,
) -> list[dict[str, Any] | FailedItem]:
    """Run ``task`` once per item; a failure names the item's index in the map.

    Each item runs with its own context (``item=index``), so its checkpoint is
    its own: items never restore each other's state. With ``tolerate`` (a map
    with ``min_success_ratio`` below 1), a failed item is a :class:`FailedItem`.
    With ``store`` (a worker process), each item's outputs are written to the
    store as they are made and only references are kept: a batch of items whose
    outputs do not fit in memory together runs, and nothing big goes back.
    """
    if store:
        check_worker_key(context)
    results: list[dict[str, Any] | FailedItem] = []
    for index, item in zip(indexes, items):
        try:
            item_context = replace(context, item=index)
            outputs = execute_task(task, item, item_context)
            results.append(store_outputs(task, outputs, item_context) if store else outputs)
        except KernelflowError as error:
            if tolerate:
                results.append(FailedItem(error.message))
                continue
            raise TaskFailedError(
                f"map task {context.node!r} failed at item [{index}]: {error.message}",
                task=context.node,
                index=index,
                error_type=getattr(error, "error_type", type(error).__name__),
                traceback=getattr(error, "traceback", ""),
                recoverable=getattr(error, "recoverable", False),
                fix=f"fix the task for the input at index {index}, then rerun "
                "(items that finished are cached when the task has cache=True)",
            ) from error
    return results


def _item_hash(
    name: str,
    value: Any,
    inputs: Mapping[str, Any],
    hashes: Mapping[str, str | None],
    declared: Mapping[str, Any],
) -> str | None:
    """The content hash of one item's input: the node's for an input every item shares,
    the recorded one for an item in the store, else hashed (a path where a file is
    declared, by the file's content: adapt)."""
    if value is inputs.get(name):
        return hashes.get(name)
    if isinstance(value, Stored):
        return value.hash
    return hash_or_none(adapt(value, declared.get(name)))


def batches(indexes: Sequence[int], workers: int) -> list[list[int]]:
    """Contiguous batches: a few per worker, so a slow batch does not idle the others."""
    if not indexes:
        return []
    size = max(1, min(_MAX_BATCH, math.ceil(len(indexes) / (workers * _BATCHES_PER_WORKER))))
    return [list(indexes[start : start + size]) for start in range(0, len(indexes), size)]


def in_flight_limit(concurrency: int | None, workers: int) -> int:
    """How many batches (so items) of a map may run at once.

    The run's workers bound it; Flyte's ``concurrency=N`` bounds it further. As in
    Flyte, no concurrency (None or 0) means no bound of the map's own.
    """
    workers = max(1, workers)
    return min(concurrency, workers) if concurrency else workers


class MapRun:
    """A map node in flight: its items, which are done, and which batches are running.

    The scheduling loop submits the batches and hands each finished one to
    :meth:`settle`; the cache steps are the same :class:`NodeCompute` steps a
    plain node takes, per item.
    """

    def __init__(
        self,
        node: str,
        item_task: Task,
        items: list[dict[str, Any]],
        compute: NodeCompute,
        bus: EventBus,
    ) -> None:
        self.node = node
        self.item_task = item_task
        self.items = items
        self.compute = compute
        self.bus = bus
        self.results: list[dict[str, Any] | None] = [None] * len(items)
        self.keys: list[CacheKey | None] = [None] * len(items)
        self.failed: set[int] = set()  # items that failed in a map allowed to lose some
        self._batches: dict[Future[Any], tuple[list[int], float]] = {}
        self.pending: deque[list[int]] = deque()  # batches not submitted yet
        self.limit = 1
        self.context: ExecutionContext | None = None

    def plan(self, todo: Sequence[int], limit: int, context: ExecutionContext) -> None:
        """Split the items to compute into batches, at most ``limit`` of them in flight."""
        self.limit = max(1, limit)
        self.context = context
        self.pending = deque(batches(todo, self.limit))

    def next_batch(self) -> list[int] | None:
        """The next batch to submit, or None while ``limit`` batches are in flight."""
        if self.pending and len(self._batches) < self.limit:
            return self.pending.popleft()
        return None

    @property
    def done(self) -> int:
        return sum(result is not None for result in self.results)

    @property
    def finished(self) -> bool:
        return not self._batches and not self.pending and self.done == len(self.results)

    def todo(self) -> list[int]:
        return [index for index, result in enumerate(self.results) if result is None]

    def restore_cached(
        self, inputs: Mapping[str, Any], hashes: Mapping[str, str | None], *, force: bool
    ) -> None:
        """Key every item; with ``force`` unset, take each hit's outputs instead of running it."""
        declared = self.item_task.interface.inputs
        for index, item in enumerate(self.items):
            item_hashes = {
                name: _item_hash(name, value, inputs, hashes, declared)
                for name, value in item.items()
            }
            key = self.keys[index] = self.compute.key(self.item_task, self.node, item_hashes)
            if key is None or force:
                continue
            found = self.compute.lookup(key.key, self.node, self.item_task)
            if found is not None:
                self.results[index] = found[0]

    def submitted(self, future: Future[Any], batch: list[int]) -> None:
        self._batches[future] = (batch, time.perf_counter())

    def owns(self, future: Future[Any]) -> bool:
        return future in self._batches

    def settle(self, future: Future[Any]) -> None:
        """Take a finished batch's results (its failure is raised), caching each item."""
        batch, submitted = self._batches.pop(future)
        results = future.result()
        per_item = (time.perf_counter() - submitted) / max(1, len(batch))
        for index, result in zip(batch, results):
            if isinstance(result, FailedItem):
                self.failed.add(index)
                self.results[index] = dict.fromkeys(self.item_task.interface.outputs)
                continue
            self.results[index] = result
            key = self.keys[index]
            if key is not None:
                persisted = self.compute.persist(self.item_task, self.node, result)
                self.compute.remember(
                    key, self.item_task, persisted, produced=len(result), duration=per_item
                )
        self.report_progress()

    def cancel(self) -> list[Future[Any]]:
        """Cancel the batches still running; return them, for the loop to forget."""
        running = list(self._batches)
        for future in running:
            future.cancel()
        self._batches.clear()
        self.pending.clear()
        return running

    def report_progress(self) -> None:
        self.bus.emit(
            "task_progress",
            node=self.node,
            task=self.item_task.name,
            done=self.done,
            total=len(self.results),
        )

    def outputs(self, names: Sequence[str]) -> dict[str, list[Any]]:
        """The map's outputs: one list per output name, in input order."""
        return {
            name: as_map_output([result[name] for result in self.results])  # type: ignore[index]
            for name in names
        }
