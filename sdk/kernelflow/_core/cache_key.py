"""Cache keys: one hash over everything that determines a task's outputs.

``key = H(salt, task name, code, cache_version, inputs)`` where the salt pins the
cache format, kernelflow's version and Python's major.minor, ``code`` is the
task's fingerprint (normalized body plus referenced code and package versions),
and ``inputs`` are content hashes by input name (Merkle-style: a value produced
upstream is identified by the hash recorded when it was produced).

The manifest keeps each component so that a miss can be explained by diffing
two manifests.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass

from kernelflow._core.hashing import combine
from kernelflow._version import __version__

CACHE_FORMAT = "1"
_SALT = combine(
    "kernelflow-cache", CACHE_FORMAT, __version__, f"py{sys.version_info[0]}.{sys.version_info[1]}"
)


@dataclass(frozen=True)
class CacheKey:
    """A cache key and the components it was computed from."""

    key: str
    manifest: Mapping[str, object]


def cache_key(
    *, task: str, code_hash: str, cache_version: str, input_hashes: Mapping[str, str]
) -> CacheKey:
    """The key under which a task's outputs for these inputs are cached."""
    inputs = sorted(input_hashes.items())
    key = combine(_SALT, task, code_hash, cache_version, *(f"{n}={h}" for n, h in inputs))
    manifest = {
        "format": CACHE_FORMAT,
        "kernelflow": __version__,
        "python": f"{sys.version_info[0]}.{sys.version_info[1]}",
        "task": task,
        "code_hash": code_hash,
        "cache_version": cache_version,
        "inputs": dict(inputs),
    }
    return CacheKey(key, manifest)
