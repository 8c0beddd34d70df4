"""Shared fixtures: every test gets its own store, so runs never leak between tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"

if str(EXAMPLES) not in sys.path:
    sys.path.insert(0, str(EXAMPLES))


@pytest.fixture(autouse=True)
def store_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh ``$KERNELFLOW_HOME`` for each test."""
    home = tmp_path / "kernelflow-home"
    monkeypatch.setenv("KERNELFLOW_HOME", str(home))
    return home
