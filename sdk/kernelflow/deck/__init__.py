"""Flyte's ``flytekit.deck`` path: ``from kernelflow.deck import Deck``.

A deck is HTML a task writes about its run; see :mod:`kernelflow.engine.decks`.
The renderers (``MarkdownRenderer``, ``TopFrameRenderer``, ...) are in
:mod:`kernelflow.deck.renderer`, as in flytekit.
"""

from __future__ import annotations

from kernelflow.deck.renderer import MarkdownRenderer, SourceCodeRenderer, TopFrameRenderer
from kernelflow.engine.decks import Deck

__all__ = ["Deck", "MarkdownRenderer", "SourceCodeRenderer", "TopFrameRenderer"]
