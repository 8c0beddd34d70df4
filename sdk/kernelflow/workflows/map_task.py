"""``map_task``: run one task over every element of list inputs, keeping their order."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, Optional

from kernelflow._core.errors import KernelflowError, ParameterError, TaskFailedError
from kernelflow._core.interface import Interface
from kernelflow._core.task import Task, check_success_ratio
from kernelflow.workflows.task import CallableTask


class MapTask(CallableTask):
    """A task whose inputs and outputs are lists of the inner task's.

    Item ``i`` of every output comes from item ``i`` of every input. The engine
    treats the map as one node; a failure names the index of the item that failed.
    """

    def __init__(
        self,
        inner: Task,
        *,
        fixed: frozenset[str] = frozenset(),
        concurrency: int | None = None,
        min_success_ratio: float = 1.0,
    ) -> None:
        self.inner = inner
        self.name = f"map_{inner.name}"
        self.options = inner.options
        # Inputs bound by functools.partial: one value (or promise) for every item.
        self.fixed = fixed
        self.concurrency = concurrency  # at most this many items in flight (the engine)
        self.min_success_ratio = min_success_ratio
        spec = inner.interface
        item_outputs = spec.outputs
        if min_success_ratio < 1.0:  # a failed item's outputs are None
            item_outputs = {name: Optional[tp] for name, tp in spec.outputs.items()}  # noqa: UP045
        self.interface = Interface(
            inputs={
                name: tp if name in self.fixed else list[tp]  # type: ignore[valid-type]
                for name, tp in spec.inputs.items()
            },
            outputs={name: list[tp] for name, tp in item_outputs.items()},  # type: ignore[valid-type]
            defaults={},
            output_kind=spec.output_kind,
            namedtuple_type=spec.namedtuple_type,
        )

    @property
    def code_hash(self) -> str:
        return f"map:{self.inner.code_hash}:{sorted(self.fixed)}:{self.min_success_ratio}"

    @property
    def modules(self) -> Mapping[str, str]:
        return self.inner.modules

    @property
    def portable(self) -> bool:
        return self.inner.portable

    def map_items(self, inputs: Mapping[str, Any]) -> tuple[Task, list[dict[str, Any]]]:
        """The task to run per item and each item's inputs; the engine batches them."""
        fixed = {name: value for name, value in inputs.items() if name in self.fixed}
        inputs = {name: value for name, value in inputs.items() if name not in self.fixed}
        lengths = {name: len(values) for name, values in inputs.items()}
        if len(set(lengths.values())) > 1:
            raise ParameterError(
                f"map task {self.name!r} needs lists of one length, got {lengths}",
                task=self.name,
                fix="pass lists with one element per item to map over",
            )
        count = next(iter(lengths.values()), 0)
        items = [
            {**fixed, **{name: values[index] for name, values in inputs.items()}}
            for index in range(count)
        ]
        return self.inner, items

    def run(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        _, items = self.map_items(inputs)
        results: dict[str, list[Any]] = {name: [] for name in self.interface.outputs}
        failed = 0
        for index, item in enumerate(items):
            try:
                outputs = self._run_item(index, item)
            except TaskFailedError:
                if self.min_success_ratio >= 1.0:
                    raise
                failed += 1
                outputs = dict.fromkeys(self.interface.outputs)
            for name, value in outputs.items():
                results[name].append(value)
        check_success_ratio(self.name, len(items), failed, self.min_success_ratio)
        return results

    def _run_item(self, index: int, item: Mapping[str, Any]) -> dict[str, Any]:
        try:
            return self.inner.run(item)
        except KernelflowError:
            raise
        except Exception as error:
            shown = ", ".join(f"{k}={v!r}"[:80] for k, v in item.items())
            raise TaskFailedError(
                f"map task {self.name!r} failed at item [{index}] ({shown}): "
                f"{type(error).__name__}: {error}",
                task=self.name,
                index=index,
                fix=f"fix the task {self.inner.name!r} for this input, then rerun",
            ) from error


def map_task(
    task: Task | functools.partial[Any],
    concurrency: int | None = None,
    min_success_ratio: float = 1.0,
    **_recorded: Any,
) -> MapTask | PartialMap:
    """Map ``task`` over lists: ``map_task(square)(x=[1, 2, 3])`` gives ``[1, 4, 9]``.

    As in Flyte: ``functools.partial(task, k=v)`` binds ``k`` to one value (or
    promise) for every item; ``min_success_ratio`` below 1 lets that fraction of
    items fail, their outputs None; ``concurrency=N`` runs at most N items at once
    (the run's workers bound it too). Other Flyte options (``metadata``...) are
    accepted and ignored.
    """
    fixed: dict[str, Any] = {}
    if isinstance(task, functools.partial):
        if task.args:
            raise TypeError("map_task() of a partial takes keyword arguments only")
        fixed, task = dict(task.keywords), task.func
    if isinstance(task, MapTask):
        raise TypeError("map_task() of a map task is not supported; map the inner task")
    if not isinstance(task, Task):
        raise TypeError(f"map_task() takes a @task, got {type(task).__name__}")
    if not 0.0 <= min_success_ratio <= 1.0:
        raise ParameterError(
            f"min_success_ratio must be between 0 and 1, got {min_success_ratio}",
            fix="pass the fraction of items that must succeed, e.g. 0.75",
        )
    if concurrency is not None and (not isinstance(concurrency, int) or concurrency < 0):
        raise ParameterError(
            f"concurrency must be a whole number >= 0, got {concurrency!r}",
            fix="pass how many items may run at once, e.g. concurrency=4 (0 or None: no bound)",
        )
    mapped = MapTask(
        task,
        fixed=frozenset(fixed),
        concurrency=concurrency,
        min_success_ratio=min_success_ratio,
    )
    return PartialMap(mapped, fixed) if fixed else mapped


class PartialMap:
    """A map of a partial: a call passes the bound values along with the lists.

    The values (promises, often) stay here, out of the task the engine ships.
    """

    def __init__(self, mapped: MapTask, values: Mapping[str, Any]) -> None:
        self.task = mapped
        self.values = dict(values)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.task(*args, **{**self.values, **kwargs})
