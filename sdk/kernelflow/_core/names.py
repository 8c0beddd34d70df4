"""Names that become file and directory names: one rule, checked where they do.

A workflow name becomes the directory ``<out>/<workflow>/`` of its exports and a plan
name the directory ``<runs>/<plan>/`` of its runs. Those names come from places
kernelflow does not trust (a notebook's metadata, a plan stored by an older version,
the command line), so each is checked by :func:`validate_name` before anything is
written: a name must never reach outside the directory it belongs under (``..``,
``/``, an absolute path), be too long for the file system (``File name too long``),
be hidden (``.x``) or read as a command-line option (``-x``). ASCII only, so that
100 characters are 100 bytes on every file system and one name has one spelling.
"""

from __future__ import annotations

import re

from kernelflow._core.errors import KernelflowError, ParameterError

__all__ = ["MAX_NAME_LENGTH", "NAME_RULE", "name_from_stem", "validate_name"]

MAX_NAME_LENGTH = 100
NAME_RULE = (
    f"1 to {MAX_NAME_LENGTH} characters: ASCII letters, digits, '_', '-' and '.', "
    "not starting with '.' or '-' and without '..'"
)
_ALLOWED = re.compile(r"[A-Za-z0-9_.-]")
_SHOWN_LENGTH = 40


def validate_name(
    kind: str,
    name: object,
    *,
    where: str,
    fix: str | None = None,
    error: type[KernelflowError] = ParameterError,
) -> str:
    """``name`` if it follows :data:`NAME_RULE`; otherwise an ``error`` saying why.

    ``kind`` and ``where`` say what the name is and where it was read ("workflow
    name", "the notebook metadata of flow.ipynb"), so the message points at what
    to change; ``fix`` replaces the default advice.
    """
    problem = name_problem(name)
    if problem is None:
        assert isinstance(name, str)
        return name
    shown = shown_name(name)
    raise error(
        f"bad {kind} {shown} in {where}: {problem}; a {kind} becomes a file name, "
        f"so it must be {NAME_RULE}",
        fix=fix or f"give a {kind} that follows that rule",
        kind=kind,
        actual=shown,
        where=where,
    )


def name_problem(name: object) -> str | None:
    """What is wrong with ``name`` as a file name, or ``None`` when nothing is."""
    if not isinstance(name, str):
        return f"it is {type(name).__name__}, not a string"
    if not name:
        return "it is empty"
    if len(name) > MAX_NAME_LENGTH:
        return f"it is {len(name)} characters long"
    if name[0] in ".-":
        return f"it starts with {name[0]!r}"
    if ".." in name:
        return "it contains '..'"
    bad = sorted({ch for ch in name if not _ALLOWED.fullmatch(ch)})
    if bad:
        return f"it contains {', '.join(map(repr, bad[:5]))}"
    return None


def shown_name(name: object) -> str:
    """``repr(name)``, cut short: a name too long for a file is too long for a message."""
    text = repr(name)
    if len(text) <= _SHOWN_LENGTH + 10:
        return text
    length = f", {len(name)} characters" if isinstance(name, str) else ""
    return f"{text[:_SHOWN_LENGTH]}... ({type(name).__name__}{length})"


def name_from_stem(stem: str, *, default: str = "notebook") -> str:
    """A name that follows the rule, made from a file name's stem.

    What a notebook without a name in its metadata is called: characters outside
    the rule (``.`` included, so no ``..``) become ``_``, a leading ``-`` goes, and
    the rest is cut to :data:`MAX_NAME_LENGTH`.
    """
    cleaned = re.sub(r"[^A-Za-z0-9_-]", "_", stem).lstrip("-")[:MAX_NAME_LENGTH]
    return cleaned or default
