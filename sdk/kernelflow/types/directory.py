"""``FlyteDirectory``: a folder a task reads or writes, cached by its content.

Like :class:`~kernelflow.types.file.FlyteFile`: a path where one is declared is
converted; a local directory a task returns is copied into the store; its
content (relative paths and bytes of every file) is what a cache key sees.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kernelflow._core.typecheck import unwrap
from kernelflow.exceptions.unsupported import refuse
from kernelflow.store.files import put_tree, tree_checksum, verify
from kernelflow.types._paths import download_dir, fsspec_for
from kernelflow.types._stored import StoredPath, rebuild
from kernelflow.types.file import FlyteFile

__all__ = ["FlyteDirectory"]


class FlyteDirectory(StoredPath):
    """A local folder or a remote prefix; ``FlyteDirectory[TypeVar("csv")]`` names a format."""

    def __init__(self, path: str | os.PathLike[str], remote_directory: str | None = None) -> None:
        self._locate(path, remote_directory)

    @property
    def path(self) -> str:
        return self.download()

    @property
    def remote_directory(self) -> str | None:
        return self._remote

    def download(self) -> str:
        """A local path to the folder (fetched once for a remote one)."""
        if self._local is None:
            assert self._remote is not None
            fs, remote = fsspec_for(self._remote)
            local = os.path.join(download_dir(), os.path.basename(remote.rstrip("/")) or "dir")
            fs.get(remote.rstrip("/") + "/", local, recursive=True)
            self._local = local
        if self._checksum is not None and not self._verified:
            verify(self._local, self._checksum, directory=True)
            self._verified = True
        return self._local

    def crawl(self) -> Iterator[tuple[str, str]]:
        """(folder, path relative to it) of every file, in a stable order."""
        base = self.download()
        for folder, dirs, files in os.walk(base):
            dirs.sort()
            for name in sorted(files):
                yield base, os.path.relpath(os.path.join(folder, name), base)

    def listdir(self) -> list[FlyteFile | FlyteDirectory]:
        """The entries directly inside, as files and directories."""
        base = Path(self.download())
        return [
            FlyteDirectory(entry) if entry.is_dir() else FlyteFile(entry)
            for entry in sorted(base.iterdir())
        ]

    def __truediv__(self, name: str) -> Path:
        return Path(self.download()) / name

    # -- the protocol of kernelflow._core.adapt --

    @classmethod
    def __kernelflow_accepts__(cls, value: object) -> bool:
        return isinstance(value, (FlyteDirectory, str, os.PathLike)) and not isinstance(
            value, FlyteFile
        )

    @classmethod
    def __kernelflow_adapt__(cls, value: object, declared: object) -> object:
        target = unwrap(declared)
        if type(value) is target or not isinstance(target, type):
            return value
        if isinstance(value, FlyteDirectory):
            return value._as(target)
        if isinstance(value, (str, os.PathLike)) and not isinstance(value, FlyteFile):
            return target(value)
        return value

    def __kernelflow_hash__(self) -> str:
        if self._checksum is not None:
            return self._checksum
        return tree_checksum(self.download())

    def _put(self, root: str | os.PathLike[str], local: str) -> tuple[Path, str]:
        return put_tree(root, local)


FlyteDirectory.family = FlyteDirectory


def _rebuild(extension: str, state: dict[str, Any]) -> FlyteDirectory:
    """What pickles made before the shared base name (kept so that stores still read)."""
    return rebuild(FlyteDirectory, extension, state)


def __getattr__(name: str) -> Any:  # Flyte's names kernelflow lacks: the one message
    return refuse(__name__, name)
