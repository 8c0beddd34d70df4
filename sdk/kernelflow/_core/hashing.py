"""Content hashes of values: the input half of every cache key.

A cache key must change whenever a task's inputs change, and must not change
when they do not. So the hash is of the *content* of a value, tagged with its
type (``1``, ``1.0``, ``True``, ``"1"`` and ``b"1"`` all differ), and it is fast
for the values that are big: NumPy arrays and pandas objects are hashed from
their raw buffers, never pickled (pickling a large frame is slow, joblib#343,
and not even deterministic for equal frames, joblib#1611).

Every value is fed into one streaming xxh3-128 hasher as a prefix-free byte
sequence: a leaf is ``tag, length, payload`` and a container is ``tag, count``
followed by its items, so two different values can never produce the same
stream. Unordered containers (dict, set) are hashed from the *sorted* digests of
their entries, so insertion order does not matter.

Anything without a dedicated encoding is hashed by its pickled bytes (protocol
5, out-of-band buffers hashed in place). That fallback is deterministic for the
same object but may differ for equal objects built differently (a dict filled
in another order inside an object, joblib#1611): the cost is a cache miss,
never a wrong hit. A value that cannot be pickled has no hash:
:class:`~kernelflow._core.errors.UnhashableValueError`, and the task that uses it is
not cached. A value of a type registered with a transformer
(:mod:`kernelflow._core.custom_types`) is hashed by the bytes its transformer
writes, wherever it is (its pickle, inside another value, uses them too).

numpy and pandas are never imported here: a value can only be an array or a
frame if its library is already in ``sys.modules``.
"""

from __future__ import annotations

import dataclasses
import pickle
import struct
import sys
from collections.abc import Callable
from typing import Any

import xxhash

from kernelflow._core import custom_types
from kernelflow._core.errors import UnhashableValueError

__all__ = ["combine", "content_hash", "field_names", "hash_bytes"]

_LEN = struct.Struct("<Q")
_FLOAT = struct.Struct("<d")
_COMPLEX = struct.Struct("<dd")


def hash_bytes(data: bytes | bytearray | memoryview) -> str:
    """The xxh3-128 hex digest (32 chars) of raw bytes: file checksums, source hashes."""
    return xxhash.xxh3_128_hexdigest(data)


def combine(*parts: str) -> str:
    """One hash of an ordered sequence of strings (usually hashes), for Merkle-style keys.

    Each part is length-prefixed, so ``combine("ab", "c")`` and ``combine("a", "bc")``
    differ; order matters, because callers sort whatever must not depend on order.
    """
    hasher = xxhash.xxh3_128()
    for part in parts:
        if not isinstance(part, str):
            raise TypeError(f"combine() takes strings, got {type(part).__name__}: {part!r}")
        data = part.encode("utf-8", "surrogatepass")
        hasher.update(_LEN.pack(len(data)))
        hasher.update(data)
    return hasher.hexdigest()


def content_hash(value: object) -> str:
    """The content hash (32 hex chars, xxh3-128) of ``value``, type-tagged.

    Raises
    ------
    UnhashableValueError
        When the value (or something inside it) cannot be hashed, typically
        because it cannot be pickled. ``type_name`` names the offending type.
    """
    encode = _LEAVES.get(type(value))
    if encode is not None:  # the common small case: one call, no hasher object
        tag, payload = encode(value)
        return xxhash.xxh3_128_hexdigest(tag + _LEN.pack(len(payload)) + payload)
    walker = _Walker()
    try:
        walker.feed(value)
    except RecursionError as error:
        raise _unhashable(value, "it is nested too deeply") from error
    return walker.hasher.hexdigest()


def field_names(value: Any) -> list[str] | None:
    """The fields of a dataclass or a pydantic model instance (None for anything else)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [field.name for field in dataclasses.fields(value)]
    fields = getattr(type(value), "model_fields", None)  # pydantic v2, without importing it
    if isinstance(fields, dict) and hasattr(value, "model_copy"):
        return list(fields)
    return None


def hash_or_none(value: object) -> str | None:
    """The content hash of ``value``, or None when it has none (it cannot be cached)."""
    try:
        return content_hash(value)
    except Exception:
        return None


# --- leaves: exact builtin types, encoded as (tag, payload) -----------------------


def _int_bytes(value: int) -> bytes:
    return value.to_bytes(value.bit_length() // 8 + 1, "little", signed=True)


_LEAVES: dict[type, Callable[[Any], tuple[bytes, bytes]]] = {
    type(None): lambda v: (b"N", b""),
    bool: lambda v: (b"?", b"\x01" if v else b"\x00"),
    int: lambda v: (b"i", _int_bytes(v)),
    float: lambda v: (b"f", _FLOAT.pack(v)),
    complex: lambda v: (b"c", _COMPLEX.pack(v.real, v.imag)),
    str: lambda v: (b"s", v.encode("utf-8", "surrogatepass")),
    bytes: lambda v: (b"b", v),
    bytearray: lambda v: (b"y", bytes(v)),
}


def _type_name(value: object) -> str:
    cls = type(value)
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


def _unhashable(value: object, why: str) -> UnhashableValueError:
    name = _type_name(value)
    return UnhashableValueError(
        f"a value of type {name} has no content hash: {why}",
        fix="make the value picklable (define its class or function at module level, "
        "not inside a function or a lambda), or turn the cache off for the task using it",
        type_name=name,
    )


class _Walker:
    """Feeds one value, recursively, into a streaming hasher.

    ``path`` holds the containers being walked (id -> depth) so that a
    self-referencing structure is hashed as a back-reference instead of looping.
    """

    __slots__ = ("hasher", "path")

    def __init__(self) -> None:
        self.hasher = xxhash.xxh3_128()
        self.path: dict[int, int] = {}

    # -- primitives of the byte stream --

    def leaf(self, tag: bytes, payload: bytes | memoryview) -> None:
        self.hasher.update(tag + _LEN.pack(len(payload)))
        self.hasher.update(payload)

    def text(self, tag: bytes, text: str) -> None:
        self.leaf(tag, text.encode("utf-8", "surrogatepass"))

    def head(self, tag: bytes, count: int) -> None:
        self.hasher.update(tag + _LEN.pack(count))

    def digest_of(self, value: object) -> bytes:
        """The digest of ``value`` alone (for sorting the entries of unordered containers)."""
        outer, self.hasher = self.hasher, xxhash.xxh3_128()
        try:
            self.feed(value)
            return self.hasher.digest()
        finally:
            self.hasher = outer

    # -- dispatch --

    def feed(self, value: object) -> None:
        cls = type(value)
        encode = _LEAVES.get(cls)
        if encode is not None:
            self.leaf(*encode(value))
            return
        container = _CONTAINERS.get(cls)
        if container is not None:
            self.container(value, container)
            return
        self.feed_other(value)

    def feed_other(self, value: object) -> None:
        """Arrays, frames, container subclasses, dataclasses, and the pickle fallback."""
        codec = custom_types.codec_for(type(value))
        if codec is not None:  # a user type: what its transformer writes (TypeEngine.register)
            self.text(b"X", _type_name(value))
            self.leaf(b"x", custom_types.encode(value))
            return
        own = getattr(type(value), "__kernelflow_hash__", None)
        if own is not None:  # a file by its content, not its path (kernelflow._core.adapt)
            self.text(b"O", _type_name(value))
            self.text(b"h", own(value))
            return
        if "numpy" in sys.modules and _feed_numpy(self, value):
            return
        if "pandas" in sys.modules and _feed_pandas(self, value):
            return
        for base, method in _CONTAINERS.items():
            if isinstance(value, base):  # namedtuple, OrderedDict, ...: content + type
                self.text(b"C", _type_name(value))
                self.container(value, method)
                return
        if field_names(value) is not None:  # a dataclass or a pydantic model, by its fields
            self.container(value, _Walker.record_items)
            return
        self.pickled(value)

    def container(self, value: Any, method: Callable[[_Walker, Any], None]) -> None:
        key = id(value)
        depth = self.path.get(key)
        if depth is not None:  # a cycle: refer back to the enclosing container
            self.leaf(b"R", _int_bytes(depth))
            return
        self.path[key] = len(self.path)
        try:
            method(self, value)
        finally:
            del self.path[key]

    # -- containers --

    def sequence(self, value: list[Any] | tuple[Any, ...]) -> None:
        self.head(b"L" if isinstance(value, list) else b"T", len(value))
        for item in value:
            self.feed(item)

    def mapping(self, value: dict[Any, Any]) -> None:
        entries = sorted((self.digest_of(k), self.digest_of(v)) for k, v in value.items())
        self.head(b"D", len(entries))
        for key_digest, value_digest in entries:
            self.hasher.update(key_digest + value_digest)

    def unordered(self, value: set[Any] | frozenset[Any]) -> None:
        digests = sorted(self.digest_of(item) for item in value)
        self.head(b"F" if isinstance(value, frozenset) else b"S", len(digests))
        for digest in digests:
            self.hasher.update(digest)

    def record_items(self, value: Any) -> None:
        names = field_names(value) or []
        self.text(b"d", _type_name(value))
        self.head(b"T", len(names))
        for name in names:
            self.text(b"s", name)
            self.feed(getattr(value, name))

    # -- the fallback --

    def pickled(self, value: object) -> None:
        """Hash the protocol-5 pickle; large buffers (arrays inside objects) stay in place."""
        buffers: list[pickle.PickleBuffer] = []
        try:
            data = pickle.dumps(value, protocol=5, buffer_callback=buffers.append)
            raws = [buffer.raw() for buffer in buffers]
        except BufferError:  # a non-contiguous out-of-band buffer: pickle it in-band
            data, raws = self._pickle_inband(value), []
        except Exception as error:
            raise _unhashable(value, f"it cannot be pickled ({error})") from error
        self.leaf(b"p", data)
        self.head(b"B", len(raws))
        for raw in raws:
            self.leaf(b"r", raw)

    def _pickle_inband(self, value: object) -> bytes:
        try:
            return pickle.dumps(value, protocol=5)
        except Exception as error:
            raise _unhashable(value, f"it cannot be pickled ({error})") from error


_CONTAINERS: dict[type, Callable[[_Walker, Any], None]] = {
    list: _Walker.sequence,
    tuple: _Walker.sequence,
    dict: _Walker.mapping,
    set: _Walker.unordered,
    frozenset: _Walker.unordered,
}


# --- NumPy ---------------------------------------------------------------------------


def _feed_numpy(walker: _Walker, value: object) -> bool:
    """Arrays by dtype, shape and raw buffer; scalars by dtype and bytes. False if not NumPy."""
    import numpy as np

    if type(value) is np.ndarray:
        if value.dtype.hasobject:  # the buffer holds pointers: hash the objects instead
            walker.text(b"o", "object-array")
            walker.pickled(value)
            return True
        walker.text(b"A", _dtype_text(value.dtype))
        walker.leaf(b"h", b"".join(_LEN.pack(n) for n in value.shape))
        _feed_buffer(walker, value)
        return True
    if isinstance(value, np.generic) and not value.dtype.hasobject:
        walker.text(b"g", _dtype_text(value.dtype))
        walker.leaf(b"v", value.tobytes())
        return True
    return False


def _dtype_text(dtype: Any) -> str:
    """dtype.str carries kind, size, byte order and datetime unit; names add record fields."""
    if dtype.names:
        return f"{dtype.str}{dtype.descr}"
    return str(dtype.str)


def _feed_buffer(walker: _Walker, array: Any) -> None:
    """The raw bytes of an array, in C order, without a copy when it is C-contiguous."""
    import numpy as np

    if not array.flags.c_contiguous:
        array = np.ascontiguousarray(array)
    # A uint8 view: memoryview() refuses datetime64/timedelta64 buffers.
    walker.leaf(b"a", memoryview(array.reshape(-1).view(np.uint8)))


# --- pandas --------------------------------------------------------------------------


def _feed_pandas(walker: _Walker, value: object) -> bool:
    """DataFrame, Series and Index by structure and per-column buffers. False if not pandas."""
    import pandas as pd

    if isinstance(value, pd.DataFrame):
        walker.text(b"P", _type_name(value))
        walker.leaf(b"h", _LEN.pack(value.shape[0]) + _LEN.pack(value.shape[1]))
        _feed_index(walker, value.columns)
        _feed_index(walker, value.index)
        for _, column in value.items():
            _feed_values(walker, column)
        return True
    if isinstance(value, pd.Series):
        walker.text(b"Q", _type_name(value))
        walker.feed(value.name)
        _feed_index(walker, value.index)
        _feed_values(walker, value)
        return True
    if isinstance(value, pd.Index):
        _feed_index(walker, value)
        return True
    return False


def _feed_index(walker: _Walker, index: Any) -> None:
    """An Index: its type, names and values (a RangeIndex by its start, stop and step)."""
    import pandas as pd

    walker.text(b"I", _type_name(index))
    walker.feed(list(index.names))
    if isinstance(index, pd.RangeIndex):
        walker.feed((index.start, index.stop, index.step))
    elif isinstance(index, pd.MultiIndex):
        walker.head(b"M", index.nlevels)
        for level in range(index.nlevels):
            _feed_values(walker, index.get_level_values(level))
    else:
        _feed_values(walker, index)


def _feed_values(walker: _Walker, values: Any) -> None:
    """The values of a Series, a column or a flat Index, with their dtype.

    Numeric, boolean and datetime values are hashed from their buffer (a column of
    a single-dtype block is a view, no copy). Everything else goes through
    ``pd.util.hash_pandas_object``, except object values that are not all strings:
    pandas hashes those by their ``str()``, so that ``[1, 2]`` and ``["1", "2"]``
    collide; they are pickled instead.
    """
    import numpy as np
    import pandas as pd

    dtype = values.dtype
    _feed_dtype(walker, dtype)
    if isinstance(dtype, np.dtype) and not dtype.hasobject:
        _feed_buffer(walker, values.to_numpy(copy=False))
        return
    if isinstance(dtype, np.dtype):  # object dtype
        kind = pd.api.types.infer_dtype(values, skipna=True)
        walker.text(b"k", kind)
        if kind not in ("string", "empty"):
            walker.pickled(values.to_numpy())
            return
    if len(values) <= _SMALL and isinstance(dtype, (np.dtype, pd.StringDtype)):
        _feed_strings(walker, values.tolist())
        return
    try:
        hashes = pd.util.hash_pandas_object(values, index=False, categorize=True)
    except (TypeError, ValueError):  # an extension type pandas cannot hash
        walker.pickled(values.array)
        return
    _feed_buffer(walker, hashes.to_numpy())


# Below this many strings, hashing them one by one beats building the Series that
# hash_pandas_object returns (column labels are the typical case).
_SMALL = 1000
_MISSING = b"\xff" * 8


def _feed_strings(walker: _Walker, items: list[Any]) -> None:
    """A short list of strings and missing values (None, NaN and NA alike, as in pandas)."""
    parts = []
    for item in items:
        if isinstance(item, str):
            data = item.encode("utf-8", "surrogatepass")
            parts.append(_LEN.pack(len(data)) + data)
        else:  # a length no string can have marks a missing value
            parts.append(_MISSING)
    walker.head(b"l", len(items))
    walker.leaf(b"z", b"".join(parts))


def _feed_dtype(walker: _Walker, dtype: Any) -> None:
    """A dtype by its text, plus the categories and order of a categorical."""
    import pandas as pd

    walker.text(b"t", str(dtype))
    if isinstance(dtype, pd.CategoricalDtype) and dtype.categories is not None:
        walker.feed(bool(dtype.ordered))
        _feed_index(walker, dtype.categories)
