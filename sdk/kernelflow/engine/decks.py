"""Decks (Flyte's ``Deck``): HTML a task writes about itself, kept per node and run.

Inside a task, ``Deck("Summary", html)`` or ``current_context().default_deck
.append(html)`` adds a page. For a task declared ``@task(enable_deck=True)``,
the pages of an attempt are written to the store when it ends (also when it
fails: that is when they help most) and read back with ``kernelflow deck RUN_ID
TASK``. Any secret value the attempt read is replaced by ``[secret]`` before
the page is written: a deck never holds a secret.

An output declared ``Annotated[pd.DataFrame, TopFrameRenderer(10)]`` (any
annotation with a ``to_html(value)`` method: Flyte's renderers) is rendered
with it into the deck's "Outputs" page, as Flyte does.
"""

from __future__ import annotations

import contextvars
import html as html_lib
import warnings
from collections.abc import Mapping
from types import TracebackType
from typing import Annotated, Any, get_origin

from kernelflow._core.errors import KernelflowWarning, StoreError
from kernelflow.engine.secrets import collect_revealed
from kernelflow.store.decks import write_deck

__all__ = ["Deck", "DeckCollector", "collecting", "default_deck", "render", "render_outputs"]

DEFAULT = "default"
_decks: contextvars.ContextVar[list[Deck] | None] = contextvars.ContextVar(
    "kernelflow_decks", default=None
)


class Deck:
    """A named HTML page of the running task's deck."""

    def __init__(self, name: str, html: str = "", auto_add_to_deck: bool = True) -> None:
        self.name = name
        self._html = html
        collected = _decks.get()
        if auto_add_to_deck and collected is not None:
            collected.append(self)

    def append(self, html: str) -> Deck:
        self._html += html
        return self

    @property
    def html(self) -> str:
        return self._html

    def __repr__(self) -> str:
        return f"<Deck {self.name!r}: {len(self._html)} characters>"


def default_deck() -> Deck:
    """The task's default page (Flyte's ``current_context().default_deck``)."""
    collected = _decks.get()
    for deck in collected or ():
        if deck.name == DEFAULT:
            return deck
    return Deck(DEFAULT)


def collecting() -> bool:
    """Whether the running attempt keeps a deck (its task declared one)."""
    return _decks.get() is not None


def current_decks() -> list[Deck]:
    return list(_decks.get() or ())


def render_outputs(declared: Mapping[str, Any], outputs: Mapping[str, Any]) -> None:
    """Add each output whose annotation carries a renderer to the "Outputs" page.

    Only while the attempt keeps a deck; a renderer that fails costs its section
    (with a warning), never the task's result.
    """
    if not collecting():
        return
    sections = []
    for name, expected in declared.items():
        renderer = _renderer_of(expected)
        if renderer is None or name not in outputs:
            continue
        try:
            body = renderer.to_html(outputs[name])
        except Exception as error:
            warnings.warn(
                f"output {name!r} could not be rendered into the deck by "
                f"{type(renderer).__name__} ({type(error).__name__}: {error})",
                KernelflowWarning,
                stacklevel=2,
            )
            continue
        sections.append(f"<h3>{html_lib.escape(name)}</h3>\n{body}")
    if sections:
        Deck("Outputs", "\n".join(sections))


def _renderer_of(declared: Any) -> Any:
    """The first annotation of ``Annotated[T, ...]`` that renders values to HTML."""
    if get_origin(declared) is not Annotated:
        return None
    for meta in declared.__metadata__:
        if callable(getattr(meta, "to_html", None)) and not isinstance(meta, type):
            return meta
    return None


def render(title: str, decks: list[Deck], hidden: set[str]) -> str:
    """One page: a section per deck; secret values replaced."""
    sections = [
        f'<section><h2>{html_lib.escape(deck.name)}</h2>\n<div class="deck">{deck.html}</div>'
        "</section>"
        for deck in decks
    ]
    page = (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>{html_lib.escape(title)}</title></head>\n<body>\n"
        f"<h1>{html_lib.escape(title)}</h1>\n" + "\n".join(sections) + "\n</body></html>\n"
    )
    for value in sorted(hidden, key=len, reverse=True):
        if value:
            page = page.replace(value, "[secret]")
    return page


class DeckCollector:
    """Around one attempt: collects its decks and the secrets it read; writes the page."""

    def __init__(self, *, enabled: bool, store_root: str, run_id: str, slot: str) -> None:
        self.enabled = enabled
        self.store_root, self.run_id, self.slot = store_root, run_id, slot
        self._token: contextvars.Token[list[Deck] | None] | None = None
        self._revealed: set[str] = set()

    def __enter__(self) -> DeckCollector:
        self._token = _decks.set([])
        self._secrets = collect_revealed(self._revealed)
        self._secrets.__enter__()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        decks = _decks.get() or []
        self._secrets.__exit__(kind, error, tb)
        assert self._token is not None
        _decks.reset(self._token)
        if not self.enabled or not decks:
            return
        page = render(f"{self.slot} ({self.run_id})", decks, self._revealed)
        try:
            write_deck(self.store_root, self.run_id, self.slot, page)
        except StoreError as failure:  # the task's result matters more than its deck
            warnings.warn(str(failure), KernelflowWarning, stacklevel=2)
