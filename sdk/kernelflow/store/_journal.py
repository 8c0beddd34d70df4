"""Deferred run-store writes, kept in an append-only file until they are committed.

The engine batches a run's start and end and the records of quick tasks into
one SQLite transaction (a commit costs more than such a task). Until that
commit, each record is also appended to this process's journal file; the lines
are handed to the OS (:meth:`Journal.sync`) before the engine runs user code,
which may kill the process, and when a run ends. A later :class:`RunStore`
replays the journals of dead processes, so a resumed run knows every task that
finished. A committed batch drops exactly its own lines
(:meth:`Journal.drop_until`), so nothing is replayed twice. Only a power loss
before the OS writes the file back can lose lines, and then the tasks simply run
again.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import orjson


class Journal:
    """This process's journal: one JSON line per deferred statement."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / f"{os.getpid()}-{secrets.token_hex(4)}.jsonl"
        self._file: IO[bytes] | None = None
        self._size = 0

    def append(self, kind: str, params: tuple[Any, ...]) -> None:
        if self._file is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("ab")
            # Kept open between batches; closed with the journal, but not by the
            # finalizers run at exit, which would come before the stores' last flush.
            weakref.finalize(self, self._file.close).atexit = False
        # orjson: a line costs a tenth of json's time. Every value is a string,
        # a finite number, a bool or None (records are encoded before they come here).
        line = orjson.dumps([kind, params]) + b"\n"
        self._file.write(line)  # buffered until sync(): one write for a batch of lines
        self._size += len(line)

    def sync(self) -> None:
        """Hand the journaled lines to the OS: enough to survive ``os._exit`` and SIGKILL."""
        if self._file is not None:
            self._file.flush()

    def mark(self) -> int:
        """Where the journal ends now: what a batch taken now covers."""
        return self._size

    def drop_until(self, mark: int) -> None:
        """The lines up to ``mark`` are committed: they must never be replayed.

        Usually that is the whole file, which is emptied (not removed: opening it
        again for the next batch would cost a quick task more than its record).
        Lines journaled while the batch was being written are kept.
        """
        if self._file is None or mark == 0:
            return
        self._file.flush()
        tail = b""
        if self._size > mark:
            with open(self.path, "rb") as reader:
                reader.seek(mark)
                tail = reader.read()
        self._file.truncate(0)
        if tail:
            self._file.write(tail)
            self._file.flush()
        self._size = len(tail)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def orphans(directory: Path) -> Iterator[tuple[Path, list[tuple[str, tuple[Any, ...]]]]]:
    """Claimed journals of dead processes and their statements; unlink each once committed."""
    if not directory.is_dir():
        return
    for path in sorted(directory.glob("*.jsonl")):
        pid = int(path.name.split("-", 1)[0]) if path.name.split("-", 1)[0].isdigit() else 0
        if pid == os.getpid() or _alive(pid):
            continue
        claimed = path.with_suffix(f".replaying-{os.getpid()}")
        try:
            os.rename(path, claimed)  # one replayer wins
        except OSError:
            continue
        yield claimed, _read(claimed)


def _read(path: Path) -> list[tuple[str, tuple[Any, ...]]]:
    statements = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            kind, params = json.loads(line)
        except (ValueError, TypeError):
            break  # a line cut short by the crash: what follows cannot exist
        statements.append((str(kind), tuple(params)))
    return statements


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
