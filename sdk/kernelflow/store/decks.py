"""Decks: the HTML pages a task attempt wrote, one file per node and run.

``<root>/decks/<run_id>/<node>.html``, both names quoted so that neither can
leave the folder; written atomically, like every file of the store.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import urllib.parse
from pathlib import Path

from kernelflow._core.errors import StoreError

__all__ = ["deck_folder", "deck_path", "list_decks", "read_deck", "write_deck"]


def _name(text: str) -> str:
    return urllib.parse.quote(text, safe="") or "_"


def deck_folder(root: str | os.PathLike[str], run_id: str) -> Path:
    """The decks of one run (removed with the run by ``kernelflow gc``)."""
    return Path(root, "decks", _name(run_id))


def deck_path(root: str | os.PathLike[str], run_id: str, node: str) -> Path:
    return deck_folder(root, run_id) / f"{_name(node)}.html"


def write_deck(root: str | os.PathLike[str], run_id: str, node: str, html: str) -> Path:
    final = deck_path(root, run_id, node)
    temporary = final.with_name(f".{final.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_text(html, encoding="utf-8")
        os.replace(temporary, final)
    except OSError as error:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise StoreError(
            f"cannot write the deck {final}: {error.strerror or error}",
            path=str(final),
            fix="free space in the store, or point $KERNELFLOW_HOME elsewhere",
        ) from error
    return final


def read_deck(root: str | os.PathLike[str], run_id: str, node: str) -> str | None:
    try:
        return deck_path(root, run_id, node).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


def list_decks(root: str | os.PathLike[str], run_id: str) -> list[str]:
    """The nodes of ``run_id`` that have a deck."""
    folder = deck_folder(root, run_id)
    if not folder.is_dir():
        return []
    return sorted(urllib.parse.unquote(path.stem) for path in folder.glob("*.html"))
