"""``map_task``: run one task over every element of list inputs, keeping their order."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kernelflow._core.errors import KernelflowError, ParameterError, TaskFailedError
from kernelflow._core.interface import Interface
from kernelflow._core.task import Task
from kernelflow.workflows.task import CallableTask


class MapTask(CallableTask):
    """A task whose inputs and outputs are lists of the inner task's.

    Item ``i`` of every output comes from item ``i`` of every input. The engine
    treats the map as one node; a failure names the index of the item that failed.
    """

    def __init__(self, inner: Task) -> None:
        self.inner = inner
        self.name = f"map_{inner.name}"
        self.options = inner.options
        spec = inner.interface
        self.interface = Interface(
            inputs={name: list[tp] for name, tp in spec.inputs.items()},  # type: ignore[valid-type]
            outputs={name: list[tp] for name, tp in spec.outputs.items()},  # type: ignore[valid-type]
            defaults={},
            output_kind=spec.output_kind,
            namedtuple_type=spec.namedtuple_type,
        )

    @property
    def code_hash(self) -> str:
        return f"map:{self.inner.code_hash}"

    @property
    def modules(self) -> Mapping[str, str]:
        return self.inner.modules

    @property
    def portable(self) -> bool:
        return self.inner.portable

    def map_items(self, inputs: Mapping[str, Any]) -> tuple[Task, list[dict[str, Any]]]:
        """The task to run per item and each item's inputs; the engine batches them."""
        lengths = {name: len(values) for name, values in inputs.items()}
        if len(set(lengths.values())) > 1:
            raise ParameterError(
                f"map task {self.name!r} needs lists of one length, got {lengths}",
                task=self.name,
                fix="pass lists with one element per item to map over",
            )
        count = next(iter(lengths.values()), 0)
        items = [{name: values[index] for name, values in inputs.items()} for index in range(count)]
        return self.inner, items

    def run(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        _, items = self.map_items(inputs)
        results: dict[str, list[Any]] = {name: [] for name in self.interface.outputs}
        for index, item in enumerate(items):
            for name, value in self._run_item(index, item).items():
                results[name].append(value)
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


def map_task(task: Task) -> MapTask:
    """Map ``task`` over lists: ``map_task(square)(x=[1, 2, 3])`` gives ``[1, 4, 9]``."""
    if isinstance(task, MapTask):
        raise TypeError("map_task() of a map task is not supported; map the inner task")
    if not isinstance(task, Task):
        raise TypeError(f"map_task() takes a @task, got {type(task).__name__}")
    return MapTask(task)
