"""Artifacts on any fsspec URL: ``s3://bucket/prefix``, ``memory://name``, ...

``KERNELFLOW_STORE`` names the URL (see :mod:`kernelflow.store.home`); the layout
under it is the local one (``artifacts/<2 hex>/<checksum>.<ext>``), so refs in
the run store mean the same thing wherever the bytes are.

Publication is atomic without a rename we fake. On S3 an object up to
:data:`SINGLE_PUT` is one ``PUT``, which S3 stores whole or not at all. Larger
objects, and every other file system, use fsspec's own transactional write:
the file is opened with ``autocommit=False``, written in blocks, closed, then
``commit()`` publishes it (for S3: ``CompleteMultipartUpload``) or
``discard()`` throws it away (the multipart upload is aborted). A writer that
dies midway leaves an unfinished multipart upload, which S3 never shows as an
object; a bucket lifecycle rule ("abort incomplete multipart uploads after N
days") reclaims its space.

Large artifacts stream: a PUT's body is read piece by piece from the encoded
buffers (:class:`ChunksReader`), a transactional write goes in :data:`BLOCK`
slices (fsspec's buffer holds at most one part), and reads fill one
preallocated buffer by ranged reads; no second full copy of the value's bytes
is made on either side. On S3 a read is one GET streamed into one preallocated
buffer (fewer requests, and no joined copy of the body, than ``cat_file``).

The connection settings are fsspec's and the cloud SDK's own (for S3:
``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/``AWS_PROFILE``,
``AWS_ENDPOINT_URL`` for a non-AWS server), never kernelflow's, so the same
environment that works for ``s3fs`` works here.
"""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from kernelflow._core.errors import ConfigurationError, StoreError
from kernelflow.store.blobs import Blobs, Chunk, integrity_error, read_into_buffer, size_mismatch

__all__ = ["BLOCK", "SINGLE_PUT", "ChunksReader", "FsspecBlobs", "mask_url"]

BLOCK = 32 * 2**20  # bytes per write slice and per ranged read: few requests, bounded memory
# Up to this size an S3 object is one PUT (as s3fs's own pipe_file does below 100 MiB).
SINGLE_PUT = 96 * 2**20
_SECRET_QUERY = re.compile(r"((?:secret|token|password|key|sig|signature)[^=&]*=)[^&]*", re.I)


def mask_url(url: str) -> str:
    """``url`` fit to print: a password in it and secret-looking query values become ``***``."""
    masked = re.sub(r"(://[^/:@]*):[^/@]*@", r"\1:***@", url)
    return _SECRET_QUERY.sub(r"\1***", masked)


class FsspecBlobs(Blobs):
    """Artifacts under an fsspec URL; the file system is made on first use, in each process.

    Pickling keeps only the URL (the file system, with its connections and event
    loop, is made again where it is unpickled): a worker process opens the
    store itself, with its own environment's credentials.
    """

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.location = mask_url(self.url)
        self._fs: Any = None
        self._root = ""
        self._checked = False

    def __getstate__(self) -> dict[str, Any]:
        return {"url": self.url}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["url"])  # type: ignore[misc]

    @property
    def fs(self) -> Any:
        """The fsspec file system (made once; a missing driver is a ConfigurationError)."""
        if self._fs is None:
            self._fs, self._root = _open_fs(self.url, self.location)
        return self._fs

    @property
    def root(self) -> str:
        """The URL's path in its file system (``bucket/prefix`` for S3)."""
        if self._fs is None:
            self._fs, self._root = _open_fs(self.url, self.location)
        return self._root

    def _path(self, relative: str) -> str:
        return f"{self.root}/{relative}" if self.root else relative

    # -- the primitives --

    def size(self, relative: str) -> int | None:
        try:
            info = self.fs.info(self._path(relative))
        except FileNotFoundError:
            return None
        except Exception as error:
            raise self._failed("cannot look up", relative, error) from error
        return int(info["size"]) if info.get("type") == "file" else None

    def write(self, relative: str, chunks: Sequence[Chunk]) -> None:
        path = self._path(relative)
        size = sum(memoryview(chunk).nbytes for chunk in chunks)
        if size <= SINGLE_PUT and hasattr(self.fs, "call_s3"):
            self._put_object(relative, path, chunks)
        else:
            self._write_transaction(relative, path, chunks)

    def _put_object(self, relative: str, path: str, chunks: Sequence[Chunk]) -> None:
        """One S3 PUT, streamed from the encoded buffers: S3 stores a PUT whole or not
        at all, and checks its checksum, so there is nothing to commit or discard.
        (A multipart upload would cost one request per part and a copy on completion.)"""
        bucket, key, _ = self.fs.split_path(path)
        try:
            self.fs.call_s3("put_object", Bucket=bucket, Key=key, Body=ChunksReader(chunks))
        except Exception as error:
            raise self._failed("cannot write", relative, error) from error
        finally:
            self.fs.invalidate_cache(path)

    def _write_transaction(self, relative: str, path: str, chunks: Sequence[Chunk]) -> None:
        """fsspec's transactional write: nothing is visible until ``commit()``."""
        try:
            file = self.fs.open(path, "wb", autocommit=False, block_size=BLOCK)
        except Exception as error:
            raise self._failed("cannot write", relative, error) from error
        try:
            for chunk in chunks:
                view = memoryview(chunk).cast("B")
                for start in range(0, view.nbytes, BLOCK):
                    file.write(view[start : start + BLOCK])
            file.close()
            file.commit()
        except BaseException as error:
            with contextlib.suppress(Exception):
                file.discard()
            if isinstance(error, Exception):
                raise self._failed("cannot write", relative, error) from error
            raise

    def read(self, relative: str, size: int, format_: str) -> Any:
        path = self._path(relative)
        try:
            if getattr(self.fs, "async_impl", False) and hasattr(self.fs, "open_async"):
                from fsspec.asyn import sync

                data = sync(self.fs.loop, _stream_into, self.fs, path, relative, size)
            else:
                data = self._read_ranges(path, relative, size)
        except FileNotFoundError as error:
            raise integrity_error(relative, "missing") from error
        except (StoreError, ConfigurationError):
            raise
        except Exception as error:
            raise self._failed("cannot read", relative, error) from error
        if len(data) != size:
            raise integrity_error(relative, f"truncated while being read ({len(data)} of {size})")
        return data

    def _read_ranges(self, path: str, relative: str, size: int) -> Any:
        """For file systems without async streams: ranged reads of :data:`BLOCK` bytes."""
        with self.fs.open(path, "rb", block_size=BLOCK, cache_type="none") as file:
            if file.size != size:
                raise integrity_error(relative, size_mismatch(file.size, size))
            return read_into_buffer(lambda view: _read_block(file, view), size)

    def touch(self, relative: str) -> None:
        """Object stores have no ``utime``; a reused object keeps its time (see README: gc)."""

    def remove(self, relative: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(self._path(relative))

    def listing(self) -> Iterator[str]:
        base = self._path("artifacts")
        try:
            found = self.fs.find(base)
        except FileNotFoundError:
            return
        start = len(self._path(""))
        for path in sorted(found):
            relative = path[start:].lstrip("/")
            if re.fullmatch(r"artifacts/[0-9a-f]{2}/[^/]+", relative):
                yield relative

    def files_under(self, folder: str) -> Iterator[str]:
        try:
            found = self.fs.find(self._path(folder))
        except FileNotFoundError:
            return
        start = len(self._path(""))
        for path in sorted(found):
            yield path[start:].lstrip("/")

    def remove_folder(self, folder: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm(self._path(folder), recursive=True)

    def stat(self, relative: str) -> tuple[float, int] | None:
        try:
            info = self.fs.info(self._path(relative))
        except FileNotFoundError:
            return None
        return _modified(info), int(info["size"])

    def check(self) -> None:
        """List the root (cheap: one request); a root not made yet is fine if its bucket is.

        Once it passed, a process does not ask again: a task called on its own is a run,
        and must not cost a request each time.
        """
        if self._checked:
            return
        self._check()
        self._checked = True

    def _check(self) -> None:
        fs = self.fs
        try:
            fs.ls(self._root, detail=False)
            return
        except FileNotFoundError as error:
            missing = error
        except Exception as error:
            raise self._unusable(error) from error
        bucket = "" if self._root.startswith("/") else self._root.split("/")[0]
        if not bucket:  # a file-system-like store (memory://): the root is made on write
            return
        try:
            fs.info(bucket)
        except FileNotFoundError:
            raise ConfigurationError(
                f"the artifact store {self.location} cannot be used: its bucket {bucket!r} "
                "does not exist",
                fix="create the bucket, or point $KERNELFLOW_STORE (or --store) at an existing "
                "one; nothing was written",
                url=self.location,
                reason="missing bucket",
            ) from missing
        except Exception as error:
            raise self._unusable(error) from error

    # -- errors --

    def _unusable(self, error: BaseException) -> ConfigurationError:
        """The one-paragraph error for a store that refuses us or cannot be reached."""
        if isinstance(error, PermissionError):
            reason, fix = "access denied (wrong or missing credentials?)", _CREDENTIALS_FIX
        else:
            reason = "it cannot be reached"
            fix = (
                "check the URL, the endpoint ($AWS_ENDPOINT_URL for a non-AWS S3 server) and "
                "the network; nothing was written"
            )
        detail = mask_url(str(error).strip().splitlines()[0] if str(error).strip() else "")
        return ConfigurationError(
            f"the artifact store {self.location} cannot be used: {reason} "
            f"({type(error).__name__}: {detail})",
            fix=fix,
            url=self.location,
            reason=reason,
        )

    def _failed(self, doing: str, relative: str, error: BaseException) -> StoreError:
        """An operation that failed during a run: the store worked when the run began."""
        if isinstance(error, PermissionError):
            return StoreError(
                f"{doing} {relative} in the artifact store {self.location}: access denied",
                fix=_CREDENTIALS_FIX,
                path=f"{self.location}/{relative}",
            )
        return StoreError(
            f"{doing} {relative} in the artifact store {self.location}: "
            f"{type(error).__name__}: {mask_url(str(error))}",
            fix="check that the store is reachable, then run again (finished tasks are cached)",
            path=f"{self.location}/{relative}",
        )


_CREDENTIALS_FIX = (
    "check the credentials for this store (for S3: AWS_ACCESS_KEY_ID and "
    "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE) and that they may read and write it; "
    "nothing was written"
)


def _open_fs(url: str, location: str) -> tuple[Any, str]:
    """The file system and root path of ``url``; an unknown scheme or missing driver says how."""
    try:
        import fsspec
    except ImportError as error:
        raise _missing_driver(location, error) from error
    try:
        # A fresh instance: fsspec caches instances by their arguments, and one made
        # before the environment changed (other credentials, endpoint) must not be reused.
        fs, root = fsspec.core.url_to_fs(url, skip_instance_cache=True)
    except ImportError as error:
        raise _missing_driver(location, error) from error
    except (ValueError, TypeError) as error:
        raise ConfigurationError(
            f"the artifact store {location} is not a URL fsspec can open ({error})",
            fix="use s3://bucket/prefix, file:///shared/directory, memory://name or a path",
            url=location,
            reason="bad URL",
        ) from error
    return fs, root.rstrip("/")


def _missing_driver(location: str, error: BaseException) -> ConfigurationError:
    return ConfigurationError(
        f"the artifact store {location} cannot be opened: a package it needs is not "
        f"installed ({error})",
        fix="pip install 'kernelflow[s3]' for s3:// (fsspec and s3fs), or the fsspec driver "
        "the message names for another scheme",
        url=location,
        reason="missing driver",
    )


class ChunksReader(io.RawIOBase):
    """The encoded chunks as one seekable file, read without joining them: the body of a
    PUT is sent (and checksummed) piece by piece, straight from the value's buffers."""

    def __init__(self, chunks: Sequence[Chunk]) -> None:
        super().__init__()
        self._views = [memoryview(chunk).cast("B") for chunk in chunks]
        self._starts = [0]
        for view in self._views:
            self._starts.append(self._starts[-1] + view.nbytes)
        self._position = 0

    def __len__(self) -> int:
        return self._starts[-1]

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: len(self)}[whence]
        self._position = max(0, base + offset)
        return self._position

    def readinto(self, buffer: Any) -> int:
        target = memoryview(buffer).cast("B")
        done = 0
        for view, start in zip(self._views, self._starts):
            end = start + view.nbytes
            if done == target.nbytes or self._position >= end or self._position < start:
                continue
            take = min(end - self._position, target.nbytes - done)
            offset = self._position - start
            target[done : done + take] = view[offset : offset + take]
            done += take
            self._position += take
        return done


async def _stream_into(fs: Any, path: str, relative: str, size: int) -> Any:
    """One GET (for S3), its body copied piece by piece into one preallocated buffer as it
    arrives: no joined copy of the whole body, and one request however large."""
    import numpy as np

    buffer = np.empty(size, dtype=np.uint8)
    view, got = memoryview(buffer), 0
    file = await fs.open_async(path, "rb")
    try:
        while got < size:
            data = await file.read(min(size - got, BLOCK))
            if got == 0 and file.size is not None and file.size != size:
                raise integrity_error(relative, size_mismatch(file.size, size))
            if not data:
                break
            view[got : got + len(data)] = data
            got += len(data)
    finally:
        await file.close()
    return buffer[:got]


def _read_block(file: Any, view: memoryview) -> int:
    """One ranged read of at most :data:`BLOCK` bytes into ``view``."""
    data = file.read(min(len(view), BLOCK))
    view[: len(data)] = data
    return len(data)


def _modified(info: dict[str, Any]) -> float:
    """A listing's modification time as a timestamp (S3: ``LastModified``; memory: ``created``)."""
    for name in ("LastModified", "mtime", "created", "last_modified"):
        value = info.get(name)
        if isinstance(value, datetime):
            return value.timestamp()
        if isinstance(value, (int, float)):
            return float(value)
    return 0.0
