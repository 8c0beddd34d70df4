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

A replay is itself crash-safe: the replaying process claims a journal by renaming
it (:class:`Claim`), gives it back if the replay fails, and a claim left by a
process that died is taken over by the next one. Its statements are idempotent,
so a replay cut short after its commit is harmless to redo. A line that is not a
well-formed record is skipped and reported; the others are replayed.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, NamedTuple

import orjson

from kernelflow._core.errors import StoreError
from kernelflow.store._liveness import pid_alive


class Journal:
    """This process's journal: one JSON line per deferred statement."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / f"{os.getpid()}-{secrets.token_hex(4)}.jsonl"
        self._file: IO[bytes] | None = None
        self._size = 0

    def append(self, kind: str, params: tuple[Any, ...]) -> None:
        if self._file is None:
            try:
                self.directory.mkdir(parents=True, exist_ok=True)
                self._file = self.path.open("ab")
            except FileExistsError as error:
                raise _not_a_directory(self.directory) from error
            except OSError as error:
                raise StoreError(
                    f"cannot write the journal {self.path}: {error.strerror or error}",
                    fix="check free space and permissions there, or point $KERNELFLOW_HOME "
                    "elsewhere",
                    path=self.path,
                ) from error
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


class Line(NamedTuple):
    """One statement of a journal: its line number (from 1), kind and parameters."""

    number: int
    kind: str
    params: tuple[Any, ...]


class Claim(NamedTuple):
    """A journal this process is replaying, renamed ``<name>.replaying-<pid>``.

    Until :meth:`done`, a replay can be cut short anywhere (Ctrl-C, SIGKILL, a full
    disk): :meth:`release` gives the journal back, and a claim whose process died
    is taken over by the next one. Replaying twice is harmless: the statements a
    replay runs are idempotent (see :mod:`kernelflow.store.runs`).
    """

    path: Path
    original: Path

    def release(self) -> None:
        """The replay did not finish: the journal is back for the next store to replay."""
        with contextlib.suppress(OSError):
            os.rename(self.path, self.original)

    def done(self) -> None:
        """The replay is committed: the journal goes."""
        crash_point("before-unlink")
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def orphans(directory: Path) -> Iterator[Claim]:
    """Journals of dead processes, and replays left unfinished by dead processes, claimed."""
    if not directory.is_dir():
        if directory.exists():
            raise _not_a_directory(directory)
        return
    for path in sorted(directory.iterdir()):
        name, _, suffix = path.name.partition(".")
        owner = _owner(name, suffix)  # the writer of a journal, or the process replaying it
        if owner is None or owner == os.getpid() or _alive(path, owner):
            continue
        if path.is_dir():
            raise StoreError(
                f"{path} is a directory, where kernelflow keeps a journal file",
                fix="delete that directory (kernelflow never makes one there) and run again",
                path=path,
            )
        crash_point("before-rename")
        claimed = path.with_name(f"{name}.replaying-{os.getpid()}")
        try:
            os.rename(path, claimed)  # one replayer wins
        except OSError:
            continue
        crash_point("after-rename")
        yield Claim(claimed, path.with_name(f"{name}.jsonl"))


def read(path: Path) -> tuple[list[Line], list[str]]:
    """The statements of a journal, and why each line that holds none was skipped.

    A last line cut short by a crash is expected and dropped quietly; any other line
    that is not a statement of a known kind, with fields of the right types, is
    skipped and reported, and the lines after it are still read.
    """
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as error:
        raise StoreError(
            f"cannot read the journal {path}: {error.strerror or error}",
            fix="make it a readable file, or delete it (the records it holds are lost, "
            "and their tasks run again when the run is resumed)",
            path=path,
        ) from error
    lines, problems = [], []
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        try:
            kind, params = json.loads(line)
        except (ValueError, TypeError):
            if line.endswith("\n"):
                problems.append(f"line {number} is not a journal record: {line[:80]!r}")
            continue  # else the last line, cut short by the crash
        problem = _check(kind, params)
        if problem is None:
            lines.append(Line(number, kind, tuple(params)))
        else:
            problems.append(f"line {number} ({line[:80].strip()!r}) {problem}")
    return lines, problems


# What each kind of line holds: the parameters of its statement in
# kernelflow.store.runs, in order, as ``name:type``; ``?`` allows null. "run" and
# "cache_put" are written by kernelflow before schema version 4 (no project or
# domain), and still replayed.
_FIELDS = {
    "run": "run_id:text workflow:text version:text started:text started_ts:number "
    "params:json environment:json pid:int? host:text? boot_id:text? resumed_from:text?",
    "node": "run_id:text node:text task:text attempt:int status:text cache_hit:bool "
    "cache_key:text? code_hash:text inputs:json outputs:json started:text "
    "started_ts:number duration:number error:text?",
    "cache_put": "key:text task:text outputs:json manifest:json duration:number? "
    "created:text created_ts:number",
    "scoped_run": "run_id:text workflow:text version:text started:text started_ts:number "
    "params:json environment:json pid:int? host:text? boot_id:text? resumed_from:text? "
    "project:text domain:text",
    "scoped_cache_put": "key:text task:text outputs:json manifest:json duration:number? "
    "created:text created_ts:number project:text domain:text",
    "run_finish": "status:text finished:text finished_ts:number error:text? "
    "outputs:json? run_id:text",
}


def _is_json(value: object) -> bool:
    try:
        json.loads(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return True


_TYPES: dict[str, Callable[[object], bool]] = {
    "text": lambda value: isinstance(value, str),
    "int": lambda value: isinstance(value, int) and not isinstance(value, bool),
    "bool": lambda value: isinstance(value, bool | int),
    "number": lambda value: isinstance(value, int | float) and not isinstance(value, bool),
    "json": lambda value: isinstance(value, str) and _is_json(value),
}


def _check(kind: object, params: object) -> str | None:
    """Why a decoded line is not a statement that can be replayed; None if it is one."""
    if not isinstance(kind, str) or kind not in _FIELDS:
        return f"has an unknown kind {kind!r}"
    fields = _FIELDS[kind].split()
    if not isinstance(params, list) or len(params) != len(fields):
        return f"is not a list of the {len(fields)} fields of a {kind!r} record"
    for field, value in zip(fields, params, strict=True):
        name, _, type_name = field.partition(":")
        optional = type_name.endswith("?")
        if not (optional and value is None) and not _TYPES[type_name.rstrip("?")](value):
            return f"has {name} = {value!r}, which is not {type_name.rstrip('?')}"
    return None


def _owner(name: str, suffix: str) -> int | None:
    """The pid in a journal's name (its writer) or in a claim's suffix (its replayer)."""
    if suffix == "jsonl":
        pid = name.split("-", 1)[0]
    elif suffix.startswith("replaying-"):
        pid = suffix.removeprefix("replaying-")
    else:
        return None
    return int(pid) if pid.isdigit() else None


def _alive(path: Path, pid: int) -> bool:
    """Whether process ``pid`` may still be writing or replaying ``path``.

    The file changed last (a write, or the rename that claimed it) while its
    process ran, so a process with that pid that started later is another one.
    """
    try:
        changed = path.stat().st_ctime
    except FileNotFoundError:
        return True  # gone: claimed or removed by another process meanwhile
    return pid_alive(pid, changed)


def crash_point(step: str) -> None:
    """Tests only: ``$KERNELFLOW_TEST_CRASH_REPLAY=step`` kills this process at ``step``.

    Steps: before-rename, after-rename, mid-insert, before-unlink; the tests check
    that the next process recovers every record, wherever a replay is cut short.
    """
    if os.environ.get("KERNELFLOW_TEST_CRASH_REPLAY") == step:
        os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))


def _not_a_directory(path: Path) -> StoreError:
    return StoreError(
        f"{path} is a file, where kernelflow keeps its journal directory",
        fix="move that file away (kernelflow never makes one there) and run again",
        path=path,
    )
