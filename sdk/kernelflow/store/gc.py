"""Garbage collection: ``kernelflow gc`` and the space ``kernelflow cache clear`` gives back.

Left alone, a store only grows: every run adds its records, every task that saves
state a checkpoint, every new value an artifact. :func:`collect` removes, in order:

1. The runs that no policy keeps: ``keep_runs`` keeps the newest N, ``older_than_days``
   the runs younger than that (with both, a run goes only when neither keeps it;
   with neither, no run goes). A run still running is always kept, and so is every
   run that a kept run resumed, however far back, with its checkpoints: resuming
   the kept run needs them.
2. Their records (run rows, node records, cache hits) and their checkpoint
   directories (``checkpoints/<run_id>/``, named after the first run of a resume
   chain), and checkpoint directories of runs the store does not know; their
   decks (``decks/<run_id>/``).
3. The artifact files that no kept record, no cache entry and no kept checkpoint
   names, and likewise the stored copies of files and directories that tasks
   returned (``artifacts/files/<checksum>/``, ``artifacts/dirs/<checksum>/``;
   a record names them in its refs' ``copies``). A file written or reused within
   :data:`GRACE_SECONDS` before gc began is kept whatever the records say: a run
   that started meanwhile may use it before its records are committed
   (:meth:`ArtifactStore.put` and :func:`kernelflow.store.files.put_file` mark a
   reused file so).
4. The free space in the run store (``VACUUM``), so that the file shrinks.

gc never removes a cache entry; :func:`clear_cache` does, and then collects what
the entries alone kept. A record that used an entry keeps what it used either way
(see ``cache_retired`` in :mod:`kernelflow.store._schema`).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kernelflow._core.errors import KernelflowError
from kernelflow.store.artifacts import referenced_paths
from kernelflow.store.blobs import CHECKPOINTS
from kernelflow.store.decks import deck_folder

if TYPE_CHECKING:
    from kernelflow.store.home import Store

__all__ = ["GRACE_SECONDS", "GcReport", "StoreSize", "clear_cache", "collect"]

GRACE_SECONDS = 5.0
"""Files changed this recently are never removed (mtime granularity and clock skew)."""
_DAY = 86400.0


@dataclass(frozen=True)
class StoreSize:
    """Bytes on disk, by part of the store."""

    records: int  # runs.sqlite and its write-ahead log
    artifacts: int
    checkpoints: int

    @property
    def total(self) -> int:
        return self.records + self.artifacts + self.checkpoints


@dataclass(frozen=True)
class GcReport:
    """What :func:`collect` removed (or, with ``dry_run``, would remove)."""

    dry_run: bool
    runs: int  # runs removed
    runs_kept: int
    running: int  # runs a policy would have removed, kept because they are still running
    node_records: int
    checkpoints: int  # checkpoint directories removed
    checkpoint_bytes: int
    artifacts: int  # files removed from artifacts/
    artifact_bytes: int
    before: StoreSize
    after: StoreSize  # on a dry run, the same as before
    cache_entries: int | None = None  # removed by clear_cache (gc never removes one)
    file_copies: int = 0  # stored copies of FlyteFiles and FlyteDirectories removed
    file_copy_bytes: int = 0

    @property
    def freed(self) -> int:
        """Bytes given back (on a dry run: the files that would go; compaction not counted)."""
        if self.dry_run:
            return self.artifact_bytes + self.checkpoint_bytes + self.file_copy_bytes
        return self.before.total - self.after.total

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "freed": self.freed}

    def summary(self) -> str:
        """One paragraph for people: what went, what stayed, and the store's size."""
        would = "would remove" if self.dry_run else "removed"
        files = (
            f"{_count(self.artifacts, 'artifact file')} that nothing kept refers to "
            f"({_bytes(self.artifact_bytes)})"
        )
        if self.file_copies:
            files += (
                f", with {_count(self.file_copies, 'stored file copy', 'stored file copies')} "
                f"({_bytes(self.file_copy_bytes)})"
            )
        folders = (
            f"{_count(self.checkpoints, 'checkpoint directory', 'checkpoint directories')} "
            f"({_bytes(self.checkpoint_bytes)})"
        )
        if self.cache_entries is not None:
            entries = _count(self.cache_entries, "cache entry", "cache entries")
            text = f"{would} {entries}, then {files}"
            text += f" and {folders} of unknown runs. " if self.checkpoints else ". "
        else:
            text = (
                f"{would.capitalize()} {_count(self.runs, 'run')} of "
                f"{self.runs + self.runs_kept} ({_count(self.node_records, 'node record')}), "
                f"{folders} and {files}. "
            )
            running = f", {self.running} of them still running," if self.running else ""
            text += f"Kept {_count(self.runs_kept, 'run')}{running} and every cache entry. "
        if self.dry_run:
            return text + (
                f"The store holds {_bytes(self.before.total)} (run records "
                f"{_bytes(self.before.records)}, compacted by a real run); nothing was removed."
            )
        return text + (
            f"Freed {_bytes(self.freed)}: the store went from {_bytes(self.before.total)} to "
            f"{_bytes(self.after.total)} (run records {_bytes(self.before.records)} -> "
            f"{_bytes(self.after.records)})."
        )


def collect(
    store: Store,
    *,
    keep_runs: int | None = None,
    older_than_days: float | None = None,
    dry_run: bool = False,
) -> GcReport:
    """Remove the runs no policy keeps, then what nothing kept refers to; compact the store."""
    for name, value in (("keep_runs", keep_runs), ("older_than_days", older_than_days)):
        if value is not None and value < 0:
            raise KernelflowError(
                f"{name} must not be negative (got {value})",
                fix="give the number of runs to keep, or an age in days",
            )
    return _collect(store, keep_runs, older_than_days, dry_run, time.time(), measure(store))


def clear_cache(
    store: Store,
    task: str | None = None,
    *,
    project: str | None = None,
    domain: str | None = None,
) -> GcReport:
    """Remove the cache entries (of ``task``, ``project`` and ``domain``, where given),
    then collect what only they kept."""
    began, before = time.time(), measure(store)
    removed = store.runs.cache_delete(task=task, project=project, domain=domain)
    report = _collect(store, None, None, False, began, before)
    return dataclasses.replace(report, cache_entries=removed)


def measure(store: Store) -> StoreSize:
    return StoreSize(
        records=store.runs.file_size(),
        artifacts=_tree_size(store.home / "artifacts"),
        checkpoints=_tree_size(store.home / CHECKPOINTS),
    )


def _collect(
    store: Store,
    keep_runs: int | None,
    older_than_days: float | None,
    dry_run: bool,
    began: float,
    before: StoreSize,
) -> GcReport:
    runs = store.runs.list_runs()
    chosen, running = _choose(runs, keep_runs, older_than_days, began)
    forgotten = store.runs.forget_runs(chosen, dry_run=dry_run)
    gone = set(forgotten.runs)
    known = {str(run["run_id"]) for run in runs} - gone
    keep = store.runs.artifact_paths(without=gone)
    old = began - GRACE_SECONDS
    checkpoints, checkpoint_bytes = _sweep_checkpoints(store, gone, known, keep, old, dry_run)
    artifacts, artifact_bytes = _sweep_artifacts(store, keep, old, dry_run)
    copies, copy_bytes = _sweep_copies(store, keep, old, dry_run)
    if not dry_run:
        for run_id in gone:  # a removed run's decks go with it (store/decks.py)
            shutil.rmtree(deck_folder(store.home, run_id), ignore_errors=True)
        store.signals.forget(gone)  # and its signals and waits (in the run database, on a server)
        store.runs.compact()
    return GcReport(
        dry_run=dry_run,
        runs=len(gone),
        runs_kept=len(known),
        running=len(running),
        node_records=forgotten.node_records,
        checkpoints=checkpoints,
        checkpoint_bytes=checkpoint_bytes,
        artifacts=artifacts,
        artifact_bytes=artifact_bytes,
        before=before,
        after=before if dry_run else measure(store),
        file_copies=copies,
        file_copy_bytes=copy_bytes,
    )


def _choose(
    runs: list[dict[str, Any]],
    keep_runs: int | None,
    older_than_days: float | None,
    now: float,
) -> tuple[set[str], set[str]]:
    """(runs to remove, runs the policy would remove but that are still running).

    ``runs`` is newest first, with their liveness checked (a run whose process is
    gone from this host reads as ``died``; one on another host stays ``running``).
    """
    if keep_runs is None and older_than_days is None:
        return set(), set()
    since = None if older_than_days is None else now - older_than_days * _DAY
    chosen, running = set(), set()
    for index, run in enumerate(runs):
        kept = (keep_runs is not None and index < keep_runs) or (
            since is not None and float(run["started_ts"]) >= since
        )
        if kept:
            continue
        (running if run["status"] == "running" else chosen).add(str(run["run_id"]))
    parents = {str(run["run_id"]): run["resumed_from"] for run in runs}
    for run_id in set(parents) - chosen:  # a kept run keeps every run it resumed
        parent, seen = parents.get(run_id), {run_id}
        while parent and parent not in seen:
            chosen.discard(parent)
            seen.add(parent)
            parent = parents.get(parent)
    return chosen, running


def _sweep_checkpoints(
    store: Store,
    gone: Collection[str],
    known: Collection[str],
    keep: set[str],
    old: float,
    dry_run: bool,
) -> tuple[int, int]:
    """Remove the checkpoints of removed runs (and of runs the store does not know, once
    they are old), where they are: beside the artifacts, on disk or in the object store;
    add what the kept ones refer to to ``keep``."""
    blobs = store.artifacts.blobs
    by_run: dict[str, list[str]] = {}
    for relative in blobs.files_under(CHECKPOINTS):
        parts = relative.split("/")
        if len(parts) == 3:  # checkpoints/<run>/<node>.json
            by_run.setdefault(parts[1], []).append(relative)
    count = size = 0
    for run_id, pointers in sorted(by_run.items()):
        stats = [stat for pointer in pointers if (stat := blobs.stat(pointer)) is not None]
        orphan = run_id not in known and max((t for t, _ in stats), default=0.0) < old
        if run_id in gone or orphan:
            count, size = count + 1, size + sum(bytes_ for _, bytes_ in stats)
            if not dry_run:
                blobs.remove_folder(f"{CHECKPOINTS}/{run_id}")
        else:
            keep |= {path for pointer in pointers for path in _pointer_refs(blobs, pointer)}
    return count, size


def _pointer_refs(blobs: Any, pointer: str) -> set[str]:
    """The artifacts a checkpoint pointer names (none when it cannot be read)."""
    try:
        size = blobs.size(pointer)
        if size is None:
            return set()
        return referenced_paths(bytes(blobs.read(pointer, size, "json")).decode(errors="replace"))
    except (OSError, KernelflowError):
        return set()


def _sweep_artifacts(store: Store, keep: set[str], old: float, dry_run: bool) -> tuple[int, int]:
    """Remove the files under artifacts/ that nothing kept names, and that are not new."""
    count = size = 0
    blobs = store.artifacts.blobs  # the home's disk, or the object store of $KERNELFLOW_STORE
    for relative, _ in store.artifacts.files():
        if relative in keep:
            continue
        stat = blobs.stat(relative)
        if stat is None or stat[0] >= old:  # gone, or written or reused since gc began
            continue
        if not dry_run:
            blobs.remove(relative)
        count, size = count + 1, size + stat[1]
    return count, size


def _sweep_copies(store: Store, keep: set[str], old: float, dry_run: bool) -> tuple[int, int]:
    """Remove the stored file and directory copies that nothing kept names, and not new."""
    count = size = 0
    for relative in store.artifacts.copies():
        folder = store.home / relative
        if relative in keep or _mtime(folder) >= old:
            continue
        bytes_ = _tree_size(folder)
        if not dry_run:
            shutil.rmtree(folder, ignore_errors=True)
        count, size = count + 1, size + bytes_
    return count, size


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return 0.0


def _tree_size(path: Path) -> int:
    total = 0
    for folder, _, files in os.walk(path):
        for name in files:
            try:
                total += os.stat(os.path.join(folder, name)).st_size
            except FileNotFoundError:
                continue
    return total


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n:,} {one if n == 1 else many or one + 's'}"


def _bytes(n: int) -> str:
    value = float(n)
    for unit in ("bytes", "KB", "MB", "GB"):
        if abs(value) < 1000 or unit == "GB":
            return f"{n:,} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")
