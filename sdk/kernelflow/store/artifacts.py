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
outputs share one file, and a file is never rewritten in place. Where the bytes
go is a :class:`~kernelflow.store.blobs.Blobs`: the home's disk (a write goes to
a unique temporary name and is renamed into place) or any fsspec URL
(:mod:`kernelflow.store.object_store`); either way readers, and concurrent
writers of the same value, never see half a file.

Nothing on disk is trusted. :meth:`ArtifactStore.get` re-computes the checksum
of the bytes it read, and for pickles checks an HMAC-SHA256 made with the
store's key (:mod:`kernelflow.store.keys`) *before* unpickling, because unpickling runs
code. Any mismatch raises :class:`~kernelflow._core.errors.IntegrityError`; the engine
then recomputes the value. There is no ``fsync``: a file cut short by a crash is
caught by the same checks, and costs a recomputation, not a wrong result.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import math
import os
import pickle
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import xxhash

from kernelflow._core.errors import IntegrityError, KernelflowError, StoreError
from kernelflow.store.blobs import Blobs, Chunk, LocalBlobs, integrity_error
from kernelflow.store.keys import KEY_FILE, key_from_env, load_or_create_key, read_key

__all__ = ["ArtifactRef", "ArtifactStore", "Format", "referenced_paths"]

Format = Literal["parquet", "npy", "pickle"]
INLINE_LIMIT = 4096  # bytes: pickles this small live in the run store, not in a file
_EXTENSIONS: dict[str, str] = {"parquet": "parquet", "npy": "npy", "pickle": "pkl"}
# Snappy: fast to write and read, and it still shrinks typical (not random) data.
PARQUET_COMPRESSION = "snappy"
_NPY_HEADER_MAX = 65536 + 12  # the largest header of .npy format 1.0, and then some
_PATH = re.compile(r"artifacts/([0-9a-f]{2})/(\1[0-9a-f]{30})\.(parquet|npy|pkl)")
# The stored copies of files and directories (kernelflow.store.files), by checksum folder.
_COPY = re.compile(r"artifacts/(?:files|dirs)/[0-9a-f]{32}")
_COPY_BYTES = re.compile(_COPY.pattern.encode())
_PATH_BYTES = re.compile(_PATH.pattern.encode())


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
            raise integrity_error(str(data), reason) from error


def referenced_paths(text: str) -> set[str]:
    """The artifact files a record (refs as JSON, of any shape) names, and the stored
    copies (``artifacts/files/<checksum>``) its refs list; inline refs name no file."""
    found = {match.group(0) for match in _PATH.finditer(text)}
    if "artifacts/files/" in text or "artifacts/dirs/" in text:
        found |= {match.group(0) for match in _COPY.finditer(text)}
    return found


def _copies_in(chunks: Sequence[Chunk]) -> tuple[str, ...]:
    """The stored copies a pickle's bytes name (the paths of the FlyteFiles in it), and
    the artifacts it refers to (a map's output as a list of references to its items'):
    listed in its ref, gc keeps them while the record that holds the ref is kept."""
    found: set[str] = set()
    for chunk in chunks:
        data = chunk if isinstance(chunk, bytes) else bytes(chunk)
        found |= {match.group(0).decode() for match in _COPY_BYTES.finditer(data)}
        found |= {match.group(0).decode() for match in _PATH_BYTES.finditer(data)}
    return tuple(sorted(found))


class ArtifactStore:
    """Content-addressed artifacts under ``artifacts/`` of a :class:`Blobs` root.

    ``root`` is the local store directory (``$KERNELFLOW_HOME``): it holds the
    key (``secret.key``, see :mod:`kernelflow.store.keys`) and the files tasks
    return, and, unless ``blobs`` says otherwise, the artifacts too. ``blobs``
    puts the artifacts elsewhere (an object store, a shared mount) with the same
    layout, so a ref means the same thing in any store.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        inline_limit: int = INLINE_LIMIT,
        blobs: Blobs | None = None,
    ) -> None:
        self.root = Path(root).absolute()
        self.inline_limit = inline_limit
        self.blobs = blobs if blobs is not None else LocalBlobs(self.root)
        self._key: bytes | None = None
        self._mac: hmac.HMAC | None = None

    def __repr__(self) -> str:
        return f"ArtifactStore({self.blobs.location!r})"

    @property
    def location(self) -> str:
        """Where the artifacts are (a directory, or a URL with its secrets masked)."""
        return self.blobs.location

    # -- the four operations --

    def put(self, value: object) -> ArtifactRef:
        """Persist ``value`` and return its ref; equal values share one file.

        Raises
        ------
        StoreError
            When the file cannot be written (disk full, permissions, store unreachable).
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
        if self.blobs.size(relative) != size:
            self.blobs.write(relative, chunks)
        else:  # an intact copy is already there: share it, marked as just used, so
            self.blobs.touch(relative)  # that a gc running meanwhile keeps it
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
        relative = self._path_of(ref)
        data = self.blobs.read(relative, ref.size, ref.format)
        if xxhash.xxh3_128_hexdigest(data) != ref.checksum:
            self.blobs.remove(relative)
            raise integrity_error(ref.path, "corrupted (its checksum does not match)")
        if ref.format == "pickle":
            self._verify(ref, data)
        return _decode(ref, data)

    def exists(self, ref: ArtifactRef) -> bool:
        """Whether the file is there with the right size (its bytes are checked by ``get``)."""
        if ref.inline is not None:
            return True
        try:
            return self.blobs.size(self._path_of(ref)) == ref.size
        except IntegrityError:
            return False

    def delete(self, ref: ArtifactRef) -> None:
        """Remove the file (if present). Refs to equal values share it and lose it too."""
        if ref.inline is not None:
            return
        self.blobs.remove(self._path_of(ref))

    def files(self) -> Iterator[tuple[str, bool]]:
        """Each file under ``artifacts/``: its path relative to the root, and whether it
        is an artifact (the others are temporary files that writers left)."""
        for relative in self.blobs.listing():
            yield relative, _PATH.fullmatch(relative) is not None

    def check(self) -> None:
        """Raise a ConfigurationError now if the store cannot be used (before a run starts)."""
        self.blobs.check()

    def copies(self) -> Iterator[str]:
        """Each stored copy's folder (``artifacts/files/<checksum>``), relative to the root."""
        for kind in ("files", "dirs"):
            for folder in sorted((self.root / "artifacts" / kind).glob("*")):
                relative = f"artifacts/{kind}/{folder.name}"
                if folder.is_dir() and _COPY.fullmatch(relative):
                    yield relative

    def key_id(self, *, create: bool = False) -> str | None:
        """A fingerprint of the store's key (not the key, which never leaves the process):
        two processes with the same fingerprint sign and verify alike. None when there is
        no key, unless ``create`` makes one (as the first write would)."""
        key = self._signing_key() if create else self._verifying_key()
        if key is None:
            return None
        return hmac.new(key, b"kernelflow key id", hashlib.sha256).hexdigest()[:16]

    # -- internals --

    def _get_inline(self, ref: ArtifactRef) -> object:
        try:
            data = base64.b64decode(ref.inline or "", validate=True)
        except ValueError as error:
            raise integrity_error(ref.path, "inline data that is not base64") from error
        if len(data) != ref.size or xxhash.xxh3_128_hexdigest(data) != ref.checksum:
            raise integrity_error(ref.path, "corrupted (its checksum does not match)")
        self._verify(ref, data)
        return _decode(ref, data)

    def _path_of(self, ref: ArtifactRef) -> str:
        """The relative path of ``ref``, refusing paths that are not this store's own layout."""
        match = _PATH.fullmatch(ref.path)
        if (
            match is None
            or match.group(2) != ref.checksum
            or _EXTENSIONS.get(ref.format) != match.group(3)
        ):
            raise integrity_error(ref.path, "not an artifact path of this store")
        return ref.path

    def _signing_key(self) -> bytes:
        """The key to sign with: ``$KERNELFLOW_STORE_KEY``, else made on the first write."""
        if self._key is None:
            key = key_from_env()
            if key is None:
                home = LocalBlobs(self.root)
                home.ensure_root()
                key = load_or_create_key(self.root / KEY_FILE)
            self._key = key
        return self._key

    def _verifying_key(self) -> bytes | None:
        """The key to verify with, or None: reading never creates a key (nor the store).

        A store without a key has signed nothing, so every pickle offered to it
        is foreign; making a key here would let a directory that came from
        elsewhere (a notebook's "store") look like a store of ours.
        """
        if self._key is None:
            key = key_from_env()
            path = self.root / KEY_FILE
            if key is None and not path.exists():
                return None
            self._key = key if key is not None else read_key(path)
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
            raise integrity_error(ref.path, "an unsigned pickle")
        key = self._verifying_key()
        if key is None:
            raise integrity_error(ref.path, "a pickle signed by a key this store does not have")
        expected = hmac.digest(key, data, "sha256").hex()
        if not hmac.compare_digest(expected, ref.signature):
            raise integrity_error(ref.path, "a pickle whose signature does not match this store")


# --- formats ----------------------------------------------------------------------------


def _decode(ref: ArtifactRef, data: Any) -> object:
    """The value of verified bytes; a decoder that fails means a damaged artifact."""
    try:
        return _DECODERS[ref.format](data)
    except KernelflowError as error:  # a user type's transformer could not read it back
        raise integrity_error(ref.path, f"unreadable: {error.message}") from error
    except Exception as error:
        reason = f"unreadable ({type(error).__name__}: {error})"
        raise integrity_error(ref.path, reason) from error


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
