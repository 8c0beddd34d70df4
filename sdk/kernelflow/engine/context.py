"""``current_context()``: what a running task can know about its run, and checkpoints.

The engine sets the context around each attempt of a task, in whatever process
runs it, so a task body (a function or a notebook cell) can read ``run_id``,
``task_name`` and ``attempt``, and save intermediate state with
``current_context().checkpoint.save(obj)``. The latest saved state is offered to
the next attempt of the same node in the same run (after a retry or a resume)::

    ctx = current_context()
    state = ctx.checkpoint.restore() or {"epoch": 0, "weights": init()}
    for epoch in range(state["epoch"], 100):
        state = {"epoch": epoch + 1, "weights": train_one_epoch(state["weights"])}
        ctx.checkpoint.save(state)

Flyte's names are there too: ``execution_id.name`` (the run id),
``working_directory`` (a scratch directory of this attempt, removed when the
attempt ends, as a Flyte task's goes with its container), ``logging`` (a logger
named after the task) and ``checkpoint.read()`` / ``checkpoint.write(bytes)``.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import tempfile
import threading
import urllib.parse
from dataclasses import dataclass
from typing import Any

from kernelflow._core.errors import KernelflowError, StoreError
from kernelflow.engine.decks import Deck, current_decks, default_deck
from kernelflow.engine.secrets import Secrets
from kernelflow.store.blobs import CHECKPOINTS


class Checkpoint:
    """The latest saved state of one node (or one item of a map node) in one run.

    The state is stored like any artifact; a small JSON pointer file names it.
    Each item of a map node has its own pointer (``node[3].json``): items of one
    node run concurrently and each resumes from its own state, never a sibling's.
    """

    def __init__(
        self,
        store_root: str | os.PathLike[str],
        run_id: str,
        node: str,
        store_url: str | None = None,
    ) -> None:
        self.store_root = str(store_root)
        self.store_url = store_url
        safe_node = urllib.parse.quote(node, safe="")
        # Beside the artifacts (the home's disk, or $KERNELFLOW_STORE): a retry on
        # another worker, or a resume on another machine, finds it there.
        self.relative = f"{CHECKPOINTS}/{run_id}/{safe_node}.json"

    def _artifacts(self) -> Any:
        from kernelflow.store.home import open_artifacts

        return open_artifacts(self.store_root, self.store_url)

    def save(self, obj: Any) -> None:
        """Persist ``obj`` (atomically); a later attempt's :meth:`restore` returns it."""
        artifacts = self._artifacts()
        ref = artifacts.put(obj)  # a StoreError names what failed
        pointer = json.dumps(ref.to_dict()).encode()
        try:
            artifacts.blobs.write(self.relative, [pointer])
        except StoreError as error:
            raise StoreError(
                f"cannot save the checkpoint {self.relative} in {artifacts.location}: "
                f"{error.message}",
                fix="free space in the store, or point $KERNELFLOW_HOME elsewhere; the last "
                "checkpoint saved is kept",
                path=self.relative,
            ) from error

    def write(self, data: bytes) -> None:
        """Flyte's spelling of :meth:`save`, for bytes."""
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError(f"checkpoint.write() takes bytes, got {type(data).__name__}")
        self.save(bytes(data))

    def read(self) -> bytes | None:
        """Flyte's spelling of :meth:`restore`: the bytes last written, or None."""
        data = self.restore()
        return data if isinstance(data, bytes) else None

    def restore(self) -> Any | None:
        """The last saved state, or None when nothing was saved (or it is damaged)."""
        from kernelflow.store.artifacts import ArtifactRef

        try:
            artifacts = self._artifacts()
            size = artifacts.blobs.size(self.relative)
            if size is None:
                return None  # nothing saved yet
            pointer = bytes(artifacts.blobs.read(self.relative, size, "json"))
            return artifacts.get(ArtifactRef.from_dict(json.loads(pointer)))
        except (OSError, ValueError, KeyError, TypeError, KernelflowError):
            return None  # damaged, or replaced while read: the attempt starts afresh


@dataclass(frozen=True)
class ExecutionId:
    """Flyte's ``execution_id``: ``name`` is the run id."""

    name: str
    project: str = "default"
    domain: str = "development"


@dataclass(frozen=True)
class ExecutionContext:
    """The run a task attempt belongs to. ``attempt`` counts from 1.

    ``checkpoint_run`` is the first run of a resume chain: a resumed run sees the
    checkpoints its predecessors saved. ``item`` is the index of the element a
    map node's item runs on (None for a plain node); it gives the item a
    checkpoint of its own.
    """

    run_id: str
    task_name: str
    node: str
    attempt: int
    store_root: str
    checkpoint_run: str = ""
    item: int | None = None
    # The plugins (kernelflow.plugins.NAME) imported where the run started: a worker
    # process imports them too, so their validation holds there (_core/validators).
    plugins: tuple[str, ...] = ()
    # False for the context outside any task (local_context): it has no checkpoint.
    in_task: bool = True
    # Where the run's artifacts are ($KERNELFLOW_STORE where the run started, or None
    # for the home's own): a worker writes outputs and reads inputs there.
    store_url: str | None = None
    # The fingerprint of the run's store key, when workers write and read its values:
    # a worker whose key differs could neither be read from nor read (check_worker_key).
    key_id: str | None = None

    def artifacts(self) -> Any:
        """The run's artifact store, opened in this process (once per process)."""
        from kernelflow.store.home import open_artifacts

        return open_artifacts(self.store_root, self.store_url)

    @property
    def default_deck(self) -> Deck:
        """The task's default deck page (written when ``@task(enable_deck=True)``)."""
        return default_deck()

    @property
    def decks(self) -> list[Deck]:
        return current_decks()

    @property
    def secrets(self) -> Secrets:
        """The task's secrets, read from the environment on request (never stored)."""
        return Secrets()

    @property
    def slot(self) -> str:
        """The node, or the node's item (``node[3]``): what has a checkpoint of its own."""
        return self.node if self.item is None else f"{self.node}[{self.item}]"

    @property
    def checkpoint(self) -> Checkpoint:
        if not self.in_task:
            raise KernelflowError(
                "current_context().checkpoint was used outside a running task",
                fix="save and restore checkpoints inside a @task function or a %%task cell",
            )
        return Checkpoint(
            self.store_root, self.checkpoint_run or self.run_id, self.slot, self.store_url
        )

    @property
    def execution_id(self) -> ExecutionId:
        return ExecutionId(self.run_id)

    @property
    def working_directory(self) -> str:
        """A scratch directory of this attempt (of this item), made on first use.

        A fresh temporary directory, removed when the attempt ends, whether it
        succeeded or failed (:meth:`release_working_directory`).
        """
        key = (self.run_id, self.slot, self.attempt)
        with _scratch_lock:
            path = _scratch.get(key)
            if path is None:
                prefix = f"kernelflow-{self.run_id}-{urllib.parse.quote(self.slot, safe='')}-"
                path = _scratch[key] = tempfile.mkdtemp(
                    prefix=prefix, suffix=f"-attempt-{self.attempt}"
                )
        return path

    def release_working_directory(self) -> str | None:
        """Forget this attempt's scratch directory: its path, for the caller to remove,
        or None when the attempt never asked for one."""
        with _scratch_lock:
            return _scratch.pop((self.run_id, self.slot, self.attempt), None)

    @property
    def logging(self) -> logging.Logger:
        """A logger named after the task (``kernelflow.task.NAME``)."""
        return logging.getLogger(f"kernelflow.task.{self.task_name}")


# The scratch directories of the attempts running in this process, made on first use.
_scratch: dict[tuple[str, str, int], str] = {}
_scratch_lock = threading.Lock()


_current: contextvars.ContextVar[ExecutionContext | None] = contextvars.ContextVar(
    "kernelflow_context", default=None
)


def current_context() -> ExecutionContext:
    """The context of the task attempt that is running now."""
    context = _current.get()
    if context is None:
        raise KernelflowError(
            "current_context() was called outside a running task",
            fix="call it inside a @task function or a %%task cell while it runs",
        )
    return context


def flyte_current_context() -> ExecutionContext:
    """Flyte's ``current_context()``: the running task's, else the process's local one.

    Flyte gives a context at module level too (a launch plan script passes it to
    ``LaunchPlan.get_default_launch_plan``): ``execution_id.name`` is ``local``,
    with a working directory and a logger; only a checkpoint needs a task. The
    engine itself uses :func:`current_context`, which refuses outside a task.
    """
    context = _current.get()
    if context is not None:
        return context
    from kernelflow.store.home import default_home

    return ExecutionContext("local", "local", "local", 1, str(default_home()), in_task=False)


def set_context(context: ExecutionContext | None) -> contextvars.Token[ExecutionContext | None]:
    return _current.set(context)


def reset_context(token: contextvars.Token[ExecutionContext | None]) -> None:
    _current.reset(token)
