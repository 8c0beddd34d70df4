"""Values that stay in the store: what travels between processes instead of the value.

On a process backend (loky, Dask) the worker that computed a task writes its
outputs to the artifact store itself and sends back only a :class:`Stored`
reference (its content hash and artifact ref, a few hundred bytes), so a map
whose outputs together exceed the scheduling process's memory still runs: the
scheduling process holds references, and the worker that needs a value reads
it from the store (:func:`materialize_inputs`, at the start of every attempt).

A reference is loaded only where a value is really wanted: by the task that
reads it, by a map that must split it into items, and for what the run returns
(its workflow outputs, and :attr:`~kernelflow.engine.results.RunResult.values`
on access). A map's output on a process backend is a list of references, and
is stored as such: its hash is made of its items' hashes, so it differs from the
hash of the same list computed in one process (a cache miss downstream of a map
when the backend changes, never a wrong hit).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from kernelflow._core.errors import IntegrityError, KernelflowError, TaskFailedError
from kernelflow.store.artifacts import ArtifactRef
from kernelflow.store.protocols import Artifacts

__all__ = [
    "REF_TYPES",
    "LoadedOutputs",
    "Stored",
    "StoredList",
    "as_map_output",
    "holds_refs",
    "load",
    "load_output",
    "materialize_inputs",
]


class Stored:
    """A task output that is in the artifact store: ``meta`` is its run-store record
    (``hash``, ``artifact``, ``type``). Pickled, it is only that record."""

    __slots__ = ("meta",)

    def __init__(self, meta: Mapping[str, Any]) -> None:
        self.meta = meta

    @property
    def hash(self) -> str | None:
        return self.meta.get("hash")  # type: ignore[return-value]

    def __kernelflow_hash__(self) -> str:
        """Hashed as the content hash it records (kernelflow._core.hashing's hook)."""
        return str(self.hash)

    def __reduce__(self) -> tuple[Any, ...]:
        return (Stored, (dict(self.meta),))

    def __repr__(self) -> str:
        return f"<Stored {self.meta.get('type', '?')} {str(self.hash)[:12]}>"


class StoredList(list):  # type: ignore[type-arg]
    """A map's output whose items are (some or all) :class:`Stored` references.

    Its own type, so that telling it from a user's list costs one check, not a
    scan of the list.
    """


def as_map_output(values: list[Any]) -> list[Any]:
    """A map's items as its output: a :class:`StoredList` when any is a reference."""
    return StoredList(values) if any(isinstance(v, Stored) for v in values) else values


REF_TYPES = (Stored, StoredList)
"""What an ``isinstance`` check for a reference takes (on the engine's hot path)."""


def holds_refs(value: Any) -> bool:
    """Whether ``value`` is a reference, or a map's output holding some."""
    return isinstance(value, REF_TYPES)


def load(value: Any, artifacts: Artifacts) -> Any:
    """The value a reference (or a list of references) stands for; anything else as is.

    Raises
    ------
    IntegrityError
        The artifact is missing or damaged (the caller names the task and input).
    """
    if isinstance(value, Stored):
        return artifacts.get(ArtifactRef.from_dict(value.meta["artifact"]))
    if isinstance(value, StoredList):
        return [load(item, artifacts) for item in value]
    return value


def load_output(value: Any, artifacts: Artifacts, node: str, name: str) -> Any:
    """:func:`load` for a value the caller asked for (a workflow output, ``result.values``):
    a missing or damaged artifact is a :class:`KernelflowError` naming the task's output."""
    try:
        return load(value, artifacts)
    except IntegrityError as error:
        raise KernelflowError(
            f"output {name!r} of task {node!r} could not be read from the store "
            f"({getattr(error, 'reason', error)})",
            task=node,
            variable=name,
            fix="resume the run (kernelflow run ... --resume RUN_ID, or resume= in Python): "
            "the damaged value was removed, and the task that made it runs again",
        ) from error


def materialize_inputs(
    inputs: Mapping[str, Any], artifacts_of: Callable[[], Artifacts], task: str
) -> Mapping[str, Any]:
    """``inputs`` with every reference loaded; the same mapping when there is none.

    ``artifacts_of`` is called (once, only if a reference is found) for the store
    to read from: a worker opens it only when it needs it.
    """
    for value in inputs.values():  # the usual case: no reference, nothing to do
        if isinstance(value, REF_TYPES):
            break
    else:
        return inputs
    names = [name for name, value in inputs.items() if isinstance(value, REF_TYPES)]
    artifacts = artifacts_of()
    loaded = dict(inputs)
    for name in names:
        try:
            loaded[name] = load(inputs[name], artifacts)
        except IntegrityError as error:
            raise TaskFailedError(
                f"task {task!r} could not read its input {name!r} from the store "
                f"({getattr(error, 'reason', error)})",
                task=task,
                variable=name,
                error_type="IntegrityError",
                fix="resume the run (kernelflow run ... --resume RUN_ID, or resume= in "
                "Python): a damaged value was removed where it was read, and the task that "
                "made it runs again; if it keeps happening, check that every worker reaches "
                "the same store ($KERNELFLOW_STORE) with the same key",
            ) from error
    return loaded


class LoadedOutputs(Mapping[str, Any]):
    """One node's outputs by name, each loaded from the store on first access.

    What :attr:`RunResult.values` holds for a node whose outputs stayed in the
    store: a run over data bigger than memory returns without loading it.
    """

    def __init__(self, node: str, outputs: Mapping[str, Any], artifacts: Artifacts) -> None:
        self._node = node
        self._outputs = dict(outputs)
        self._artifacts = artifacts

    def __getitem__(self, name: str) -> Any:
        value = self._outputs[name]
        if holds_refs(value):
            value = self._outputs[name] = load_output(value, self._artifacts, self._node, name)
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self._outputs)

    def __len__(self) -> int:
        return len(self._outputs)

    def __repr__(self) -> str:
        return f"LoadedOutputs({list(self._outputs)})"
