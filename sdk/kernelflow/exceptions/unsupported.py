"""One way to say "kernelflow does not support this Flyte name", for every Flyte path.

A module that mirrors a Flyte module ends with ``__getattr__ = lambda name:
refuse(__name__, name)``-style hooks: a public name kernelflow lacks raises
:class:`~kernelflow.errors.UnsupportedFeatureError` (an ``ImportError`` whose
message names the feature and points to README "Flyte compatibility"), so a
Flyte program stops at the line that uses it, with that message, instead of an
``AttributeError`` deep in a module. Private and dunder names stay plain
``AttributeError`` for the tools that probe them.
"""

from __future__ import annotations

from typing import NoReturn

from kernelflow._core.errors import UnsupportedFeatureError


def refuse(module: str, name: str, why: str = "") -> NoReturn:
    if name.startswith("_"):
        raise AttributeError(f"module {module!r} has no attribute {name!r}")
    flyte = module.replace("kernelflow", "flytekit", 1)
    raise UnsupportedFeatureError(f"{flyte}.{name}", why=why)
