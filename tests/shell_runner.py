"""Run cells on an in-process IPython shell for the tests (``tests/notebook/conftest.shell``).

The quick counterpart of ``notebook_runner``, which starts a kernel: the same
magics and session, without a process or messages.
"""

from __future__ import annotations

import atexit
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config


@contextmanager
def kernel_shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[InteractiveShell]:
    """A fresh shell (it is a singleton) with the extension loaded; unloaded afterwards."""
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.delenv("VIRTUAL_ENV", raising=False)  # else IPython may edit sys.path
    config = Config()
    config.HistoryManager.enabled = False  # no history database in the user's home
    InteractiveShell.clear_instance()
    ipython = InteractiveShell.instance(config=config)
    try:
        ipython.run_line_magic("load_ext", "kernelflow")
        yield ipython
    finally:
        if "kernelflow" in ipython.extension_manager.loaded:
            ipython.run_line_magic("unload_ext", "kernelflow")
        atexit.unregister(ipython.atexit_operations)
        ipython.restore_sys_module_state()  # sys.modules["__main__"] is pytest's again
        InteractiveShell.clear_instance()


def run(shell: InteractiveShell, source: str) -> Any:
    """Run a cell that must succeed; return its value."""
    result = shell.run_cell(source, store_history=False)
    error = result.error_before_exec or result.error_in_exec
    if error is not None:
        raise AssertionError(f"the cell failed: {error!r}\n{source}")
    return result.result


def fails(shell: InteractiveShell, source: str) -> BaseException:
    """Run a cell that must fail; return its error."""
    result = shell.run_cell(source, store_history=False)
    error = result.error_before_exec or result.error_in_exec
    assert error is not None, f"the cell did not fail:\n{source}"
    return error


def ran(tmp_path: Path) -> list[str]:
    """The names logged since the last call: which task bodies ran."""
    log = tmp_path / "ran.log"
    lines = log.read_text().splitlines() if log.exists() else []
    log.unlink(missing_ok=True)
    return lines
