"""``flytekit.core.data_persistence.FileAccessProvider``: Flyte's file access, on this machine.

In Flyte, ``ctx.file_access`` moves data between the task's local sandbox and
the blob store ("remote"). Locally both are directories: the sandbox is a
temporary directory of this process (removed when it exits), and "remote"
paths are under ``raw_output_prefix``, a directory too. A ``TypeTransformer``
writes its files to a remote path and returns it in a ``Blob`` literal; the
store then keeps the *content* of that path (:mod:`kernelflow.core.type_engine`),
so nothing under these directories has to outlive the process. An ``fsspec``
URL (``s3://...``) is read and written with fsspec, as ``FlyteFile`` does.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

from kernelflow.exceptions.unsupported import refuse_attribute
from kernelflow.types._paths import fsspec_for, is_url, local_of

__all__ = ["FileAccessProvider", "default_file_access"]

# Flyte's methods with no local meaning here: refused by name (others: AttributeError).
_FLYTE_METHODS = frozenset(
    [
        "async_get_data",
        "async_put_data",
        "async_put_raw_data",
        "data_config",
        "generate_new_custom_path",
        "get_async_filesystem_for_path",
        "put_raw_data",
        "raw_output_fs",
        "recursive_paths",
    ]
)


class FileAccessProvider:
    """Random local and "remote" paths, and copies between them (files or directories)."""

    def __init__(
        self, local_sandbox_dir: str | os.PathLike[str], raw_output_prefix: str, **_: Any
    ) -> None:
        self._local_sandbox_dir = str(local_sandbox_dir)
        self._raw_output_prefix = str(raw_output_prefix)

    def __getattr__(self, name: str) -> Any:
        owner = "kernelflow.core.data_persistence.FileAccessProvider"
        return refuse_attribute(owner, name, _FLYTE_METHODS)

    @property
    def local_sandbox_dir(self) -> str:
        return self._local_sandbox_dir

    @property
    def raw_output_prefix(self) -> str:
        return self._raw_output_prefix

    @staticmethod
    def get_random_string() -> str:
        return uuid.uuid4().hex

    @staticmethod
    def is_remote(path: str | os.PathLike[str]) -> bool:
        return is_url(str(path))

    def get_random_local_path(self, file_path_or_file_name: str | None = None) -> str:
        """A new path in the sandbox (its folder is made; the file is not)."""
        return _random_path(self._local_sandbox_dir, file_path_or_file_name)

    def get_random_local_directory(self) -> str:
        """A new, empty directory in the sandbox."""
        path = Path(self._local_sandbox_dir, self.get_random_string())
        path.mkdir(parents=True)
        return str(path)

    def get_random_remote_path(self, file_path_or_file_name: str | None = None) -> str:
        return _random_path(self._raw_output_prefix, file_path_or_file_name)

    def get_random_remote_directory(self) -> str:
        if is_url(self._raw_output_prefix):
            return f"{self._raw_output_prefix.rstrip('/')}/{self.get_random_string()}"
        path = Path(self._raw_output_prefix, self.get_random_string())
        path.mkdir(parents=True)
        return str(path)

    def exists(self, path: str) -> bool:
        if is_url(path):
            filesystem, inner = fsspec_for(path)
            return bool(filesystem.exists(inner))
        return os.path.exists(local_of(path))

    def get_data(self, remote_path: str, local_path: str, is_multipart: bool = False) -> None:
        """Copy ``remote_path`` (a file, or with ``is_multipart`` a directory's content) here."""
        _copy(remote_path, local_path, is_multipart)

    def put_data(self, local_path: str, remote_path: str, is_multipart: bool = False) -> str:
        _copy(local_path, remote_path, is_multipart)
        return remote_path

    def download(self, remote_path: str, local_path: str) -> None:
        _copy(remote_path, local_path, False)

    def upload(self, file_path: str, to_path: str) -> None:
        _copy(file_path, to_path, False)

    def download_directory(self, remote_path: str, local_path: str) -> None:
        _copy(remote_path, local_path, True)

    def upload_directory(self, local_path: str, remote_path: str) -> None:
        _copy(local_path, remote_path, True)

    def get_filesystem_for_path(self, path: str = "", **_: Any) -> Any:
        """The fsspec filesystem of ``path`` (the local one for a plain path)."""
        if is_url(path):
            return fsspec_for(path)[0]
        import fsspec

        return fsspec.filesystem("file")


def _random_path(root: str, name: str | None) -> str:
    token = uuid.uuid4().hex
    if is_url(root):
        tail = f"{token}/{os.path.basename(name)}" if name else token
        return f"{root.rstrip('/')}/{tail}"
    folder = Path(root, token)
    if not name:
        folder.parent.mkdir(parents=True, exist_ok=True)
        return str(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return str(folder / os.path.basename(name))


def _copy(source: str, target: str, directory: bool) -> None:
    """A file to a file, or a directory's content into a directory; fsspec for URLs."""
    if is_url(source) or is_url(target):
        _copy_fsspec(source, target, directory)
        return
    source, target = local_of(source), local_of(target)
    if directory or os.path.isdir(source):
        shutil.copytree(source, target, dirs_exist_ok=True)
        return
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)


def _copy_fsspec(source: str, target: str, directory: bool) -> None:
    if is_url(source):
        filesystem, inner = fsspec_for(source)
        filesystem.get(inner, local_of(target), recursive=directory)
    else:
        filesystem, inner = fsspec_for(target)
        filesystem.put(local_of(source), inner, recursive=directory)


_DEFAULT: FileAccessProvider | None = None


def default_file_access() -> FileAccessProvider:
    """The process's provider: one sandbox directory, removed when the process exits."""
    global _DEFAULT
    if _DEFAULT is None:
        sandbox = tempfile.mkdtemp(prefix="kernelflow-flyte-")
        atexit.register(shutil.rmtree, sandbox, ignore_errors=True)
        _DEFAULT = FileAccessProvider(sandbox, os.path.join(sandbox, "raw"))
    return _DEFAULT
