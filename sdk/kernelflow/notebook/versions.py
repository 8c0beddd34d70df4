"""``versions.json``: the index of a workflow's exported versions, kept whole.

Several exports of one workflow may run at once (a CI matrix, two people on one
share), so the index is read, extended and rewritten under an exclusive lock on
``.versions.lock`` beside it (``fcntl.flock``, released by the OS if the process
dies) and replaced atomically (a unique temporary file, then ``os.replace``): no
export loses another's entry, and a reader never sees half a file.

The index is derived data: every exported notebook carries its workflow, version,
tasks and creation time in ``metadata.kernelflow``. So an index that is missing
or corrupt is rebuilt from the ``*.ipynb`` files beside it, with a
:class:`~kernelflow._core.errors.KernelflowWarning`, rather than failing every
``versions``, ``diff`` and ``export`` after it. A rebuilt entry has no ``source``
(the notebook it was exported from is recorded only in the index) and its parent
is the version exported before it.
"""

from __future__ import annotations

import json
import os
import secrets
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kernelflow._core.errors import KernelflowError, KernelflowWarning, StoreError, TargetError
from kernelflow._core.names import validate_name

__all__ = [
    "DEFAULT_OUT",
    "diff",
    "index_lock",
    "list_version",
    "load_records",
    "versions",
    "workflow_folder",
]

DEFAULT_OUT = "exports"
INDEX = "versions.json"
LOCK = ".versions.lock"
Record = dict[str, Any]
_FIX = "give the workflow's name as `kernelflow export` printed it"


class _Unreadable(Exception):
    """The index exists but is not an index (what is wrong is the message)."""


def workflow_folder(
    out: str | os.PathLike[str], workflow: object, *, where: str, fix: str | None = None
) -> Path:
    """``<out>/<workflow>``, once the name is known not to lead anywhere else."""
    name = validate_name("workflow name", workflow, where=where, fix=fix, error=TargetError)
    return Path(out) / name


def versions(workflow: str, out: str | os.PathLike[str] = DEFAULT_OUT) -> list[Record]:
    """The exported versions of ``workflow``, oldest first (the index, repaired if need be)."""
    folder = workflow_folder(out, workflow, where="the workflow argument", fix=_FIX)
    try:
        records = _read(folder)
    except _Unreadable:
        records = None
    if records is None and folder.is_dir():
        with index_lock(folder):
            records = load_records(folder, workflow)
    if not records:
        raise KernelflowError(
            f"no exported versions of {workflow!r} under {os.fspath(out)!r}",
            workflow=workflow,
            fix="export it first: kernelflow export NOTEBOOK (--out DIR if not ./exports)",
        )
    return records


def diff(
    workflow: str, old: str, new: str, out: str | os.PathLike[str] = DEFAULT_OUT
) -> dict[str, list[str]]:
    """Tasks added, removed and changed between two exported versions."""
    known = {v["version"]: v for v in versions(workflow, out)}
    for version in (old, new):
        if version not in known:
            raise KernelflowError(
                f"{workflow!r} has no exported version {version!r}; it has "
                f"{', '.join(known) or 'none'}",
                workflow=workflow,
                fix="list them with kernelflow versions WORKFLOW",
            )
    before: Mapping[str, str] = known[old]["tasks"]
    after: Mapping[str, str] = known[new]["tasks"]
    return {
        "added": sorted(set(after) - set(before)),
        "removed": sorted(set(before) - set(after)),
        "changed": sorted(n for n in set(before) & set(after) if before[n] != after[n]),
    }


@contextmanager
def index_lock(folder: Path) -> Iterator[None]:
    """Hold the exclusive lock of ``folder``'s index: one read-modify-write at a time."""
    import fcntl

    try:
        handle = open(folder / LOCK, "a")  # noqa: SIM115 - held for the whole block
    except OSError as error:
        raise StoreError(
            f"cannot lock the version index in {str(folder)!r}: {error}",
            fix="export into a directory you can write to (--out DIR)",
        ) from error
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield  # closing the file releases the lock, also if the process dies


def load_records(folder: Path, workflow: str) -> list[Record]:
    """The index's records; rebuilt (and rewritten) when missing or corrupt. Hold the lock."""
    try:
        records = _read(folder)
    except _Unreadable as problem:
        return _rebuild(folder, workflow, f"was corrupt ({problem})")
    if records is None:
        return _rebuild(folder, workflow, "was missing") if _exported(folder) else []
    return records


def list_version(
    folder: Path, workflow: str, records: list[Record], notebook: Path, source: Path
) -> None:
    """Add the exported ``notebook`` to the index (``records``) unless it is listed.

    Hold the lock from :func:`load_records` to here, so no other export comes between.
    """
    version = notebook.stem
    if any(record["version"] == version for record in records):
        return
    entry = _entry(notebook, workflow)
    if entry is None:
        raise StoreError(f"{str(notebook)!r} is not an export of {workflow!r}")
    entry["source"] = str(source.resolve())
    entry["parent"] = records[-1]["version"] if records else None
    _write(folder, workflow, [*records, entry])


def _read(folder: Path) -> list[Record] | None:
    """The index's records; ``None`` if there is no index; :class:`_Unreadable` if corrupt."""
    try:
        text = (folder / INDEX).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as error:
        raise _Unreadable(str(error)) from error
    try:
        index = json.loads(text)
    except ValueError as error:
        raise _Unreadable(f"not JSON: {error}") from error
    records = index.get("versions") if isinstance(index, dict) else None
    if not isinstance(records, list) or not all(_well_formed(r) for r in records):
        raise _Unreadable("not a list of versions with their tasks")
    return records


def _well_formed(record: object) -> bool:
    return (
        isinstance(record, dict)
        and isinstance(record.get("version"), str)
        and isinstance(record.get("tasks"), dict)
        and all(isinstance(record.get(k), str | None) for k in ("created", "source", "parent"))
    )


def _exported(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.ipynb"))


def _entry(notebook: Path, workflow: str) -> Record | None:
    """The index entry an exported notebook's metadata gives; ``None`` if it is not one."""
    try:
        metadata = json.loads(notebook.read_text(encoding="utf-8"))["metadata"]["kernelflow"]
    except (OSError, ValueError, LookupError, TypeError):
        return None
    if not isinstance(metadata, dict) or metadata.get("workflow") != workflow:
        return None
    get = metadata.get
    entry = {"version": get("version"), "created": get("created"), "source": None}
    entry |= {"tasks": get("tasks"), "parent": None}
    entry |= {"project": get("project"), "domain": get("domain")}  # absent before domains
    return entry if entry["version"] == notebook.stem and _well_formed(entry) else None


def _rebuild(folder: Path, workflow: str, why: str) -> list[Record]:
    """The index made again from the exported notebooks, oldest first, and written."""
    found = [(entry, path) for path in _exported(folder) if (entry := _entry(path, workflow))]
    # ``created`` has whole seconds; the file's mtime orders exports within one second.
    found.sort(key=lambda item: (item[0]["created"] or "", item[1].stat().st_mtime_ns))
    entries = [entry for entry, _ in found]
    for parent, entry in zip([None, *entries], entries):
        entry["parent"] = parent["version"] if parent else None
    _write(folder, workflow, entries)
    warnings.warn(
        f"{str(folder / INDEX)!r} {why}; rebuilt it from the {len(entries)} exported "
        f"notebook{'s' if len(entries) != 1 else ''} beside it (their sources are not known)",
        KernelflowWarning,
        stacklevel=4,
    )
    return entries


def _write(folder: Path, workflow: str, records: list[Record]) -> None:
    """Replace the index atomically: readers see the old file or the new one, never half."""
    text = json.dumps({"workflow": workflow, "versions": records}, indent=2)
    temporary = folder / f".{INDEX}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    try:
        with open(temporary, "x", encoding="utf-8") as file:  # the umask's mode, like exports
            file.write(text)
        os.replace(temporary, folder / INDEX)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
