"""``current_context().secrets``: secrets read when a task asks, from its environment.

The resolution order is Flyte's: an environment variable ``_FSEC_<GROUP>_<KEY>``
(upper-cased), then our shorter ``<GROUP>_<KEY>``, then a file
``<dir>/<group>/<key>`` under ``$KERNELFLOW_SECRETS_DIR`` (or Flyte's
``$FLYTE_SECRETS_DEFAULT_DIR``, default ``/etc/secrets``). A value is handed to
the task body and nothing else: it is not an input or an output, so it never
reaches a cache key, the store, the run record or a deck.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import re
from collections.abc import Iterator
from pathlib import Path

from kernelflow._core.errors import SecretError

__all__ = ["Secrets", "collect_revealed", "env_names", "secrets_dir"]

# The values read during the current attempt, so that a deck can hide them.
_revealed: contextvars.ContextVar[set[str] | None] = contextvars.ContextVar(
    "kernelflow_revealed_secrets", default=None
)


@contextlib.contextmanager
def collect_revealed(into: set[str]) -> Iterator[set[str]]:
    """Within the block, every secret value read is added to ``into``."""
    token = _revealed.set(into)
    try:
        yield into
    finally:
        _revealed.reset(token)


def _reveal(value: str) -> None:
    bucket = _revealed.get()
    if bucket is not None:
        bucket.add(value)


FLYTE_PREFIX = "_FSEC_"
_NON_WORD = re.compile(r"[^0-9A-Za-z]")


def secrets_dir() -> Path:
    """The directory that holds ``<group>/<key>`` files."""
    configured = os.environ.get("KERNELFLOW_SECRETS_DIR") or os.environ.get(
        "FLYTE_SECRETS_DEFAULT_DIR"
    )
    return Path(configured or "/etc/secrets")


def env_names(group: str | None, key: str | None) -> list[str]:
    """The environment variables that may hold the secret, in the order they are read."""
    stem = "_".join(part for part in (group, key) if part)
    names = [f"{FLYTE_PREFIX}{stem}".upper(), stem.upper(), _NON_WORD.sub("_", stem).upper()]
    return list(dict.fromkeys(names))


class Secrets:
    """The secrets of the running task: ``get(group, key)``."""

    def get(
        self,
        group: str | None = None,
        key: str | None = None,
        group_version: str | None = None,
        encode_mode: str = "r",
    ) -> str | bytes:
        """The value (bytes with ``encode_mode="rb"``); a SecretError names a missing one."""
        if not group and not key:
            raise SecretError(
                "secrets.get() needs a group or a key", fix="call secrets.get(group, key)"
            )
        for name in env_names(group, key):
            if name in os.environ:
                value = os.environ[name]
                _reveal(value)
                return value.encode() if "b" in encode_mode else value
        path = self.file_of(group, key)
        if path.is_file():
            data = path.read_bytes()
            _reveal(data.decode(errors="replace").rstrip("\n"))
            return data if "b" in encode_mode else data.decode().rstrip("\n")
        raise SecretError(
            f"secret group={group!r} key={key!r} was not found: no environment variable "
            f"{' or '.join(env_names(group, key))} and no file {path}",
            group=group,
            key=key,
            fix=f"set the environment variable {env_names(group, key)[0]}, or write the value "
            f"to {path} ($KERNELFLOW_SECRETS_DIR moves the directory)",
        )

    def file_of(self, group: str | None, key: str | None) -> Path:
        parts = [part for part in (group, key) if part]
        for part in parts:
            if part in (".", "..") or "/" in part or "\\" in part:
                raise SecretError(
                    f"secret group={group!r} key={key!r} is not a valid name",
                    group=group,
                    key=key,
                    fix="use names without slashes",
                )
        return secrets_dir().joinpath(*parts)

    def get_secrets_env_var(self, group: str | None = None, key: str | None = None) -> str:
        return env_names(group, key)[0]

    def get_secrets_file(self, group: str | None = None, key: str | None = None) -> str:
        return str(self.file_of(group, key))

    def __repr__(self) -> str:
        return "<Secrets (values are read on request, never stored)>"
