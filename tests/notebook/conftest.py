"""The in-process shell every magics test shares (``test_session.py``, ``test_magics.py``)."""

from __future__ import annotations

import atexit
from collections.abc import Iterator
from pathlib import Path

import pytest
from IPython.core.interactiveshell import InteractiveShell
from shell_runner import run
from traitlets.config import Config


@pytest.fixture
def shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[InteractiveShell]:
    """A fresh shell with ``%load_ext kernelflow`` run, and a ``log(name)`` helper.

    The shell is a singleton: it is cleared before and after, and what it
    registered (its atexit hook, ``sys.modules["__main__"]``) is given back, so
    tests do not see each other's shells.
    """
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.delenv("VIRTUAL_ENV", raising=False)  # else IPython may edit sys.path
    config = Config()
    config.HistoryManager.enabled = False  # no history database in the user's home
    InteractiveShell.clear_instance()
    ipython = InteractiveShell.instance(config=config)
    try:
        ipython.run_line_magic("load_ext", "kernelflow")
        # A helper is setup code, hashed by its source: calling it leaves cache keys alone
        # (appending to a list in the namespace would change an input of the task).
        run(
            ipython,
            f"def log(name):\n    with open({str(tmp_path / 'ran.log')!r}, 'a') as f:\n"
            "        f.write(name + '\\n')",
        )
        yield ipython
    finally:
        if "kernelflow" in ipython.extension_manager.loaded:
            ipython.run_line_magic("unload_ext", "kernelflow")
        atexit.unregister(ipython.atexit_operations)
        ipython.restore_sys_module_state()  # sys.modules["__main__"] is pytest's again
        InteractiveShell.clear_instance()
