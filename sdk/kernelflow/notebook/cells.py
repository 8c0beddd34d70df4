"""Which notebook cells are tasks, and with which options.

A cell is a task when its first line is ``%%task NAME [options]`` or when it is
tagged ``task:NAME`` (options then as tags: ``cache``, ``retries:2``, ...). The
cell tagged ``parameters`` holds the workflow inputs (papermill's convention) and
``injected-parameters`` overrides them. A cell of nothing but line magics that
steer the notebook (``%workflow run``, ``%load_ext kernelflow``, ``%matplotlib``)
is a *control* cell: neither a task nor setup, so an export leaves it out and
``kernelflow run`` skips it. Every other code cell is setup code.
"""

from __future__ import annotations

import argparse
import functools
import re
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from kernelflow._core.errors import CellParseError
from kernelflow.notebook.analysis import strip_task_header

CellKind = Literal["parameters", "injected-parameters", "task", "setup", "control"]
# Line magics that change the process tasks run in: a cell of them is setup, not control.
_STATEFUL_MAGICS = frozenset(["env", "set_env", "cd", "run", "pip", "conda", "store", "config"])
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


@dataclass(frozen=True)
class TaskSpec:
    """The options of a task cell, as written in its header or tags."""

    name: str
    cache: bool = False
    cache_version: str = ""
    retries: int = 0
    timeout: float | None = None
    outputs: tuple[str, ...] | None = None
    map: str | None = None
    after: tuple[str, ...] = ()
    defer: bool = False
    deck: bool = False


@dataclass(frozen=True)
class NotebookCell:
    """A code cell, classified. ``body`` is the source without a ``%%task`` header."""

    index: int
    kind: CellKind
    body: str
    label: str
    spec: TaskSpec | None = None


class _HeaderParser(argparse.ArgumentParser):
    """``%%task`` options; errors become :class:`CellParseError` instead of an exit."""

    cell = "cell"

    def error(self, message: str) -> Any:
        raise CellParseError(
            f"{self.cell}: bad %%task options: {message}",
            cell=self.cell,
            fix="the form is %%task NAME [--cache] [--cache-version V] [--retries N] "
            "[--timeout SECONDS] [--outputs a,b] [--map VAR] [--after OTHER] [--defer] [--deck]",
        )


@functools.lru_cache(maxsize=1)
def _header_parser() -> _HeaderParser:
    """Built once: building an argparse parser costs more than parsing a header."""
    parser = _HeaderParser(prog="%%task", add_help=False)
    parser.add_argument("name")
    parser.add_argument("--cache", action="store_true")
    parser.add_argument("--cache-version", default="")
    parser.add_argument("--retries", type=int, default=0)
    parser.add_argument("--deck", action="store_true")
    parser.add_argument("--timeout", type=float)
    parser.add_argument("--outputs")
    parser.add_argument("--map", dest="map_var")
    parser.add_argument("--after", action="append", default=[])
    parser.add_argument("--defer", action="store_true")
    return parser


def parse_header(line: str, *, cell: str = "cell") -> TaskSpec:
    """``"NAME --cache --retries 2"`` (what follows ``%%task``) to a :class:`TaskSpec`."""
    bare = line.strip()
    if _NAME.match(bare):  # the usual header, a name alone: no need for shlex and argparse
        return TaskSpec(name=bare)
    try:
        words = shlex.split(line)
    except ValueError as error:
        raise CellParseError(f"{cell}: bad %%task line: {error}", cell=cell) from error
    if not words:
        raise CellParseError(
            f"{cell}: %%task needs a task name",
            cell=cell,
            fix="write %%task NAME, e.g. %%task load_data",
        )
    parser = _header_parser()
    parser.cell = cell  # named in errors; header parsing is single-threaded (one kernel)
    args = parser.parse_args(words)
    if args.cache_version:
        args.cache = True  # a cache version only makes sense for a cached task
    return _spec(
        cell,
        name=args.name,
        cache=args.cache,
        cache_version=args.cache_version,
        retries=args.retries,
        timeout=args.timeout,
        outputs=args.outputs,
        map_var=args.map_var,
        after=args.after,
        defer=args.defer,
        deck=args.deck,
    )


def parse_tags(tags: Iterable[str], *, cell: str = "cell") -> TaskSpec | None:
    """A :class:`TaskSpec` from cell tags (``task:NAME``, ``cache``, ``retries:2``...)."""
    tags = list(tags)
    names = [t.partition(":")[2] for t in tags if t.startswith("task:")]
    if not names:
        return None
    if len(names) > 1:
        raise CellParseError(
            f"{cell} has several task tags: {names}",
            cell=cell,
            fix="keep one task:NAME tag per cell",
        )
    options: dict[str, Any] = {"after": []}
    for tag in tags:
        key, _, value = tag.partition(":")
        if key in ("task", "parameters", "injected-parameters") or key.startswith("kernelflow"):
            continue
        _tag_option(options, key, value, cell)
    return _spec(cell, name=names[0], **options)


def _tag_option(options: dict[str, Any], key: str, value: str, cell: str) -> None:
    flags = {"cache": "cache", "defer": "defer", "deck": "deck"}
    valued = {
        "cache-version": "cache_version",
        "retries": "retries",
        "timeout": "timeout",
        "outputs": "outputs",
        "map": "map_var",
    }
    if key in flags and not value:
        options[flags[key]] = True
    elif key in valued and value:
        options[valued[key]] = value
        if key == "cache-version":
            options["cache"] = True
    elif key == "after" and value:
        options["after"].append(value)
    # Tags that are not ours (hide-input, remove-cell, ...) belong to other tools.


def _spec(
    cell: str,
    *,
    name: str,
    cache: bool = False,
    cache_version: str = "",
    retries: Any = 0,
    timeout: Any = None,
    outputs: str | None = None,
    map_var: str | None = None,
    after: Sequence[str] = (),
    defer: bool = False,
    deck: bool = False,
) -> TaskSpec:
    if not _NAME.match(name):
        raise CellParseError(
            f"{cell}: {name!r} is not a valid task name",
            cell=cell,
            fix="use letters, digits, '_', '-' or '.', starting with a letter",
        )
    try:
        retries_value = int(retries)
        timeout_value = float(timeout) if timeout is not None else None
    except ValueError as error:
        raise CellParseError(
            f"task {name!r}: {error}",
            cell=cell,
            task=name,
            fix="retries is a whole number, timeout a number of seconds",
        ) from error
    return TaskSpec(
        name=name,
        cache=bool(cache),
        cache_version=str(cache_version),
        retries=retries_value,
        timeout=timeout_value,
        outputs=tuple(o.strip() for o in outputs.split(",") if o.strip()) if outputs else None,
        map=map_var,
        after=tuple(after),
        defer=bool(defer),
        deck=bool(deck),
    )


def classify(index: int, source: str, tags: Iterable[str]) -> NotebookCell:
    """Classify one code cell of a notebook."""
    tags = list(tags)
    label = f"cell {index}"
    header, body = strip_task_header(source)
    if header is not None:
        spec = parse_header(header, cell=label)
        return NotebookCell(index, "task", body, f"cell {index} (task {spec.name!r})", spec)
    spec = parse_tags(tags, cell=label)
    if spec is not None:
        return NotebookCell(index, "task", source, f"cell {index} (task {spec.name!r})", spec)
    if "injected-parameters" in tags:
        return NotebookCell(index, "injected-parameters", source, f"{label} (injected-parameters)")
    if "parameters" in tags:
        return NotebookCell(index, "parameters", source, f"{label} (parameters)")
    if is_control(source):
        return NotebookCell(index, "control", source, f"{label} (control)")
    return NotebookCell(index, "setup", source, label)


def is_control(source: str) -> bool:
    """Whether a cell is only line magics that bind no names (``%workflow run``...).

    Magics that change the process the tasks run in (``%env``, ``%cd``, ``%pip``...)
    do not count: such a cell is setup, and runs before the tasks.
    """
    lines = [line.strip() for line in source.splitlines()]
    magics = [line for line in lines if line and not line.startswith("#")]
    if not magics:
        return False
    for line in magics:
        if not line.startswith("%") or line.startswith("%%"):
            return False
        name = line[1:].split(maxsplit=1)[0] if len(line) > 1 else ""
        if not name or name in _STATEFUL_MAGICS:
            return False
    return True
