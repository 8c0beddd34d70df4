"""The module exported notebooks import ``start_exported_run`` from.

Every notebook exported so far calls it by this name, so it stays; the code is
in the kernel adapter (:mod:`kernelflow.notebook.kernel.exported`).
"""

from kernelflow.notebook.kernel.exported import check_parameters, start_exported_run

__all__ = ["check_parameters", "start_exported_run"]
