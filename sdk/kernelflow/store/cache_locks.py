"""One lock file per cache key, for tasks declared ``cache_serialize=True`` (Flyte's option).

Two processes that need the same cache entry at once compute it once: the first
takes the key's lock and computes; the others block on the lock, then find the
entry the first one made. The lock is an ``fcntl.flock`` on
``<store>/locks/<key>.lock``: the kernel releases it when its holder finishes or
dies, so a crashed run never leaves a stale lock behind (the file stays, empty
and harmless). Where ``fcntl`` does not exist (Windows) nothing is serialized.

A process that already holds a key's lock (two nodes of one run with the same
key) does not take it twice, which would deadlock: the second node computes too.
"""

from __future__ import annotations

import os
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["CacheLocks"]

LOCKS = "locks"


class CacheLocks:
    """The cache-key locks of one store, as held by this process."""

    def __init__(self, home: Path | str) -> None:
        self.folder = Path(home) / LOCKS
        self._held: dict[str, int] = {}

    def acquire(self, key: str) -> bool:
        """Block until this process holds ``key``'s lock; False when it already did or cannot."""
        if fcntl is None or key in self._held:
            return False
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.folder / f"{key}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
        self._held[key] = fd
        return True

    def release(self, key: str) -> None:
        """Let the next waiter in (a no-op for a key not held)."""
        fd = self._held.pop(key, None)
        if fd is not None:
            os.close(fd)  # closing the descriptor releases its flock

    def release_all(self) -> None:
        for key in list(self._held):
            self.release(key)
