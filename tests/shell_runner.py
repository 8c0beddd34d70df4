"""Run cells on an in-process IPython shell for the tests (``tests/notebook/conftest.shell``).

The quick counterpart of ``notebook_runner``, which starts a kernel: the same
magics and session, without a process or messages.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from IPython.core.interactiveshell import InteractiveShell


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
