"""Flyte's ``flytekit.deck`` path: ``from kernelflow.deck import Deck``.

A deck is HTML a task writes about its run; see :mod:`kernelflow.engine.decks`.
"""

from __future__ import annotations

from kernelflow.engine.decks import Deck

__all__ = ["Deck"]
