"""``kernelflow report`` opened offline in headless Chromium: the DAG, a deck and its plot show.

Debian's Chromium (``/usr/bin/chromium``) driven by Playwright, like
``test_jupyterlab.py``; ``make test-browser`` runs it. The page is opened from
a ``file://`` URL with every network request refused, so it must need nothing
but itself.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flyte_lifecycle import report as example

import kernelflow
from kernelflow.cli import main

pytestmark = pytest.mark.browser

CHROMIUM = Path(os.environ.get("KERNELFLOW_CHROMIUM", "/usr/bin/chromium"))


@pytest.fixture
def offline_page() -> Iterator[tuple[Any, list[str]]]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("Playwright is missing: pip install -e '.[browser]' (make test-browser does)")
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: apt-get install chromium (make test-browser)"
    fetched: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        try:
            page = browser.new_page()
            page.set_default_timeout(15_000)

            def refuse(route: Any) -> None:
                if not route.request.url.startswith(("file:", "data:", "about:")):
                    fetched.append(route.request.url)
                    route.abort()
                else:
                    route.continue_()

            page.route("**/*", refuse)
            yield page, fetched
        finally:
            browser.close()


def test_the_report_shows_the_dag_a_deck_and_its_plot_offline(
    offline_page: tuple[Any, list[str]], tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    page, fetched = offline_page
    kernelflow.run(example.report_wf, {"n": 5})
    result = kernelflow.run(example.report_wf, {"n": 5})
    out = tmp_path / "report.html"
    assert main(["report", result.run_id, "--out", str(out)]) == 0

    page.goto(out.as_uri())
    dag = page.locator("svg.kf-dag")
    expect(dag).to_be_visible()
    for name in ("load", "describe", "check"):
        expect(dag.locator("text", has_text=name)).to_be_visible()
    expect(page.locator("#task-check")).to_contain_text("failed")
    expect(page.locator("#row-load")).to_contain_text("cached")
    deck = page.frame_locator("#task-describe iframe.deck")
    expect(deck.locator("h2", has_text="Iris widths")).to_be_visible()
    expect(deck.locator("th", has_text="width").first).to_be_visible()
    plot = deck.locator("svg.kf-box")
    expect(plot).to_be_visible()
    box = plot.bounding_box()
    assert box is not None and box["width"] > 100 and box["height"] > 50
    page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
    assert fetched == []
