"""``FlyteDirectory``: a folder a task reads or writes, cached by its content.

Like :class:`~kernelflow.types.file.FlyteFile`: a path where one is declared is
converted; a local directory a task returns is copied into the store; its
content (relative paths and bytes of every file) is what a cache key sees.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from kernelflow._core.typecheck import unwrap
from kernelflow.store.files import put_tree, tree_checksum, verify
from kernelflow.types._paths import download_dir, fsspec_for, is_url, local_of, with_format
from kernelflow.types._pydantic import PydanticField
from kernelflow.types.file import FlyteFile

__all__ = ["FlyteDirectory"]


class FlyteDirectory(os.PathLike, PydanticField):
    """A local folder or a remote prefix; ``FlyteDirectory[TypeVar("csv")]`` names a format."""

    extension: ClassVar[str] = ""

    def __init__(self, path: str | os.PathLike[str], remote_directory: str | None = None) -> None:
        text = os.fspath(path)
        self._remote = text if is_url(text) else remote_directory
        self._local: str | None = None if is_url(text) else local_of(text)
        self._checksum: str | None = None
        self._verified = False

    def __class_getitem__(cls, item: object) -> type[FlyteDirectory]:
        return with_format(cls, item)

    @property
    def path(self) -> str:
        return self.download()

    @property
    def remote_source(self) -> str | None:
        return self._remote

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

    def __fspath__(self) -> str:
        return self.download()

    def __truediv__(self, name: str) -> Path:
        return Path(self.download()) / name

    def __str__(self) -> str:
        return self._remote if self._local is None else self._local  # type: ignore[return-value]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FlyteDirectory):
            return NotImplemented
        return (self._local, self._remote) == (other._local, other._remote)

    def __hash__(self) -> int:
        return hash((self._local, self._remote))

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
            copy = target.__new__(target)
            copy.__dict__.update(value.__dict__)
            return copy
        if isinstance(value, (str, os.PathLike)) and not isinstance(value, FlyteFile):
            return target(value)
        return value

    def __kernelflow_hash__(self) -> str:
        if self._checksum is not None:
            return self._checksum
        return tree_checksum(self.download())

    def __kernelflow_verify__(self) -> None:
        if self._checksum is not None and self._local is not None:
            self._verified = False
            self.download()

    def __kernelflow_persist__(self, root: str | os.PathLike[str] | None) -> FlyteDirectory:
        if root is None or self._local is None or self._checksum is not None:
            return self
        stored, checksum = put_tree(root, self._local)
        copy = type(self).__new__(type(self))
        copy.__dict__.update(self.__dict__)
        copy._local, copy._checksum, copy._verified = str(stored), checksum, True
        return copy

    def __getstate__(self) -> dict[str, Any]:
        return {"local": self._local, "remote": self._remote, "checksum": self._checksum}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._local, self._remote = state["local"], state["remote"]
        self._checksum, self._verified = state["checksum"], False

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self.extension, self.__getstate__()))


def _rebuild(extension: str, state: dict[str, Any]) -> FlyteDirectory:
    cls = FlyteDirectory[extension] if extension else FlyteDirectory
    value = cls.__new__(cls)
    value.__setstate__(state)
    return value
