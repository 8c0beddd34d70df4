"""``FlyteFile``: a file a task reads or writes, cached by its content, not its path.

A task may return a path (``str`` or ``pathlib.Path``) where ``FlyteFile`` is
declared; it becomes a ``FlyteFile``. When the task's outputs are persisted,
a local file is copied into the store (:mod:`kernelflow.store.files`), so the
value still opens after the original is gone, and a damaged copy is detected.
A remote location (any fsspec URL) is read only when the task reads it.

As an input, a file enters the cache key by the hash of its bytes: an edited
file is a cache miss, the same bytes under another name are a hit.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import IO, Any

from kernelflow._core.typecheck import unwrap
from kernelflow.exceptions.unsupported import refuse
from kernelflow.store.files import file_checksum, put_file, verify
from kernelflow.types._paths import download_dir, fsspec_for
from kernelflow.types._stored import StoredPath, rebuild

__all__ = ["FlyteFile"]


class FlyteFile(StoredPath):
    """A local path or a remote URL; ``FlyteFile[TypeVar("csv")]`` names its format."""

    def __init__(self, path: str | os.PathLike[str], remote_path: str | None = None) -> None:
        self._locate(path, remote_path)
        self._stamp: tuple[int, int] | None = None
        self._digest: str | None = None

    # -- Flyte's surface --

    @property
    def path(self) -> str:
        """The local path (a remote file is downloaded first)."""
        return self.download()

    @property
    def downloaded(self) -> bool:
        return self._local is not None and os.path.exists(self._local)

    def download(self) -> str:
        """A local path to the file's bytes (fetched once for a remote file)."""
        if self._local is None:
            assert self._remote is not None
            fs, remote = fsspec_for(self._remote)
            local = os.path.join(download_dir(), os.path.basename(remote.rstrip("/")) or "file")
            fs.get(remote, local)
            self._local = local
        if self._checksum is not None and not self._verified:
            verify(self._local, self._checksum)
            self._verified = True
        return self._local

    def open(self, mode: str = "rb", **kwargs: Any) -> IO[Any]:
        """Open the file; a remote one is streamed (``"rb"``) without downloading it whole."""
        if self._local is None and self._remote is not None:
            fs, remote = fsspec_for(self._remote)
            return fs.open(remote, mode, **kwargs)
        if "w" in mode or "a" in mode:
            assert self._local is not None
            Path(self._local).parent.mkdir(parents=True, exist_ok=True)
            self._digest = None
            return open(self._local, mode, **kwargs)
        return open(self.download(), mode, **kwargs)

    @classmethod
    def new_remote_file(cls, name: str | None = None) -> FlyteFile:
        """A new local file to write (there is no remote store locally)."""
        return cls(os.path.join(download_dir(), name or "file"))

    # -- the protocol of kernelflow._core.adapt --

    @classmethod
    def __kernelflow_accepts__(cls, value: object) -> bool:
        return isinstance(value, (FlyteFile, str, os.PathLike))

    @classmethod
    def __kernelflow_adapt__(cls, value: object, declared: object) -> object:
        target = unwrap(declared)
        if type(value) is target or not isinstance(target, type):
            return value
        if isinstance(value, FlyteFile):
            return value._as(target)
        if isinstance(value, (str, os.PathLike)):
            return target(value)
        return value

    def __kernelflow_hash__(self) -> str:
        """The hash of the bytes (remembered while the file's size and mtime stay)."""
        if self._checksum is not None:
            return self._checksum
        if self._local is None:
            assert self._remote is not None
            with self.open("rb") as file:
                import xxhash

                hasher = xxhash.xxh3_128()
                while block := file.read(1 << 20):
                    hasher.update(block)
                return hasher.hexdigest()
        stat = os.stat(self._local)
        stamp = (stat.st_size, stat.st_mtime_ns)
        if self._digest is None or stamp != self._stamp:
            self._digest, self._stamp = file_checksum(self._local), stamp
        return self._digest

    def _put(self, root: str | os.PathLike[str], local: str) -> tuple[Path, str]:
        return put_file(root, local)

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self._stamp = self._digest = None

    def copy_to(self, destination: str | os.PathLike[str]) -> FlyteFile:
        """Copy the bytes to ``destination``; a FlyteFile of the copy."""
        with self.open("rb") as source, open(destination, "wb") as target:
            shutil.copyfileobj(source, target)
        return type(self)(destination)


FlyteFile.family = FlyteFile


def _rebuild(extension: str, state: dict[str, Any]) -> FlyteFile:
    """What pickles made before the shared base name (kept so that stores still read)."""
    return rebuild(FlyteFile, extension, state)


def __getattr__(name: str) -> Any:  # Flyte's names kernelflow lacks: the one message
    return refuse(__name__, name)
