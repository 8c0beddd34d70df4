"""The public home of kernelflow's errors: ``from kernelflow.errors import TaskFailedError``.

They are defined in the core layer (:mod:`kernelflow._core.errors`), which every
layer may import; this module only gives them their documented name.
"""

from kernelflow._core.errors import *  # noqa: F403
from kernelflow._core.errors import __all__ as __all__
