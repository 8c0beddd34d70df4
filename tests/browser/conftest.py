"""For the browser tests: each test's outcome, so a fixture can take a screenshot on failure."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Iterator[None]:
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report
