"""One way to say "kernelflow does not support this Flyte name", for every Flyte path.

A module that mirrors a Flyte module ends with ``__getattr__ = lambda name:
refuse(__name__, name)``-style hooks: a public name kernelflow lacks raises
:class:`~kernelflow.errors.UnsupportedFeatureError` (an ``ImportError`` whose
message names the feature and points to README "Flyte compatibility"), so a
Flyte program stops at the line that uses it, with that message, instead of an
``AttributeError`` deep in a module. Private and dunder names stay plain
``AttributeError`` for the tools that probe them. A missing module under one of
Flyte's packages (``kernelflow.extras...``) is refused the same way, by
:class:`FlyteModuleFinder`.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from typing import NoReturn

from kernelflow._core.errors import UnsupportedFeatureError

# Flyte's sub-packages (``flytekit.X``, and the plugins): a module under one of
# them that kernelflow lacks is refused by name, not "No module named ...".
FLYTE_PACKAGES = frozenset(
    [
        "artifacts",
        "clients",
        "clis",
        "configuration",
        "core",
        "deck",
        "exceptions",
        "experimental",
        "extend",
        "extras",
        "image_spec",
        "interactive",
        "interfaces",
        "models",
        "plugins",
        "remote",
        "sensor",
        "tools",
        "types",
    ]
)


def refuse(module: str, name: str, why: str = "") -> NoReturn:
    if name.startswith("_"):
        raise AttributeError(f"module {module!r} has no attribute {name!r}")
    raise UnsupportedFeatureError(f"{flyte_name(module)}.{name}", why=why)


def refuse_attribute(owner: str, name: str, flyte_has: frozenset[str]) -> NoReturn:
    """An attribute of a Flyte class kernelflow mirrors: one Flyte has is refused by name
    (UnsupportedFeatureError); any other is a plain AttributeError, so that ``getattr(obj,
    name, default)`` (code hashing, introspection) still works."""
    if name in flyte_has:
        raise UnsupportedFeatureError(f"{flyte_name(owner)}.{name}")
    raise AttributeError(f"{owner.rpartition('.')[2]!r} object has no attribute {name!r}")


def flyte_name(module: str) -> str:
    """``kernelflow.x.y`` as Flyte spells it: ``flytekit.x.y`` (plugins: ``flytekitplugins.y``)."""
    if module == "kernelflow.plugins" or module.startswith("kernelflow.plugins."):
        return "flytekitplugins" + module.removeprefix("kernelflow.plugins")
    return module.replace("kernelflow", "flytekit", 1)


class FlyteModuleFinder(importlib.abc.MetaPathFinder):
    """Last on ``sys.meta_path``: asked only for a module no other finder has."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        parts = fullname.split(".")
        if len(parts) < 2 or parts[0] != "kernelflow" or parts[1] not in FLYTE_PACKAGES:
            return None
        if any(part.startswith("_") for part in parts):
            return None
        raise UnsupportedFeatureError(flyte_name(fullname))


def install_finder() -> None:
    if not any(isinstance(finder, FlyteModuleFinder) for finder in sys.meta_path):
        sys.meta_path.append(FlyteModuleFinder())
