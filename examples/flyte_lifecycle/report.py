"""A run for ``kernelflow report``: a cached task, a task with a deck, a task that fails."""

from __future__ import annotations

import pandas as pd

from kernelflow import Deck, task, workflow
from kernelflow.deck.renderer import BoxRenderer, MarkdownRenderer, TopFrameRenderer


@task(cache=True, cache_version="1")
def load(n: int) -> pd.DataFrame:
    return pd.DataFrame({"width": [float(i) for i in range(n)], "label": ["a"] * n})


@task(enable_deck=True)
def describe(df: pd.DataFrame) -> int:
    Deck("Overview", MarkdownRenderer().to_html("## Iris widths\n\nThe `width` column."))
    Deck("Top rows", TopFrameRenderer(max_rows=3).to_html(df))
    Deck("Box plot", BoxRenderer("width").to_html(df))
    return len(df)


@task
def check(rows: int, fail: bool) -> int:
    if fail:
        raise ValueError(f"{rows} rows is not enough")
    return rows


@workflow
def report_wf(n: int = 5, fail: bool = True) -> int:
    df = load(n=n)
    rows = describe(df=df)
    return check(rows=rows, fail=fail)
