"""A literal (:mod:`kernelflow.models.literals`) as bytes: what the store keeps and the hash reads.

A transformer's literal often points at data rather than holding it: a
``Blob`` names a file or a directory it wrote to a random "remote" path. The
bytes made here hold the *content* instead of the path, so that

- they are the same for the same value, whatever random path the transformer
  chose (a cache key made from them is a hit for an equal value), and
- the value can be read back anywhere: the content is written to fresh local
  paths of the reader's sandbox and the literal handed to ``to_python_value``
  names those.

Layout: a magic line, the length-prefixed JSON of the literal's tree (models as
``{"$": "Blob", ...}``, sorted keys), then each payload (file contents, binary
values) length-prefixed, in the order the tree refers to them. Of a file only
its extension is kept (``blob.csv``), so that an identical file under another
name is the same value, as for ``FlyteFile``; in a directory, relative paths are
content and kept. A remote URL (``s3://...``) is kept as the URL.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kernelflow.models import literals, types
from kernelflow.models.core.types import BlobType
from kernelflow.types._paths import is_url, local_of

__all__ = ["pack", "unpack"]

_MAGIC = b"kernelflow-literal/1\n"
_LEN = struct.Struct("<Q")
_MODELS: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        literals.Literal,
        literals.Scalar,
        literals.Primitive,
        literals.Blob,
        literals.BlobMetadata,
        literals.Binary,
        literals.Void,
        literals.LiteralCollection,
        literals.LiteralMap,
        literals.StructuredDataset,
        literals.StructuredDatasetMetadata,
        BlobType,
        types.LiteralType,
        types.StructuredDatasetType,
    )
}
_WITH_DATA = ("Blob", "StructuredDataset")  # models whose ``uri`` stands for their content


def pack(literal: Any) -> bytes:
    """The bytes of ``literal``: its tree, then the payloads (file contents inline)."""
    payloads: list[bytes] = []
    tree = _tree(literal, payloads)
    head = json.dumps(tree, sort_keys=True, separators=(",", ":")).encode()
    parts = [_MAGIC, _LEN.pack(len(head)), head]
    for payload in payloads:
        parts += [_LEN.pack(len(payload)), payload]
    return b"".join(parts)


def unpack(data: bytes, new_directory: Callable[[], str]) -> Any:
    """The literal of :func:`pack`'s bytes; its files are written under ``new_directory()``."""
    if not data.startswith(_MAGIC):
        raise ValueError("not the bytes of a literal")
    offset = len(_MAGIC)
    chunks = []
    while offset < len(data):
        (size,) = _LEN.unpack_from(data, offset)
        offset += _LEN.size
        chunks.append(data[offset : offset + size])
        offset += size
    tree = json.loads(chunks[0])
    return _value(tree, chunks[1:], new_directory)


# --- packing ------------------------------------------------------------------------------


def _tree(obj: Any, payloads: list[bytes]) -> Any:
    if obj is None or isinstance(obj, (bool, float, str)):
        return obj
    if isinstance(obj, int):  # an IntEnum (SimpleType, BlobDimensionality) as its number
        return int(obj)
    if isinstance(obj, (bytes, bytearray, memoryview)):
        payloads.append(bytes(obj))
        return {"$bytes": len(payloads) - 1}
    if isinstance(obj, datetime.datetime):
        return {"$datetime": obj.isoformat()}
    if isinstance(obj, datetime.timedelta):
        return {"$timedelta": obj.total_seconds()}
    if isinstance(obj, (list, tuple)):
        return [_tree(item, payloads) for item in obj]
    if isinstance(obj, dict):
        return {"$dict": {str(key): _tree(value, payloads) for key, value in obj.items()}}
    name = type(obj).__name__
    if dataclasses.is_dataclass(obj) and _MODELS.get(name) is type(obj):
        fields = {
            field.name: _tree(getattr(obj, field.name), payloads)
            for field in dataclasses.fields(obj)
        }
        if name in _WITH_DATA and isinstance(obj.uri, str):
            fields["uri"] = _content(obj.uri, payloads)
        return {"$": name, **fields}
    raise TypeError(f"a literal cannot hold a {type(obj).__qualname__}: {obj!r}")


def _content(uri: str, payloads: list[bytes]) -> Any:
    """What a blob's ``uri`` stands for: the file or directory's content (a URL as itself)."""
    if is_url(uri):
        return {"$url": uri}
    path = Path(local_of(uri))
    if path.is_dir():
        entries = []
        for folder, dirs, files in os.walk(path):
            dirs.sort()
            for name in sorted(files):
                file = Path(folder, name)
                payloads.append(file.read_bytes())
                entries.append([file.relative_to(path).as_posix(), len(payloads) - 1])
        return {"$dir": entries}
    payloads.append(path.read_bytes())  # a missing path raises: the transformer's error
    return {"$file": len(payloads) - 1, "suffix": path.suffix}


# --- unpacking ----------------------------------------------------------------------------


def _value(tree: Any, payloads: list[bytes], new_directory: Callable[[], str]) -> Any:
    if isinstance(tree, list):
        return [_value(item, payloads, new_directory) for item in tree]
    if not isinstance(tree, dict):
        return tree
    if "$bytes" in tree:
        return payloads[tree["$bytes"]]
    if "$datetime" in tree:
        return datetime.datetime.fromisoformat(tree["$datetime"])
    if "$timedelta" in tree:
        return datetime.timedelta(seconds=tree["$timedelta"])
    if "$dict" in tree:
        return {k: _value(v, payloads, new_directory) for k, v in tree["$dict"].items()}
    if "$url" in tree:
        return tree["$url"]
    if "$file" in tree:
        path = Path(new_directory(), "blob" + tree.get("suffix", ""))
        path.write_bytes(payloads[tree["$file"]])
        return str(path)
    if "$dir" in tree:
        root = Path(new_directory())
        for relative, index in tree["$dir"]:
            target = root / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(payloads[index])
        return str(root)
    cls = _MODELS[tree["$"]]
    fields = {k: _value(v, payloads, new_directory) for k, v in tree.items() if k != "$"}
    return cls(**fields)
