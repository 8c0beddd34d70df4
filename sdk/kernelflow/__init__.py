"""kernelflow: notebook cells and Python functions as a typed, cached, resumable DAG."""

from kernelflow._version import __version__

__all__ = ["__version__"]
