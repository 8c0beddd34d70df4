"""Computing a node, written once: cache key, look-up, saved outputs, persistence.

A plain node and each item of a map node go through the same steps, so they
cannot drift apart: the key is made from the task's code and its inputs'
content hashes (:meth:`NodeCompute.key`), a hit is loaded and verified
(:meth:`NodeCompute.lookup`), a miss is executed by the executor (with its
outputs type-checked in the worker, :func:`~kernelflow.engine.execute.execute_task`),
and what it produced is hashed and persisted (:meth:`NodeCompute.persist`) and
indexed for reuse (:meth:`NodeCompute.remember`). Running things and recording
them are not here: the scheduling loop runs, the recorder records.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import Any

from kernelflow._core import custom_types
from kernelflow._core.adapt import keep
from kernelflow._core.cache_key import CacheKey, cache_key
from kernelflow._core.errors import (
    IntegrityError,
    KernelflowWarning,
    TaskFailedError,
    TypeTransformerError,
)
from kernelflow._core.hash_method import output_hash
from kernelflow._core.interface import type_name
from kernelflow._core.task import Task
from kernelflow.engine.stored import Stored
from kernelflow.store.artifacts import ArtifactRef
from kernelflow.store.blobs import integrity_error
from kernelflow.store.protocols import Artifacts, RunRecords
from kernelflow.store.recorder import RunRecorder

OutputMeta = dict[str, object]


def warn_about(message: str, label: str) -> None:
    """A warning attributed to the task, not to the engine's own line (which means nothing
    to the user); shown once per task and message."""
    warnings.warn_explicit(
        message, KernelflowWarning, filename=f"<task {label}>", lineno=1, module="kernelflow"
    )


"""What is kept of one output: ``hash``, ``artifact`` (a ref as a dict) and ``type``."""


def transformer_failed(task: Task, variable: str, error: TypeTransformerError) -> TaskFailedError:
    """The task's failure when the transformer of its output's type raised."""
    type_name = getattr(error, "type_name", "?")
    return TaskFailedError(
        f"task {task.name!r} produced {variable!r} of type {type_name}, but its transformer "
        f"{getattr(error, 'transformer', '?')!r} could not serialize it "
        f"({getattr(error, 'cause', error.message)})",
        fix=error.fix,
        task=task.name,
        variable=variable,
        type_name=type_name,
        transformer=getattr(error, "transformer", None),
        error_type="TypeTransformerError",
    )


def store_output(
    artifacts: Artifacts,
    files_root: Any,
    task: Task,
    name: str,
    value: Any,
    type_name_of: Callable[[Any], str] | None = None,
) -> OutputMeta:
    """Hash and store one output: what the run store keeps of it.

    Where the process is a worker, this is how its outputs reach the store
    without passing through the scheduling process (:mod:`kernelflow.engine.stored`).
    An output whose registered transformer raises fails the task
    (:class:`TaskFailedError`); any other failure to store is raised as is.
    """
    declared = task.interface.outputs.get(name)
    digest = output_hash(value, declared)  # a HashMethod's, if declared
    try:
        # A file (also in a list or a dataclass) is copied into the store.
        ref = artifacts.put(keep(value, declared, files_root))
    except TypeTransformerError as error:  # the user's transformer: fail the task
        raise transformer_failed(task, name, error) from error
    return {
        "hash": digest,
        "artifact": ref.to_dict(),
        "type": (type_name_of or _recorded_type)(declared),
    }


class NodeCompute:
    """The steps of computing a node around its execution, against one store."""

    def __init__(
        self,
        artifacts: Artifacts,
        runs: RunRecords,
        recorder: RunRecorder,
        *,
        lazy: bool = False,
    ) -> None:
        self.artifacts = artifacts
        # On a process backend, saved outputs in files stay there as references
        # (kernelflow.engine.stored): the worker that reads one loads it.
        self.lazy = lazy
        self.runs = runs
        self.recorder = recorder
        self._type_names: dict[Any, str] = {}
        self._files_root = getattr(artifacts, "root", None)  # where output files are copied

    def key(self, task: Task, label: str, hashes: Mapping[str, str | None]) -> CacheKey | None:
        """The cache key of ``task`` on inputs with these content hashes; None if uncached.

        An input without a content hash (it cannot be pickled) makes the node
        uncacheable in this run, with a warning that names it.
        """
        if not task.options.cache:
            return None
        hashes = {**task.key_inputs(), **hashes}
        for name in task.options.cache_ignore_input_vars:  # Flyte: not part of the key
            hashes.pop(name, None)
        missing = [name for name, digest in hashes.items() if digest is None]
        if missing:
            warn_about(
                f"task {label!r} is not cached in this run: its input {missing[0]!r} has no "
                "content hash (it cannot be pickled)",
                label,
            )
            return None
        return cache_key(
            task=task.name,
            code_hash=task.code_hash,
            cache_version=task.options.cache_version,
            input_hashes=hashes,  # type: ignore[arg-type]
        )

    def lookup(self, key: str, label: str, task: Task) -> tuple[dict[str, Any], Any] | None:
        """The values of a cache hit and the hit itself; None on a miss or a damaged entry.

        An entry that lacks one of the task's outputs is a miss (it was made
        by a run that kept fewer, e.g. a task in a workflow, where a cell run on
        its own keeps them all); the recomputed outputs replace it. A damaged
        entry is removed for the same reason.
        """
        scope = self.recorder.scope  # the run's domain, and the one it may also read
        hit = self.runs.cache_lookup(key, scope=scope)
        if hit is None or not set(task.interface.outputs) <= set(hit.outputs):
            return None
        values = self.load(hit.outputs, label, what="cached")
        if values is None:  # only in the run's own domain: a --cache-from one is read only
            self.runs.cache_delete(key=key, project=scope.project, domain=scope.domain)
            return None
        if not task.still_valid(values):  # e.g. the file it wrote is gone: run it again
            return None
        return values, hit

    def load(self, outputs: Mapping[str, Any], label: str, *, what: str) -> dict[str, Any] | None:
        """Saved outputs by name; None (with a warning) when one is damaged: recompute.

        With ``lazy`` set, an output in a file is a :class:`Stored` reference once
        the file is found with its size; its bytes are verified where it is read.
        """
        loaded: dict[str, Any] = {}
        for name, meta in outputs.items():
            try:
                ref = ArtifactRef.from_dict(meta["artifact"])
                if self.lazy and ref.inline is None:
                    if not self.artifacts.exists(ref):
                        raise integrity_error(ref.path, "missing")
                    loaded[name] = Stored(meta)  # its bytes are checked where it is read
                    continue
                loaded[name] = self.artifacts.get(ref)
                verify = getattr(type(loaded[name]), "__kernelflow_verify__", None)
                if verify is not None:  # a stored file: is the copy still intact?
                    verify(loaded[name])
            except IntegrityError as error:
                state = "is damaged"
                if isinstance(error.__cause__, TypeTransformerError):
                    state = "could not be read back"
                warn_about(
                    f"{what} output {name!r} of task {label!r} {state} "
                    f"({getattr(error, 'reason', error)}); recomputing it",
                    label,
                )
                return None
        return loaded

    def persist(self, task: Task, label: str, outputs: Mapping[str, Any]) -> dict[str, OutputMeta]:
        """Hash and store each output. One that cannot be stored is left out, with a warning.

        An output whose registered transformer (``TypeEngine.register``) raises
        fails the task instead: :class:`TaskFailedError` naming the task, the
        variable and the type, as Flyte fails a task whose output it cannot convert.

        An output declared ``Annotated[T, HashMethod(fn)]`` is hashed as ``fn(value)``.

        The caller keeps the values in memory either way; a left-out output is only
        not cached, and a resumed run computes it again.
        """
        persisted: dict[str, OutputMeta] = {}
        for name, value in outputs.items():
            if isinstance(value, Stored):  # written by the worker that computed it
                persisted[name] = dict(value.meta)
                continue
            try:
                persisted[name] = store_output(
                    self.artifacts, self._files_root, task, name, value, self._type_name
                )
            except TaskFailedError:  # the user's transformer: fail the task
                raise
            except Exception as error:
                warn_about(
                    f"output {name!r} of task {label!r} could not be saved "
                    f"({type(error).__name__}: {error}); it is not cached and a resumed run "
                    "will compute it again",
                    label,
                )
        return persisted

    def remember(
        self,
        key: CacheKey | None,
        task: Task,
        persisted: Mapping[str, OutputMeta],
        *,
        produced: int,
        duration: float,
    ) -> None:
        """Index persisted outputs under ``key``, when every one of the ``produced`` was saved."""
        if key is None or len(persisted) != produced:
            return
        self.recorder.cached(
            key.key, task=task.name, outputs=persisted, manifest=key.manifest, duration=duration
        )

    def _type_name(self, declared: Any) -> str:
        try:
            return self._type_names[declared]
        except KeyError:
            text = self._type_names[declared] = _recorded_type(declared)
            return text
        except TypeError:  # an unhashable annotation
            return type_name(declared)


def _recorded_type(declared: Any) -> str:
    """The type's name for lineage; a user type names the transformer that stores it too."""
    text = type_name(declared)
    codec = custom_types.codec_for(declared) if isinstance(declared, type) else None
    return text if codec is None else f"{text} (TypeTransformer {codec.name!r})"
