"""A notebook task's rich outputs as its deck (``%%task NAME --deck``, or the tag ``deck``).

Opt-in, like ``@task(enable_deck=True)``: while the body of such a task cell
runs, what it displays (HTML, SVG, PNG and JPEG images, Markdown and plain text
as escaped text) is also added to the task's deck, page ``outputs``; the pyplot
figures it opened are added as PNG images when it ends (the cell still shows
them). The deck is kept like any other: ``kernelflow deck RUN_ID TASK`` and
``kernelflow report RUN_ID`` show it. Widgets are kept as their text form.
"""

from __future__ import annotations

import base64
import contextvars
import html
import io
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from kernelflow.engine.decks import Deck, collecting

__all__ = ["bundle_html", "displays_to_deck"]

_page: contextvars.ContextVar[Deck | None] = contextvars.ContextVar(
    "kernelflow_display_deck", default=None
)
_IMAGES = ("image/png", "image/jpeg")


@contextmanager
def displays_to_deck(shell: Any) -> Iterator[None]:
    """Around a task body: its displays and new figures go to its deck too (when it has one)."""
    if not collecting():
        yield
        return
    page = Deck("outputs")
    token = _page.set(page)
    display_pub = shell.display_pub
    previous = display_pub.publish
    wrapper = _teeing(previous)
    display_pub.publish = wrapper
    before = _figure_numbers()
    try:
        yield
    finally:
        try:
            for figure in _new_figures(before):
                page.append(_figure_html(figure))
        finally:
            _page.reset(token)
            if display_pub.publish is wrapper:  # else a capture wrapped it: it passes through
                display_pub.publish = previous


def _teeing(previous: Callable[..., Any]) -> Callable[..., Any]:
    def publish(data: Any, metadata: Any = None, *args: Any, **kwargs: Any) -> Any:
        page = _page.get()
        if page is not None and isinstance(data, Mapping):
            page.append(bundle_html(data))
        return previous(data, metadata, *args, **kwargs)

    return publish


def bundle_html(data: Mapping[str, Any]) -> str:
    """One display's richest form that a page can hold without a script."""
    if "text/html" in data:
        return f"<div>{data['text/html']}</div>"
    if "image/svg+xml" in data:
        return f"<div>{data['image/svg+xml']}</div>"
    for kind in _IMAGES:
        if kind in data:
            encoded = data[kind]
            if isinstance(encoded, bytes):
                encoded = base64.b64encode(encoded).decode("ascii")
            return f'<div><img src="data:{kind};base64,{encoded}" alt="output"></div>'
    text = data.get("text/markdown") or data.get("text/plain") or ""
    return f"<pre>{html.escape(str(text))}</pre>"


def _figure_numbers() -> set[int]:
    pyplot = sys.modules.get("matplotlib.pyplot")
    return set(pyplot.get_fignums()) if pyplot is not None else set()


def _new_figures(before: set[int]) -> list[Any]:
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is None:
        return []
    return [pyplot.figure(number) for number in sorted(set(pyplot.get_fignums()) - before)]


def _figure_html(figure: Any) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<div><img src="data:image/png;base64,{encoded}" alt="figure"></div>'
