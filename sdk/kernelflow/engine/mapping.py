"""Map nodes: one task over many items, in batches, cached per item, in input order.

A map node (``map_task(t)`` or ``%%task NAME --map VAR``) is split by the engine
into batches of items, so thousands of items cost a few round trips to the
workers, not thousands. With ``cache=True`` each item has its own cache entry:
a map over 10,000 items where one item changed computes one item.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from typing import Any

from kernelflow._core.errors import KernelflowError, TaskFailedError
from kernelflow._core.task import Task
from kernelflow.engine.context import ExecutionContext
from kernelflow.engine.execute import execute_task

_BATCHES_PER_WORKER = 4
_MAX_BATCH = 2_000


def execute_batch(
    task: Task,
    items: Sequence[Mapping[str, Any]],
    indexes: Sequence[int],
    context: ExecutionContext,
) -> list[dict[str, Any]]:
    """Run ``task`` once per item; a failure names the item's index in the map.

    Each item runs with its own context (``item=index``), so its checkpoint is
    its own: items never restore each other's state.
    """
    results = []
    for index, item in zip(indexes, items):
        try:
            results.append(execute_task(task, item, replace(context, item=index)))
        except KernelflowError as error:
            raise TaskFailedError(
                f"map task {context.node!r} failed at item [{index}]: {error.message}",
                task=context.node,
                index=index,
                error_type=getattr(error, "error_type", type(error).__name__),
                traceback=getattr(error, "traceback", ""),
                fix=f"fix the task for the input at index {index}, then rerun "
                "(items that finished are cached when the task has cache=True)",
            ) from error
    return results


def batches(indexes: Sequence[int], workers: int) -> list[list[int]]:
    """Contiguous batches: a few per worker, so a slow batch does not idle the others."""
    if not indexes:
        return []
    size = max(1, min(_MAX_BATCH, math.ceil(len(indexes) / (workers * _BATCHES_PER_WORKER))))
    return [list(indexes[start : start + size]) for start in range(0, len(indexes), size)]


@dataclass
class MapState:
    """A map node in flight: which items are done, and which batches are running."""

    item_task: Task
    items: list[dict[str, Any]]
    results: list[dict[str, Any] | None]
    keys: list[str | None]
    manifests: list[Mapping[str, object] | None]
    batches: dict[Future[Any], list[int]] = field(default_factory=dict)

    @property
    def done(self) -> int:
        return sum(result is not None for result in self.results)

    def outputs(self, names: Sequence[str]) -> dict[str, list[Any]]:
        """The map's outputs: one list per output name, in input order."""
        return {
            name: [result[name] for result in self.results]  # type: ignore[index]
            for name in names
        }


class MapNodes:
    """The map-node part of the engine's run loop (mixed into the run; see runner.py).

    It relies on the run's ``graph``, ``store``, ``engine``, ``running``, ``maps``,
    ``force``, ``bus`` and its ``_succeeded``/``_attempt_failed``/``_load_saved`` steps.
    """

    maps: dict[str, MapState]

    def _launch_map(
        self,
        attempt: Any,
        context: ExecutionContext,
        item_task: Task,
        items: list[dict[str, Any]],
        inputs: Mapping[str, Any],
        hashes: Mapping[str, str | None],
    ) -> None:
        node = self.graph.nodes[attempt.node]  # type: ignore[attr-defined]
        count = len(items)
        state = MapState(item_task, items, [None] * count, [None] * count, [None] * count)
        self.maps[node.id] = state
        if node.task.options.cache:
            self._restore_items(node, state, inputs, hashes)
        self._map_progress(node.id, state)
        todo = [index for index, result in enumerate(state.results) if result is None]
        if not todo:
            self._finish_map(attempt, state)
            return
        executor = self.engine.executor  # type: ignore[attr-defined]
        timeout = node.task.options.timeout
        self.store.runs.sync()  # type: ignore[attr-defined]
        for batch in batches(todo, getattr(executor, "workers", 1)):
            if node.id not in self.maps:
                return  # an earlier batch failed: the node is being retried or has failed
            future = executor.submit(
                execute_batch,
                item_task,
                [items[i] for i in batch],
                batch,
                context,
                timeout=timeout,
                label=node.id,
            )
            state.batches[future] = batch
            if future.done():
                self._settle_batch(attempt, future)
            else:
                self.running[future] = attempt  # type: ignore[attr-defined]

    def _restore_items(
        self,
        node: Any,
        state: MapState,
        inputs: Mapping[str, Any],
        hashes: Mapping[str, str | None],
    ) -> None:
        from kernelflow._core.cache_key import cache_key
        from kernelflow._core.hashing import hash_or_none

        task = state.item_task
        for index, item in enumerate(state.items):
            item_hashes = {
                name: hashes.get(name) if value is inputs.get(name) else hash_or_none(value)
                for name, value in item.items()
            }
            if any(digest is None for digest in item_hashes.values()):
                continue
            key = cache_key(
                task=task.name,
                code_hash=task.code_hash,
                cache_version=task.options.cache_version,
                input_hashes=item_hashes,
            )  # type: ignore[arg-type]
            state.keys[index], state.manifests[index] = key.key, key.manifest
            if self.force:  # type: ignore[attr-defined]
                continue
            hit = self.store.runs.cache_lookup(key.key)  # type: ignore[attr-defined]
            if hit is not None:
                loaded = self._load_saved(node, hit.outputs, what="cached")  # type: ignore[attr-defined]
                if loaded is not None:
                    state.results[index] = loaded

    def _settle_batch(self, attempt: Any, future: Future[Any]) -> None:
        state = self.maps.get(attempt.node)
        if state is None or future not in state.batches:
            return
        batch = state.batches.pop(future)
        try:
            results = future.result()
        except Exception as error:
            self._abort_map(attempt.node)
            self._attempt_failed(attempt, error)  # type: ignore[attr-defined]
            return
        for index, result in zip(batch, results):
            state.results[index] = result
            if state.keys[index] is not None:
                self._cache_item(state, index, result)
        self._map_progress(attempt.node, state)
        if not state.batches and state.done == len(state.results):
            self._finish_map(attempt, state)

    def _cache_item(self, state: MapState, index: int, result: Mapping[str, Any]) -> None:
        from kernelflow._core.hashing import hash_or_none

        outputs = {}
        for name, value in result.items():
            try:
                ref = self.store.artifacts.put(value)  # type: ignore[attr-defined]
            except Exception:
                return  # not storable: the item is simply not cached
            outputs[name] = {"hash": hash_or_none(value), "artifact": ref.to_dict()}
        self.store.runs.cache_put(
            state.keys[index],
            task=state.item_task.name,  # type: ignore[attr-defined]
            outputs=outputs,
            manifest=state.manifests[index] or {},
            duration=0.0,
        )

    def _finish_map(self, attempt: Any, state: MapState) -> None:
        del self.maps[attempt.node]
        node = self.graph.nodes[attempt.node]  # type: ignore[attr-defined]
        self._succeeded(attempt, state.outputs(list(node.task.interface.outputs)))  # type: ignore[attr-defined]

    def _abort_map(self, node_id: str) -> None:
        state = self.maps.pop(node_id, None)
        if state is None:
            return
        for future in state.batches:
            future.cancel()
            self.running.pop(future, None)  # type: ignore[attr-defined]

    def _map_progress(self, node_id: str, state: MapState) -> None:
        self.bus.emit(
            "task_progress",
            node=node_id,
            task=state.item_task.name,  # type: ignore[attr-defined]
            done=state.done,
            total=len(state.results),
        )
