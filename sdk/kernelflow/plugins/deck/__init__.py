"""``flytekitplugins.deck``: the standard deck renderers (:mod:`kernelflow.deck.renderer`)."""

from __future__ import annotations

from kernelflow.plugins.deck.renderer import *  # noqa: F403
from kernelflow.plugins.deck.renderer import __all__ as __all__
