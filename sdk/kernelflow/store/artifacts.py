"""Artifacts: the files that hold task outputs, written atomically and verified on read.

Every output of every run is persisted as it is produced: that is what makes
``resume`` and the cache possible. A DataFrame is written as Parquet when it
comes back identical (:func:`parquet_faithful`), a NumPy array without Python
objects as ``.npy`` (read back without unpickling), anything else is pickled
(a user type with a registered transformer, as its transformer writes it:
:mod:`kernelflow._core.custom_types`);
a pickle of at most :data:`INLINE_LIMIT` bytes is kept inline in its ref (and so
in the run store) rather than in a file, because creating a file costs more
than running a small task.

Files are content-addressed (``artifacts/<2 hex>/<checksum>.<ext>``): equal
outputs share one file, and a file is never rewritten in place. A write goes to
a unique temporary name in the target directory and is renamed into place, so
readers, and concurrent writers of the same value, never see half a file.

Nothing on disk is trusted. :meth:`ArtifactStore.get` re-computes the checksum
of the bytes it read, and for pickles checks an HMAC-SHA256 made with the
store's own key (``secret.key``) *before* unpickling, because unpickling runs
code. Any mismatch raises :class:`~kernelflow._core.errors.IntegrityError`; the engine
then recomputes the value. There is no ``fsync``: a file cut short by a crash is
caught by the same checks, and costs a recomputation, not a wrong result.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import hmac
import io
import json
import math
import mmap
import os
import pickle
import re
import secrets
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import xxhash

from kernelflow._core.errors import IntegrityError, KernelflowError, StoreError

__all__ = ["ArtifactRef", "ArtifactStore", "Format", "referenced_paths"]

Format = Literal["parquet", "npy", "pickle"]
Chunk = bytes | bytearray | memoryview

KEY_FILE = "secret.key"
INLINE_LIMIT = 4096  # bytes: pickles this small live in the run store, not in a file
KEY_SIZE = 32
_EXTENSIONS: dict[str, str] = {"parquet": "parquet", "npy": "npy", "pickle": "pkl"}
# Snappy: fast to write and read, and it still shrinks typical (not random) data.
PARQUET_COMPRESSION = "snappy"
_NPY_HEADER_MAX = 65536 + 12  # the largest header of .npy format 1.0, and then some
_PATH = re.compile(r"artifacts/([0-9a-f]{2})/(\1[0-9a-f]{30})\.(parquet|npy|pkl)")
# The stored copies of files and directories (kernelflow.store.files), by checksum folder.
_COPY = re.compile(r"artifacts/(?:files|dirs)/[0-9a-f]{32}")
_COPY_BYTES = re.compile(_COPY.pattern.encode())


@dataclass(frozen=True)
class ArtifactRef:
    """Where an artifact is and how to check it; kept as JSON in the run store.

    ``path`` is relative to the store root (so the store can move); ``size`` and
    ``checksum`` (xxh3-128 of the file, also its name) catch damaged files;
    ``signature`` (HMAC-SHA256 with the store key) is set for pickles only,
    because only unpickling can run code. Small pickles are kept ``inline``
    (base64, in the run store's record) instead of in a file of their own:
    creating a file costs more than a small task does. ``copies`` names the
    stored file and directory copies the value refers to (a ``FlyteFile``
    output), in plain text, so that gc sees them whether the pickle is inline
    or in a file.
    """

    path: str
    format: str
    size: int
    checksum: str
    signature: str | None = None
    inline: str | None = None
    copies: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict (the run store keeps refs as JSON)."""
        # Spelled out: dataclasses.asdict deep-copies, and this runs for every output.
        data: dict[str, object] = {
            "path": self.path,
            "format": self.format,
            "size": self.size,
            "checksum": self.checksum,
            "signature": self.signature,
            "inline": self.inline,
        }
        if self.copies:  # most values hold no file: their records stay as they were
            data["copies"] = list(self.copies)
        return data

    @classmethod
    def from_dict(cls, data: Any) -> ArtifactRef:
        """The ref a :meth:`to_dict` produced; a malformed record is an IntegrityError."""
        try:
            signature = data.get("signature")
            inline = data.get("inline")
            copies = data.get("copies")  # absent for all but values holding stored files
            return cls(
                path=str(data["path"]),
                format=str(data["format"]),
                size=int(data["size"]),
                checksum=str(data["checksum"]),
                signature=None if signature is None else str(signature),
                inline=None if inline is None else str(inline),
                copies=tuple(map(str, copies)) if copies else (),
            )
        except (AttributeError, KeyError, TypeError, ValueError) as error:
            reason = f"described by a malformed record ({error})"
            raise _integrity_error(str(data), reason) from error


def referenced_paths(text: str) -> set[str]:
    """The artifact files a record (refs as JSON, of any shape) names, and the stored
    copies (``artifacts/files/<checksum>``) its refs list; inline refs name no file."""
    found = {match.group(0) for match in _PATH.finditer(text)}
    if "artifacts/files/" in text or "artifacts/dirs/" in text:
        found |= {match.group(0) for match in _COPY.finditer(text)}
    return found


def _copies_in(chunks: Sequence[Chunk]) -> tuple[str, ...]:
    """The stored copies a pickle's bytes name (the paths of the FlyteFiles in it)."""
    found: set[str] = set()
    for chunk in chunks:
        data = chunk if isinstance(chunk, bytes) else bytes(chunk)
        found |= {match.group(0).decode() for match in _COPY_BYTES.finditer(data)}
    return tuple(sorted(found))


def _integrity_error(path: str, reason: str) -> IntegrityError:
    return IntegrityError(
        f"artifact {path} is {reason}; it is not loaded, and the value will be recomputed",
        fix="nothing to do: kernelflow recomputes the value. If this keeps happening, check "
        "the disk holding the store, and what else writes to it",
        path=path,
        reason=reason,
    )


class ArtifactStore:
    """Content-addressed files under ``<root>/artifacts``; the store key is ``<root>/secret.key``.

    ``root`` is the store directory (``$KERNELFLOW_HOME``), created on the first
    write with mode 0700, because it holds the key that makes pickles trusted.
    """

    def __init__(self, root: str | os.PathLike[str], *, inline_limit: int = INLINE_LIMIT) -> None:
        self.root = Path(root).absolute()
        self.inline_limit = inline_limit
        self._key: bytes | None = None
        self._mac: hmac.HMAC | None = None
        self._root_ready = False

    def __repr__(self) -> str:
        return f"ArtifactStore({str(self.root)!r})"

    # -- the four operations --

    def put(self, value: object) -> ArtifactRef:
        """Persist ``value`` and return its ref; equal values share one file.

        Raises
        ------
        StoreError
            When the file cannot be written (disk full, permissions).
        """
        format_, chunks = _encode(value)
        hasher = xxhash.xxh3_128()
        size = 0
        for chunk in chunks:
            hasher.update(chunk)
            size += memoryview(chunk).nbytes
        checksum = hasher.hexdigest()
        signature = self._sign(chunks) if format_ == "pickle" else None
        # A pickle (always one bytes chunk) naming a stored file copy: list it for gc.
        copies = _copies_in(chunks) if format_ == "pickle" and b"artifacts/" in chunks[0] else ()
        if format_ == "pickle" and size <= self.inline_limit:
            data = b"".join(bytes(chunk) for chunk in chunks)
            inline = base64.b64encode(data).decode("ascii")
            return ArtifactRef(
                f"inline:{checksum}", format_, size, checksum, signature, inline, copies
            )
        relative = f"artifacts/{checksum[:2]}/{checksum}.{_EXTENSIONS[format_]}"
        final = self.root / relative
        if not _has_size(final, size):
            self._ensure_root()
            _write_atomic(final, chunks)
        else:  # an intact copy is already there: share it, marked as just used, so that
            with contextlib.suppress(OSError):  # a gc running meanwhile keeps it
                os.utime(final)
        return ArtifactRef(relative, format_, size, checksum, signature, copies=copies)

    def get(self, ref: ArtifactRef) -> object:
        """The value ``ref`` points to, after checking size, checksum and signature.

        Raises
        ------
        IntegrityError
            The file is missing, truncated, altered, signed with another key, or
            cannot be decoded. Nothing unverified is ever unpickled. A file whose
            bytes are damaged is removed, so that the next ``put`` writes it afresh.
        """
        if ref.inline is not None:
            return self._get_inline(ref)
        path = self._path_of(ref)
        data = _read_exact(path, ref)
        if xxhash.xxh3_128_hexdigest(data) != ref.checksum:
            with contextlib.suppress(OSError):
                path.unlink()
            raise _integrity_error(ref.path, "corrupted (its checksum does not match)")
        if ref.format == "pickle":
            self._verify(ref, data)
        return _decode(ref, data)

    def exists(self, ref: ArtifactRef) -> bool:
        """Whether the file is there with the right size (its bytes are checked by ``get``)."""
        if ref.inline is not None:
            return True
        try:
            return _has_size(self._path_of(ref), ref.size)
        except IntegrityError:
            return False

    def delete(self, ref: ArtifactRef) -> None:
        """Remove the file (if present). Refs to equal values share it and lose it too."""
        if ref.inline is not None:
            return
        with contextlib.suppress(FileNotFoundError):
            self._path_of(ref).unlink()

    def files(self) -> Iterator[tuple[str, bool]]:
        """Each file under ``artifacts/``: its path relative to the root, and whether it
        is an artifact (the others are temporary files that writers left)."""
        for directory in sorted((self.root / "artifacts").glob("[0-9a-f][0-9a-f]")):
            for path in sorted(directory.iterdir()):
                relative = f"artifacts/{directory.name}/{path.name}"
                if path.is_file():
                    yield relative, _PATH.fullmatch(relative) is not None

    def copies(self) -> Iterator[str]:
        """Each stored copy's folder (``artifacts/files/<checksum>``), relative to the root."""
        for kind in ("files", "dirs"):
            for folder in sorted((self.root / "artifacts" / kind).glob("*")):
                relative = f"artifacts/{kind}/{folder.name}"
                if folder.is_dir() and _COPY.fullmatch(relative):
                    yield relative

    # -- internals --

    def _get_inline(self, ref: ArtifactRef) -> object:
        try:
            data = base64.b64decode(ref.inline or "", validate=True)
        except ValueError as error:
            raise _integrity_error(ref.path, "inline data that is not base64") from error
        if len(data) != ref.size or xxhash.xxh3_128_hexdigest(data) != ref.checksum:
            raise _integrity_error(ref.path, "corrupted (its checksum does not match)")
        self._verify(ref, data)
        return _decode(ref, data)

    def _path_of(self, ref: ArtifactRef) -> Path:
        """The file of ``ref``, refusing paths that are not this store's own layout."""
        match = _PATH.fullmatch(ref.path)
        if (
            match is None
            or match.group(2) != ref.checksum
            or _EXTENSIONS.get(ref.format) != match.group(3)
        ):
            raise _integrity_error(ref.path, "not an artifact path of this store")
        return self.root / ref.path

    def _ensure_root(self) -> None:
        if not self._root_ready:
            try:
                self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
            except OSError as error:
                raise _store_error(self.root, error) from error
            self._root_ready = True

    def _signing_key(self) -> bytes:
        """The key to sign with: made on the first write of a pickle to this store."""
        if self._key is None:
            self._ensure_root()
            self._key = load_or_create_key(self.root / KEY_FILE)
        return self._key

    def _verifying_key(self) -> bytes | None:
        """The key to verify with, or None: reading never creates a key (nor the store).

        A store without a key has signed nothing, so every pickle offered to it
        is foreign; making a key here would let a directory that came from
        elsewhere (a notebook's "store") look like a store of ours.
        """
        if self._key is None:
            path = self.root / KEY_FILE
            if not path.exists():
                return None
            self._key = _read_key(path)
        return self._key

    def _sign(self, chunks: Sequence[Chunk]) -> str:
        # A copy of a MAC keyed once: keying costs more than a small pickle's digest.
        if self._mac is None:
            self._mac = hmac.new(self._signing_key(), digestmod=hashlib.sha256)
        mac = self._mac.copy()
        for chunk in chunks:
            mac.update(chunk)
        return mac.hexdigest()

    def _verify(self, ref: ArtifactRef, data: Chunk) -> None:
        if not ref.signature:
            raise _integrity_error(ref.path, "an unsigned pickle")
        key = self._verifying_key()
        if key is None:
            raise _integrity_error(ref.path, "a pickle signed by a key this store does not have")
        expected = hmac.digest(key, data, "sha256").hex()
        if not hmac.compare_digest(expected, ref.signature):
            raise _integrity_error(ref.path, "a pickle whose signature does not match this store")


def _store_error(path: Path, error: OSError) -> StoreError:
    return StoreError(
        f"cannot write to the kernelflow store at {path}: {error}",
        fix="check free space and permissions there, or point $KERNELFLOW_HOME elsewhere",
        path=str(path),
    )


# --- the store key --------------------------------------------------------------------


def load_or_create_key(path: Path) -> bytes:
    """The store's HMAC key, created once (mode 0600) by whichever process gets there first.

    The key is written in full to a temporary file, then linked into place:
    ``link`` fails if the key exists, so creation is a race with one winner, and
    nobody ever sees a half-written key, even when the disk fills up meanwhile
    (the temporary file is removed and the error names the key).
    """
    if path.exists():
        return _read_key(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    key = secrets.token_bytes(KEY_SIZE)
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as file:
            file.write(key)
        os.link(temporary, path)
    except FileExistsError:
        return _read_key(path)  # another process made it first: use theirs
    except OSError as error:
        if error.errno not in _NO_HARD_LINKS:
            raise _store_error(path, error) from error
        return _create_key_in_place(path, key)
    finally:
        with contextlib.suppress(OSError):
            temporary.unlink()
    return key


_NO_HARD_LINKS = (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV)


def _create_key_in_place(path: Path, key: bytes) -> bytes:
    """For file systems without hard links: create the key file exclusively, then fill it."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_key(path)
    except OSError as error:
        raise _store_error(path, error) from error
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(key)
    except OSError as error:
        path.unlink(missing_ok=True)
        raise _store_error(path, error) from error
    return key


def _read_key(path: Path, wait: float = 2.0) -> bytes:
    deadline = time.monotonic() + wait
    while True:
        try:
            key = path.read_bytes()
        except OSError as error:  # a directory in its place, no permission, ...
            raise StoreError(
                f"cannot read the store key {path}: {error.strerror or error}",
                fix="make it a readable file, or delete it: a new key is made, and "
                "pickled artifacts signed with the old one are recomputed",
                path=str(path),
            ) from error
        if len(key) == KEY_SIZE:
            return key
        if time.monotonic() > deadline:
            raise StoreError(
                f"the store key {path} is damaged ({len(key)} bytes, expected {KEY_SIZE})",
                fix="delete that file: a new key is made, and pickled artifacts signed with "
                "the old one are recomputed",
                path=str(path),
            )
        time.sleep(0.001)


# --- files ------------------------------------------------------------------------------


def _has_size(path: Path, size: int) -> bool:
    try:
        return path.stat().st_size == size
    except OSError:
        return False


def _write_atomic(final: Path, chunks: Sequence[Chunk]) -> None:
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
            raise _store_error(final, error) from error
        raise


def _read_exact(path: Path, ref: ArtifactRef) -> Any:
    """The whole file, in as few reads as the OS allows, checked against ``ref.size``."""
    try:
        with open(path, "rb", buffering=0) as file:
            size = os.fstat(file.fileno()).st_size
            if size != ref.size:
                state = "truncated" if size < ref.size else "longer than written"
                raise _integrity_error(ref.path, f"{state} ({size} bytes, expected {ref.size})")
            data = _READERS.get(ref.format, _read_all)(file, size)
    except FileNotFoundError as error:
        raise _integrity_error(ref.path, "missing") from error
    except OSError as error:
        raise _integrity_error(ref.path, f"unreadable ({error})") from error
    if len(data) != size:
        raise _integrity_error(ref.path, f"truncated while being read ({len(data)} of {size})")
    return data


def _decode(ref: ArtifactRef, data: Any) -> object:
    """The value of verified bytes; a decoder that fails means a damaged artifact."""
    try:
        return _DECODERS[ref.format](data)
    except KernelflowError as error:  # a user type's transformer could not read it back
        raise _integrity_error(ref.path, f"unreadable: {error.message}") from error
    except Exception as error:
        reason = f"unreadable ({type(error).__name__}: {error})"
        raise _integrity_error(ref.path, reason) from error


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


def _read_npy_buffer(file: Any, size: int) -> Any:
    """Read into a NumPy buffer, on which the array is then built (writable, no copy)."""
    import numpy as np

    buffer = np.empty(size, dtype=np.uint8)
    view, got = memoryview(buffer), 0
    while got < size:
        count = file.readinto(view[got:])
        if not count:
            return buffer[:got]
        got += count
    return buffer


_READERS: dict[str, Callable[[Any, int], Any]] = {"npy": _read_npy_buffer, "parquet": _map_file}

# --- formats ----------------------------------------------------------------------------


def _encode(value: object) -> tuple[str, list[Chunk]]:
    """The format for ``value`` and its serialized bytes, as chunks (no needless copies)."""
    if "pandas" in sys.modules and parquet_faithful(value):
        chunk = _encode_parquet(value)
        if chunk is not None:
            return "parquet", [chunk]
    if "numpy" in sys.modules:
        import numpy as np

        if type(value) is np.ndarray and not value.dtype.hasobject:
            return "npy", _encode_npy(value)
    try:
        return "pickle", [pickle.dumps(value, protocol=5)]
    except KernelflowError:  # a user type's transformer failed: it says which (custom_types)
        raise
    except Exception as error:
        kind = type(value).__qualname__
        raise StoreError(
            f"a value of type {kind} cannot be saved: it cannot be pickled ({error})",
            fix="return a picklable value (classes and functions defined at module level)",
            type_name=kind,
        ) from error


def _encode_npy(array: Any) -> list[Chunk]:
    """The ``.npy`` header and the array's own buffer (a copy only if it is not contiguous)."""
    import numpy as np

    if not (array.flags.c_contiguous or array.flags.f_contiguous):
        array = np.ascontiguousarray(array)
    header = io.BytesIO()
    try:
        fields = np.lib.format.header_data_from_array_1_0(array)
        try:
            np.lib.format.write_array_header_1_0(header, fields)
        except ValueError:  # a header too long for format 1.0
            header = io.BytesIO()
            np.lib.format.write_array_header_2_0(header, fields)
        body = array.T if fields["fortran_order"] else array
        return [header.getvalue(), memoryview(body.reshape(-1).view(np.uint8))]
    except (ValueError, TypeError):  # exotic dtypes (zero-size items, unicode field names)
        whole = io.BytesIO()
        np.save(whole, array, allow_pickle=False)
        return [whole.getbuffer()]


def _decode_npy(data: Any) -> Any:
    """The array, as a view of the buffer read (see :func:`_read_npy_buffer`); never unpickles."""
    import numpy as np

    fmt = np.lib.format
    readers = {(1, 0): fmt.read_array_header_1_0, (2, 0): fmt.read_array_header_2_0}
    stream = io.BytesIO(bytes(data[:_NPY_HEADER_MAX]))
    try:
        shape, fortran_order, dtype = readers[fmt.read_magic(stream)](stream)
    except (KeyError, ValueError):  # format 3.0, or a huge header: let NumPy copy it
        return np.load(io.BytesIO(bytes(data)), allow_pickle=False)
    if dtype.hasobject:
        raise ValueError("an .npy artifact holds Python objects; it is never unpickled")
    count = math.prod(shape)
    array = np.frombuffer(data, dtype=dtype, count=count, offset=stream.tell())
    return array.reshape(shape, order="F" if fortran_order else "C")


# --- Parquet: only for frames that come back identical ----------------------------------

# Parquet stores no index frequency; we keep it in the file's schema metadata.
_FREQ_KEY = b"kernelflow.index_freq"
_MASKED_DTYPES = frozenset(
    ["boolean", "Float32", "Float64"] + [f"{s}Int{n}" for s in ("", "U") for n in (8, 16, 32, 64)]
)


def parquet_faithful(value: object) -> bool:
    """Whether ``value`` is a DataFrame that Parquet gives back equal, dtypes and all.

    Measured with pyarrow 26 and ``pd.testing.assert_frame_equal``: columns of
    object dtype come back as ``str`` or ``int64``, ``datetime64[s]`` as ``[ms]``,
    non-string categories as plain values, python-backed strings as
    pyarrow-backed ones, Arrow list types not at all; such frames are pickled.
    """
    import pandas as pd

    if type(value) is not pd.DataFrame or not value.flags.allows_duplicate_labels:
        return False
    columns, index = value.columns, value.index
    labels_ok = (
        not isinstance(columns, pd.MultiIndex)
        and columns.is_unique
        and len(columns) > 0  # no columns: a RangeIndex that comes back as Index([])
        and columns.dtype != object
        and all(isinstance(name, str) for name in columns)
        and all(name is None or isinstance(name, str) for name in [columns.name, *index.names])
    )
    if not (labels_ok and _attrs_survive_json(value.attrs) and _freq_survives(index)):
        return False
    index_dtypes = list(index.dtypes) if isinstance(index, pd.MultiIndex) else [index.dtype]
    return all(_dtype_faithful(d, in_index=True) for d in index_dtypes) and all(
        _dtype_faithful(d, in_index=False) for d in value.dtypes
    )


def _dtype_faithful(dtype: Any, *, in_index: bool) -> bool:
    import numpy as np
    import pandas as pd

    if isinstance(dtype, np.dtype):
        if dtype.kind in "biufm":
            return True
        return dtype.kind == "M" and np.datetime_data(dtype)[0] != "s"
    if isinstance(dtype, pd.DatetimeTZDtype):
        return dtype.unit != "s"
    if isinstance(dtype, pd.StringDtype):
        return dtype.storage == "pyarrow"
    if isinstance(dtype, pd.CategoricalDtype):
        categories = dtype.categories.dtype
        return isinstance(categories, pd.StringDtype) and categories.storage == "pyarrow"
    if isinstance(dtype, pd.IntervalDtype):
        return _dtype_faithful(dtype.subtype, in_index=in_index)
    if isinstance(dtype, pd.PeriodDtype):
        return True
    # Nullable (masked) dtypes survive as columns, not as an index (Int64 comes back float).
    return not in_index and str(dtype) in _MASKED_DTYPES


def _attrs_survive_json(attrs: dict[str, Any]) -> bool:
    """pyarrow keeps ``df.attrs`` as JSON: tuples would come back as lists."""
    if not attrs:
        return True
    try:
        return bool(json.loads(json.dumps(attrs)) == attrs)
    except (TypeError, ValueError):
        return False


def _freq_survives(index: Any) -> bool:
    import pandas as pd

    freq = getattr(index, "freq", None)
    if freq is None or isinstance(index, pd.PeriodIndex):
        return True
    return bool(pd.tseries.frequencies.to_offset(freq.freqstr) == freq)


def _encode_parquet(frame: Any) -> Chunk | None:
    """The Parquet bytes of ``frame`` (None if pyarrow refuses it: it is pickled instead)."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    try:
        table = pa.Table.from_pandas(frame, preserve_index=None)
        freq = getattr(frame.index, "freq", None)
        if freq is not None and not isinstance(frame.index, pd.PeriodIndex):
            metadata = {**(table.schema.metadata or {}), _FREQ_KEY: freq.freqstr.encode()}
            table = table.replace_schema_metadata(metadata)
        # Dictionary encoding is what makes strings and codes small, but it
        # triples the write time of floats, which rarely repeat.
        dictionary = [f.name for f in table.schema if not pa.types.is_floating(f.type)]
        pq.write_table(table, sink, compression=PARQUET_COMPRESSION, use_dictionary=dictionary)
    except (pa.ArrowException, TypeError, ValueError):
        return None
    return memoryview(sink.getvalue())


def _decode_parquet(data: bytes) -> Any:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    # ParquetFile.read gives one chunk per column (read_table's dataset path cuts
    # them into batches), which to_pandas then copies once into its block.
    table = pq.ParquetFile(pa.py_buffer(data)).read(use_pandas_metadata=True)
    frame = table.to_pandas()
    freq = (table.schema.metadata or {}).get(_FREQ_KEY)
    if freq is not None:
        kind = pd.DatetimeIndex if isinstance(frame.index, pd.DatetimeIndex) else pd.TimedeltaIndex
        frame.index = kind(frame.index, freq=freq.decode())
    return frame


_DECODERS: dict[str, Callable[[Any], object]] = {
    "parquet": _decode_parquet,
    "npy": _decode_npy,
    "pickle": pickle.loads,
}
