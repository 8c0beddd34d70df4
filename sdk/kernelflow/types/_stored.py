"""What ``FlyteFile`` and ``FlyteDirectory`` share: a place, a format, a verified store copy.

Both are a local path or a remote (fsspec) URL; both become a copy in the store
when a task returns them (``__kernelflow_persist__``), which is then checked
against its checksum before it is read (``__kernelflow_verify__``); both pickle
as that place and checksum only. What differs (how the bytes are copied,
hashed and downloaded) is in each class; :meth:`StoredPath._put` and
``download`` are theirs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from kernelflow.types._paths import is_url, local_of, with_format
from kernelflow.types._pydantic import PydanticField

__all__ = ["StoredPath", "rebuild"]

S = TypeVar("S", bound="StoredPath")


class StoredPath(os.PathLike, PydanticField):  # type: ignore[type-arg]
    """The common half of a file and a directory (see the module)."""

    extension: ClassVar[str] = ""
    family: ClassVar[type[StoredPath]]  # FlyteFile or FlyteDirectory: what equality compares

    def _locate(self, path: str | os.PathLike[str], remote: str | None) -> None:
        text = os.fspath(path)
        self._remote = text if is_url(text) else remote
        self._local: str | None = None if is_url(text) else local_of(text)
        self._checksum: str | None = None  # set when it is a verified copy in the store
        self._verified = False

    def __class_getitem__(cls, item: object) -> Any:
        return with_format(cls, item)

    @property
    def remote_source(self) -> str | None:
        """The URL it came from, or None for a local one."""
        return self._remote

    def download(self) -> str:
        raise NotImplementedError

    def __fspath__(self) -> str:
        return self.download()

    def __str__(self) -> str:
        return self._remote if self._local is None else self._local  # type: ignore[return-value]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, self.family):
            return NotImplemented
        return (self._local, self._remote) == (other._local, other._remote)

    def __hash__(self) -> int:
        return hash((self._local, self._remote))

    # -- the protocol of kernelflow._core.adapt --

    def __kernelflow_verify__(self) -> None:
        """Raise IntegrityError when the store's copy is gone or changed."""
        if self._checksum is not None and self._local is not None:
            self._verified = False
            self.download()

    def __kernelflow_persist__(self: S, root: str | os.PathLike[str] | None) -> S:
        """A copy that lives in the store at ``root`` (a remote one stays where it is)."""
        if root is None or self._local is None or self._checksum is not None:
            return self
        stored, checksum = self._put(root, self._local)
        copy = self._as(type(self))
        copy._local, copy._checksum, copy._verified = str(stored), checksum, True
        return copy

    def _put(self, root: str | os.PathLike[str], local: str) -> tuple[Path, str]:
        raise NotImplementedError

    def _as(self, cls: type[S]) -> S:
        copy = cls.__new__(cls)
        copy.__dict__.update(self.__dict__)
        return copy

    # -- pickled as its place and checksum --

    def __getstate__(self) -> dict[str, Any]:
        return {"local": self._local, "remote": self._remote, "checksum": self._checksum}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._local, self._remote = state["local"], state["remote"]
        self._checksum, self._verified = state["checksum"], False

    def __reduce__(self) -> tuple[Any, ...]:
        return (rebuild, (self.family, self.extension, self.__getstate__()))


def rebuild(family: type[S], extension: str, state: dict[str, Any]) -> S:
    """The value a pickle names: of the format's subclass when it has one."""
    cls = family[extension] if extension else family  # type: ignore[index]
    value = cls.__new__(cls)
    value.__setstate__(state)
    return value  # type: ignore[no-any-return]
