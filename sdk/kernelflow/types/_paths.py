"""What files and directories share: local or remote (fsspec) locations, formats, copies."""

from __future__ import annotations

import os
import tempfile
from typing import Any, TypeVar

_FORMATS: dict[tuple[type, str], type] = {}


def is_url(path: str) -> bool:
    """A remote location (``s3://...``, ``memory://...``); ``file://`` counts as local."""
    return "://" in path and not path.startswith("file://")


def local_of(path: str) -> str:
    return os.path.abspath(path[len("file://") :] if path.startswith("file://") else path)


def fsspec_for(url: str) -> Any:
    """The filesystem of ``url`` and the path in it; fsspec is needed for remote data."""
    try:
        import fsspec
    except ImportError:  # pragma: no cover - fsspec is a dependency of the store
        raise ImportError(
            f"reading {url} needs fsspec: pip install fsspec (and the plug-in for its protocol)"
        ) from None
    return fsspec.core.url_to_fs(url)


def format_name(item: object) -> str:
    """``FlyteFile[TypeVar("csv")]`` and ``FlyteFile["csv"]`` both mean the format ``csv``."""
    if isinstance(item, TypeVar):
        return item.__name__
    if isinstance(item, str):
        return item
    raise TypeError(f"a file format is a TypeVar or a str, got {item!r}")


def with_format(base: type, item: object) -> type:
    """The subclass of ``base`` for one format, made once and shared."""
    name = format_name(item)
    key = (base, name)
    if key not in _FORMATS:
        _FORMATS[key] = type(
            f"{base.__name__}[{name}]",
            (base,),
            {"extension": name, "__module__": base.__module__},
        )
    return _FORMATS[key]


def download_dir() -> str:
    return tempfile.mkdtemp(prefix="kernelflow-download-")
