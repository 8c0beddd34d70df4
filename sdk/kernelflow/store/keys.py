"""The key that signs pickled artifacts, and where it comes from.

Unpickling runs code, so a pickle is loaded only when an HMAC made with the
store's key matches. The key is never kept in an object store: whoever can write
to a bucket could otherwise read the key there and sign a pickle that a
teammate's machine then runs. It comes, in this order, from

1. ``$KERNELFLOW_STORE_KEY`` (64 hex digits): how a team that shares a store
   shares its key (from a secret manager, a CI secret);
2. ``secret.key`` in ``$KERNELFLOW_HOME`` (this machine's own store directory),
   made on the first write of a pickle. Copy that file to a teammate's home, or
   put its hex into their ``$KERNELFLOW_STORE_KEY``, to share.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import time
from pathlib import Path

from kernelflow._core.errors import ConfigurationError, StoreError
from kernelflow.store.blobs import store_error

__all__ = ["KEY_ENV", "KEY_FILE", "KEY_SIZE", "key_from_env", "load_or_create_key", "read_key"]

KEY_ENV = "KERNELFLOW_STORE_KEY"
KEY_FILE = "secret.key"
KEY_SIZE = 32


def key_from_env() -> bytes | None:
    """The key ``$KERNELFLOW_STORE_KEY`` holds, or None when it is unset.

    Raises
    ------
    ConfigurationError
        The variable is set but is not 64 hex digits (its value is never shown).
    """
    text = os.environ.get(KEY_ENV, "").strip()
    if not text:
        return None
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) != KEY_SIZE:
        raise ConfigurationError(
            f"${KEY_ENV} is set but is not a store key ({KEY_SIZE * 2} hex digits)",
            fix=f"set it to the hex of the team's key (e.g. `xxd -p -c 64 {KEY_FILE}`), "
            "or unset it to use the key file in $KERNELFLOW_HOME",
            url=KEY_ENV,
            reason="malformed key",
        )
    return key


def load_or_create_key(path: Path) -> bytes:
    """The store's HMAC key, created once (mode 0600) by whichever process gets there first.

    The key is written in full to a temporary file, then linked into place:
    ``link`` fails if the key exists, so creation is a race with one winner, and
    nobody ever sees a half-written key, even when the disk fills up meanwhile
    (the temporary file is removed and the error names the key).
    """
    if path.exists():
        return read_key(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    key = secrets.token_bytes(KEY_SIZE)
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as file:
            file.write(key)
        os.link(temporary, path)
    except FileExistsError:
        return read_key(path)  # another process made it first: use theirs
    except OSError as error:
        if error.errno not in _NO_HARD_LINKS:
            raise store_error(path, error) from error
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
        return read_key(path)
    except OSError as error:
        raise store_error(path, error) from error
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(key)
    except OSError as error:
        path.unlink(missing_ok=True)
        raise store_error(path, error) from error
    return key


def read_key(path: Path, wait: float = 2.0) -> bytes:
    """The key in ``path``; waits briefly for a key another process is still writing."""
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
