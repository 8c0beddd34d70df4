"""A notebook cell as a task: its body runs with its inputs bound, its outputs are read back."""

from __future__ import annotations

import copy
import functools
import os
import typing
from collections.abc import Mapping
from typing import Any

from kernelflow._core.errors import ParameterError
from kernelflow._core.hashing import combine, hash_or_none
from kernelflow._core.interface import Interface
from kernelflow._core.resources import Requirements
from kernelflow._core.task import Task, TaskOptions
from kernelflow.notebook.analysis import CellAnalysis
from kernelflow.notebook.environment import Environment, is_code


class CellTask(Task):
    """The body of a ``%%task`` cell (or a ``task:NAME``-tagged cell).

    ``setup_refs`` are the names the body reads from setup code: their objects
    (function sources, constants, module versions) are part of the code hash, so
    editing a helper reruns the tasks that use it. ``map_over`` names the list
    input the body runs once per element of (``--map VAR``). ``copies`` are the
    inputs the body changes in place: it gets its own deep copy of each, so the
    value another task produced (and the cache holds) is never changed.
    """

    def __init__(
        self,
        *,
        name: str,
        cell: str,
        analysis: CellAnalysis,
        interface: Interface,
        options: TaskOptions,
        setup_refs: tuple[str, ...],
        environment: Environment,
        map_over: str | None = None,
        copies: tuple[str, ...] = (),
        requirements: Requirements | None = None,
    ) -> None:
        self.name = name
        self.cell = cell
        self.analysis = analysis
        self.interface = interface
        self.options = options
        self.setup_refs = setup_refs
        self.environment = environment
        self.map_over = map_over
        self.copies = copies
        self.requirements = requirements  # a deck (``--deck``) is its one requirement
        self.filename = f"<kernelflow task {name}>"

    @property
    def portable(self) -> bool:
        return self.environment.portable

    @property
    def source(self) -> str:
        return self.analysis.source

    def run(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        pieces = self.map_items(inputs)
        if pieces is None:
            return self._run_once(inputs)
        # The engine runs map cells in batches (engine/mapping.py); this is the
        # whole map in one call, for callers outside the engine.
        item_task, items = pieces
        results: dict[str, list[Any]] = {name: [] for name in self.interface.outputs}
        for item in items:
            for name, value in item_task.run(item).items():
                results[name].append(value)
        return results

    def map_items(self, inputs: Mapping[str, Any]) -> tuple[Task, list[dict[str, Any]]] | None:
        """For ``--map VAR``: the cell as a per-item task, and each item's inputs."""
        if self.map_over is None:
            return None
        items = inputs[self.map_over]
        if not isinstance(items, (list, tuple)):
            raise ParameterError(
                f"task {self.name!r} maps over {self.map_over!r}, which must be a list; "
                f"got {type(items).__name__}",
                task=self.name,
                variable=self.map_over,
                fix=f"make {self.map_over!r} a list, or drop --map",
            )
        return self._item_task(), [{**inputs, self.map_over: item} for item in items]

    def _item_task(self) -> CellTask:
        outputs = {
            name: (typing.get_args(tp) or (Any,))[0] for name, tp in self.interface.outputs.items()
        }
        inputs = dict(self.interface.inputs)
        inputs[self.map_over] = Any  # type: ignore[index]
        return CellTask(
            name=self.name,
            cell=self.cell,
            analysis=self.analysis,
            interface=Interface(
                inputs=inputs, outputs=outputs, defaults={}, output_kind=self.interface.output_kind
            ),
            options=self.options,
            setup_refs=self.setup_refs,
            environment=self.environment,
            copies=self.copies,
            requirements=self.requirements,
        )

    def _run_once(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        if self.copies:
            inputs = {**inputs, **{n: copy.deepcopy(inputs[n]) for n in self.copies if n in inputs}}
        scope = self.environment.execute(self.source, self.filename, inputs)
        outputs = {}
        for name in self.interface.outputs:
            if is_file_name(name):  # a file the cell wrote: what later readers depend on
                outputs[name] = file_state(path_of(name))
            elif name in scope:
                outputs[name] = scope[name]
        return outputs

    @functools.cached_property
    def _fingerprint(self) -> Any:
        """Code the body uses from setup (functions by source, modules by version)."""
        from kernelflow._core.code_hash import references_fingerprint

        namespace = self.environment.namespace()
        code = [name for name in self.setup_refs if is_code(namespace.get(name))]
        return references_fingerprint(code, namespace)

    @functools.cached_property
    def _data_hashes(self) -> dict[str, str | None]:
        namespace = self.environment.namespace()
        return {
            name: hash_or_none(namespace[name])
            for name in self.setup_refs
            if name in namespace and not is_code(namespace[name])
        }

    def still_valid(self, outputs: Mapping[str, Any]) -> bool:
        """A cached file output holds only while the file on disk still has that content."""
        return all(
            file_state(path_of(name)) == value
            for name, value in outputs.items()
            if is_file_name(name)
        )

    def key_inputs(self) -> Mapping[str, str | None]:
        """Setup data the body reads (a constant list, a config dict), by content hash."""
        return self._data_hashes

    @property
    def code_hash(self) -> str:
        """The body and what it uses from setup code; not which outputs are kept.

        A cell run on its own keeps every value it binds, the same cell in a
        workflow only those other tasks read: both have one cache key, and a
        cache hit counts only when it holds every output the task needs.
        """
        return combine(self.analysis.code_hash, self._fingerprint.hash, self.map_over or "")

    @property
    def modules(self) -> Mapping[str, str]:
        return self._fingerprint.modules

    def forget_code_hash(self) -> None:
        """Drop the cached fingerprint: setup code changed (a kernel re-ran a helper cell)."""
        self.__dict__.pop("_fingerprint", None)
        self.__dict__.pop("_data_hashes", None)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_fingerprint", None)
        state.pop("_data_hashes", None)
        return state


# --- files as edges -----------------------------------------------------------------

_FILE_PREFIX = "file:"


def file_name(path: str) -> str:
    """The pseudo-name of a file between tasks: ``file:data/clean.csv``."""
    return _FILE_PREFIX + os.path.normpath(path)


def is_file_name(name: str) -> bool:
    return name.startswith(_FILE_PREFIX)


def path_of(name: str) -> str:
    return name[len(_FILE_PREFIX) :]


def file_state(path: str) -> str:
    """The content hash of a file (``missing`` when there is none): what a reader depends on."""
    import xxhash

    hasher = xxhash.xxh3_128()
    try:
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                hasher.update(chunk)
    except FileNotFoundError:
        return "missing"
    except IsADirectoryError:
        return "directory"
    return hasher.hexdigest()
