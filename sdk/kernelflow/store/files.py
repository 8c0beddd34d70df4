"""Files and directories that tasks return, kept in the store by their content.

A task that returns a file (a ``FlyteFile``) returns a path on this machine that
the next run may not find again (a temp file, a file it overwrites later). So
the file is copied into ``<root>/artifacts/files/<checksum>/<name>`` (a
directory into ``<root>/artifacts/dirs/<checksum>/<name>/``), where equal
content shares one copy, the name is kept for readers, and the checksum
(xxh3-128 of the bytes; of the sorted paths and file checksums for a
directory) lets a reader detect a damaged copy. Writes go to a temporary name
and are renamed into place, like every artifact. A copy that is there already
is marked as just used (its folder's mtime), as :meth:`ArtifactStore.put` marks
a shared file, so that a gc running meanwhile keeps it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import xxhash

from kernelflow._core.errors import IntegrityError, StoreError

__all__ = ["file_checksum", "put_file", "put_tree", "tree_checksum", "verify"]

_BLOCK = 1 << 20


def file_checksum(path: str | os.PathLike[str]) -> str:
    """xxh3-128 of the file's bytes, read in blocks."""
    hasher = xxhash.xxh3_128()
    with open(path, "rb") as file:
        while block := file.read(_BLOCK):
            hasher.update(block)
    return hasher.hexdigest()


def _tree_files(root: Path) -> Iterator[tuple[str, Path]]:
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            path = Path(folder, name)
            yield path.relative_to(root).as_posix(), path


def tree_checksum(path: str | os.PathLike[str]) -> str:
    """One checksum of a directory: its files' relative paths and contents, in order."""
    hasher = xxhash.xxh3_128()
    for relative, file in _tree_files(Path(path)):
        hasher.update(relative.encode("utf-8", "surrogateescape") + b"\0")
        hasher.update(file_checksum(file).encode("ascii"))
    return hasher.hexdigest()


def put_file(root: str | os.PathLike[str], path: str | os.PathLike[str]) -> tuple[Path, str]:
    """Copy the file into the store; its stored path and checksum. Equal files share one copy."""
    source = Path(path)
    checksum = file_checksum(source)
    final = Path(root, "artifacts", "files", checksum, source.name or "file")
    if not (final.is_file() and file_checksum(final) == checksum):  # absent or damaged
        _copy_atomic(final, lambda temporary: shutil.copyfile(source, temporary))
    else:
        _touch(final.parent)
    return final, checksum


def put_tree(root: str | os.PathLike[str], path: str | os.PathLike[str]) -> tuple[Path, str]:
    """Copy the directory into the store; its stored path and checksum."""
    source = Path(path)
    checksum = tree_checksum(source)
    final = Path(root, "artifacts", "dirs", checksum, source.name or "dir")
    if not (final.is_dir() and tree_checksum(final) == checksum):
        if final.is_dir():
            shutil.rmtree(final, ignore_errors=True)
        _copy_atomic(final, lambda temporary: shutil.copytree(source, temporary))
    else:
        _touch(final.parent)
    return final, checksum


def _touch(folder: Path) -> None:
    with contextlib.suppress(OSError):
        os.utime(folder)


def verify(path: str | os.PathLike[str], checksum: str, *, directory: bool = False) -> None:
    """Raise IntegrityError when a stored copy is missing or its bytes changed."""
    try:
        actual = tree_checksum(path) if directory else file_checksum(path)
    except OSError as error:
        actual = f"unreadable ({error.strerror or error})"
    if actual != checksum:
        raise IntegrityError(
            f"the stored copy {path} is missing or damaged (checksum {actual}, "
            f"expected {checksum})",
            path=str(path),
            reason="checksum mismatch",
            fix="run the task that produced it again (with --force, or after clearing its "
            "cache entry)",
        )


def _copy_atomic(final: Path, copy: object) -> None:
    temporary = final.with_name(f".{final.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        copy(temporary)  # type: ignore[operator]
        os.replace(temporary, final)
    except OSError as error:
        if temporary.is_dir():
            shutil.rmtree(temporary, ignore_errors=True)
        with contextlib.suppress(OSError):
            temporary.unlink()
        if final.exists():  # a concurrent writer put the same content there first
            return
        raise StoreError(
            f"cannot copy {final.name} into the store: {error.strerror or error}",
            path=str(final),
            fix="free space in the store, or point $KERNELFLOW_HOME elsewhere",
        ) from error
