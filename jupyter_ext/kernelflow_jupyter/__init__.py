"""The IPython extension: ``%load_ext kernelflow`` (or ``kernelflow_jupyter``).

Loading registers ``%%task`` and ``%workflow`` and a per-kernel session;
unloading removes what loading added.
"""

from __future__ import annotations

from typing import Any

_state: dict[int, Any] = {}


def load_ipython_extension(ipython: Any) -> None:
    from kernelflow import api
    from kernelflow.errors import KernelflowError
    from kernelflow_jupyter.magics import KernelflowMagics, show_kernelflow_error

    if id(ipython) in _state:
        return
    session = api.open_kernel_session(ipython)
    ipython.register_magics(KernelflowMagics(ipython, session))
    if getattr(ipython, "kernel", None) is not None:  # a front end to show widgets in
        from kernelflow_jupyter.widgets import view_for_started_run

        api.add_ambient_listener(view_for_started_run)
    previous = (ipython.custom_exceptions, getattr(ipython, "CustomTB", None))
    ipython.set_custom_exc((KernelflowError,), show_kernelflow_error)
    _state[id(ipython)] = (session, previous)


def unload_ipython_extension(ipython: Any) -> None:
    from kernelflow import api

    state = _state.pop(id(ipython), None)
    if state is None:
        return
    api.close_kernel_session(ipython)
    from kernelflow_jupyter.widgets import view_for_started_run

    api.remove_ambient_listener(view_for_started_run)
    _, (exceptions, handler) = state
    ipython.magics_manager.magics["cell"].pop("task", None)
    ipython.magics_manager.magics["line"].pop("workflow", None)
    if handler is not None:
        ipython.set_custom_exc(exceptions, handler)
    else:
        ipython.custom_exceptions = ()


def session_of(ipython: Any) -> Any:
    """The kernelflow session of a shell (for tests and advanced use)."""
    return _state[id(ipython)][0]
