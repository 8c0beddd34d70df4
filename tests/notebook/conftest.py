"""The in-process shell every magics test shares (``test_session.py``, ``test_magics.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from IPython.core.interactiveshell import InteractiveShell
from shell_runner import kernel_shell, run


@pytest.fixture
def shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[InteractiveShell]:
    """A fresh shell with ``%load_ext kernelflow`` run, and a ``log(name)`` helper.

    The shell is a singleton: it is cleared before and after, and what it
    registered (its atexit hook, ``sys.modules["__main__"]``) is given back, so
    tests do not see each other's shells.
    """
    with kernel_shell(tmp_path, monkeypatch) as ipython:
        # A helper is setup code, hashed by its source: calling it leaves cache keys alone
        # (appending to a list in the namespace would change an input of the task).
        run(
            ipython,
            f"def log(name):\n    with open({str(tmp_path / 'ran.log')!r}, 'a') as f:\n"
            "        f.write(name + '\\n')",
        )
        yield ipython
