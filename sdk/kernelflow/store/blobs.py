"""Where artifact bytes live: the storage primitives under one root, behind one ABC.

:class:`~kernelflow.store.artifacts.ArtifactStore` writes the caching logic once
(content addressing, checksums, signatures, healing); a :class:`Blobs` only
stores and fetches bytes under relative paths (``artifacts/<2 hex>/<name>``).
Two kinds exist: :class:`LocalBlobs`, files on this machine's disk (renamed into
place, Parquet read through ``mmap``), and
:class:`~kernelflow.store.object_store.FsspecBlobs`, any fsspec URL (``s3://``,
``memory://``), imported only when such a URL is configured.

Every kind keeps the same promises: a write is published whole or not at all,
and a read either returns exactly ``size`` bytes or raises an
:class:`~kernelflow._core.errors.IntegrityError` (missing, truncated, unreadable).
"""

from __future__ import annotations

import contextlib
import mmap
import os
import secrets
import shutil
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from kernelflow._core.errors import IntegrityError, StoreError

__all__ = ["Blobs", "Chunk", "LocalBlobs", "integrity_error", "open_blobs"]

Chunk = bytes | bytearray | memoryview


CHECKPOINTS = "checkpoints"
"""The folder of checkpoint pointers (engine.context.Checkpoint), beside ``artifacts/``."""


def integrity_error(path: str, reason: str) -> IntegrityError:
    """The error for an artifact that is not loaded; the engine recomputes its value."""
    return IntegrityError(
        f"artifact {path} is {reason}; it is not loaded, and the value will be recomputed",
        fix="nothing to do: kernelflow recomputes the value. If this keeps happening, check "
        "the disk holding the store, and what else writes to it",
        path=path,
        reason=reason,
    )


class Blobs(ABC):
    """Bytes under relative paths of one root; ``location`` names the root for messages."""

    location: str
    #: Whether the bytes are on this machine's disk (so ``root / relative`` is a file).
    is_local: bool = False

    @abstractmethod
    def size(self, relative: str) -> int | None:
        """The stored size, or None when nothing is there."""

    @abstractmethod
    def write(self, relative: str, chunks: Sequence[Chunk]) -> None:
        """Publish ``chunks`` at ``relative`` whole: readers never see part of them."""

    @abstractmethod
    def read(self, relative: str, size: int, format_: str) -> Any:
        """Exactly ``size`` bytes (any buffer), or an IntegrityError naming what is wrong."""

    @abstractmethod
    def remove(self, relative: str) -> None:
        """Delete ``relative`` if it is there."""

    @abstractmethod
    def listing(self) -> Iterator[str]:
        """The relative path of every file under ``artifacts/<2 hex>/``, sorted."""

    @abstractmethod
    def files_under(self, folder: str) -> Iterator[str]:
        """The relative path of every file under ``folder`` (at any depth), sorted."""

    @abstractmethod
    def remove_folder(self, folder: str) -> None:
        """Delete ``folder`` and everything under it, if it is there."""

    @abstractmethod
    def stat(self, relative: str) -> tuple[float, int] | None:
        """(modification time, size) of ``relative``, or None; gc keeps what is recent."""

    @abstractmethod
    def touch(self, relative: str) -> None:
        """Mark a reused file as just used (so a gc running meanwhile keeps it), if possible."""

    @abstractmethod
    def check(self) -> None:
        """Raise a ConfigurationError when the root cannot be used at all; cheap when it can."""


def open_blobs(url: str | None, home: Path) -> Blobs:
    """The blobs a store URL names: local disk for none, a path or ``file://``; else fsspec.

    Local paths keep the fast path (rename into place, ``mmap`` reads); fsspec is
    imported only for the other URLs.
    """
    if not url:
        return LocalBlobs(home)
    if url.startswith("file://"):
        return LocalBlobs(Path(url[len("file://") :]))
    if "://" not in url and "::" not in url:
        return LocalBlobs(Path(url))
    from kernelflow.store.object_store import FsspecBlobs

    return FsspecBlobs(url)


# --- local disk ---------------------------------------------------------------------


class LocalBlobs(Blobs):
    """Files under ``root`` (created with mode 0700 on the first write: it may hold the key)."""

    is_local = True

    def __init__(self, root: Path) -> None:
        self.root = Path(root).absolute()
        self.location = str(self.root)
        self._root_ready = False

    def size(self, relative: str) -> int | None:
        try:
            return (self.root / relative).stat().st_size
        except OSError:
            return None

    def touch(self, relative: str) -> None:
        with contextlib.suppress(OSError):
            os.utime(self.root / relative)

    def check(self) -> None:
        """Nothing to check ahead: a disk that cannot be written fails the write, as a
        StoreError naming the file."""

    def write(self, relative: str, chunks: Sequence[Chunk]) -> None:
        self.ensure_root()
        write_atomic(self.root / relative, chunks)

    def read(self, relative: str, size: int, format_: str) -> Any:
        return _read_exact(self.root / relative, relative, size, format_)

    def remove(self, relative: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.root / relative).unlink()

    def listing(self) -> Iterator[str]:
        for directory in sorted((self.root / "artifacts").glob("[0-9a-f][0-9a-f]")):
            for path in sorted(directory.iterdir()):
                if path.is_file():
                    yield f"artifacts/{directory.name}/{path.name}"

    def files_under(self, folder: str) -> Iterator[str]:
        base = self.root / folder
        found = sorted(path for path in base.rglob("*") if path.is_file())
        for path in found:
            yield path.relative_to(self.root).as_posix()

    def remove_folder(self, folder: str) -> None:
        shutil.rmtree(self.root / folder, ignore_errors=True)

    def stat(self, relative: str) -> tuple[float, int] | None:
        try:
            result = (self.root / relative).stat()
        except FileNotFoundError:
            return None
        return result.st_mtime, result.st_size

    def ensure_root(self) -> None:
        if not self._root_ready:
            try:
                self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
            except OSError as error:
                raise store_error(self.root, error) from error
            self._root_ready = True


def store_error(path: Path | str, error: OSError) -> StoreError:
    return StoreError(
        f"cannot write to the kernelflow store at {path}: {error}",
        fix="check free space and permissions there, or point $KERNELFLOW_HOME elsewhere",
        path=str(path),
    )


def write_atomic(final: Path, chunks: Sequence[Chunk]) -> None:
    """Write to a unique temporary name beside ``final``, then rename it into place."""
    temporary = final.with_name(f".{final.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        with open(temporary, "xb") as file:
            for chunk in chunks:
                file.write(chunk)
        os.replace(temporary, final)
    except BaseException as error:
        with contextlib.suppress(OSError):
            temporary.unlink()
        if isinstance(error, OSError):
            raise store_error(final, error) from error
        raise


def _read_exact(path: Path, relative: str, expected: int, format_: str) -> Any:
    """The whole file, in as few reads as the OS allows, checked against ``expected``."""
    try:
        with open(path, "rb", buffering=0) as file:
            size = os.fstat(file.fileno()).st_size
            if size != expected:
                raise integrity_error(relative, size_mismatch(size, expected))
            data = _READERS.get(format_, _read_all)(file, size)
    except FileNotFoundError as error:
        raise integrity_error(relative, "missing") from error
    except OSError as error:
        raise integrity_error(relative, f"unreadable ({error})") from error
    if len(data) != size:
        raise integrity_error(relative, f"truncated while being read ({len(data)} of {size})")
    return data


def size_mismatch(size: int, expected: int) -> str:
    state = "truncated" if size < expected else "longer than written"
    return f"{state} ({size} bytes, expected {expected})"


def _read_all(file: Any, size: int) -> bytes:
    return file.read()


def _map_file(file: Any, size: int) -> Any:
    """The file mapped into memory, read-only: Parquet is decoded straight from the page
    cache, and nothing is copied into a fresh 80 MB ``bytes`` first (whose page faults
    cost more than decoding). Pre-faulted where the OS allows it. Mapping is safe
    because artifact files are never rewritten: a new value is a new file, renamed
    into place (only a file cut short by hand while being read could fault)."""
    if size == 0:
        return b""
    populate = getattr(mmap, "MAP_POPULATE", 0)
    if populate:
        return mmap.mmap(file.fileno(), size, flags=mmap.MAP_SHARED | populate, prot=mmap.PROT_READ)
    return mmap.mmap(file.fileno(), size, access=mmap.ACCESS_READ)


def read_into_buffer(readinto: Callable[[memoryview], int | None], size: int) -> Any:
    """Fill a NumPy buffer of ``size`` bytes by ``readinto`` calls (arrays are built on it,
    writable, with no copy); shorter if the source ends early."""
    import numpy as np

    buffer = np.empty(size, dtype=np.uint8)
    view, got = memoryview(buffer), 0
    while got < size:
        count = readinto(view[got:])
        if not count:
            return buffer[:got]
        got += count
    return buffer


def _read_npy_buffer(file: Any, size: int) -> Any:
    return read_into_buffer(file.readinto, size)


_READERS: dict[str, Callable[[Any, int], Any]] = {"npy": _read_npy_buffer, "parquet": _map_file}
