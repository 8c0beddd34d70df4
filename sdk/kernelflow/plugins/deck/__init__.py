"""``flytekitplugins.deck``: the standard deck renderers (:mod:`kernelflow.deck.renderer`)."""

from __future__ import annotations

from kernelflow.deck.renderer import (
    BoxRenderer,
    FrameProfilingRenderer,
    ImageRenderer,
    MarkdownRenderer,
    SourceCodeRenderer,
    TableRenderer,
)

__all__ = [
    "BoxRenderer",
    "FrameProfilingRenderer",
    "ImageRenderer",
    "MarkdownRenderer",
    "SourceCodeRenderer",
    "TableRenderer",
]
