"""``%load_ext kernelflow``: find the Jupyter front end and let it load.

The front end (``kernelflow_jupyter``: magics, widgets) sits above the SDK and
registers itself in the ``kernelflow.ipython`` entry-point group, the way
papermill finds its engines; the SDK never imports it by name.
"""

from __future__ import annotations

from typing import Any

from kernelflow._core.errors import KernelflowError

ENTRY_POINT_GROUP = "kernelflow.ipython"


def front_end() -> Any:
    """The module that implements ``load_ipython_extension`` for kernelflow."""
    from importlib.metadata import entry_points

    found = sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda point: point.name)
    if not found:
        raise KernelflowError(
            "the kernelflow Jupyter extension is not installed",
            fix="pip install kernelflow (it installs kernelflow_jupyter), then "
            "%load_ext kernelflow again",
        )
    return found[0].load()


def load(ipython: Any) -> None:
    front_end().load_ipython_extension(ipython)


def unload(ipython: Any) -> None:
    front_end().unload_ipython_extension(ipython)
