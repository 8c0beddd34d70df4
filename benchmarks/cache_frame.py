"""Figure 4: a cache hit whose input and output are a 1e6 x 10 DataFrame.

A hit costs hashing the input (buffers, no pickling) plus loading the output
(Parquet, checksum verified). flytekit's local cache, for the same task, hashes
the input with the ``HashMethod`` its docs recommend for frames and loads its
cached output.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from benchmarks.common import (
    Config,
    Section,
    absent_row,
    baseline_call,
    interleaved,
    isolated_home,
    profile_top,
    rows_against,
    timed,
    verdict,
)
from kernelflow import task

TARGET_SPEEDUP = 10.0
FLYTE = "flytekit (local cache, HashMethod)"


@task(cache=True)
def double(frame: pd.DataFrame) -> pd.DataFrame:
    return frame * 2


def make_frame(rows: int) -> pd.DataFrame:
    """The same frame the baseline worker builds (same generator, same seed)."""
    import numpy as np

    data = np.random.default_rng(0).standard_normal((rows, 10))
    return pd.DataFrame(data, columns=[f"c{i}" for i in range(10)])


def run(config: Config) -> Section:
    from kernelflow._core.hashing import content_hash
    from kernelflow.store.home import open_store

    rows = 10_000 if config.quick else 1_000_000
    frame = make_frame(rows)
    with isolated_home(config, "cache_frame"):
        double(frame=frame)  # fill the cache
        store = open_store()
        ref = store.artifacts.put(frame * 2)  # the same file the hit loads

        def hit() -> None:
            result = double(frame=frame)
            if result.shape != frame.shape:
                raise AssertionError("wrong cached value")

        cases: dict[str, Any] = {
            "kernelflow cache hit": lambda _: timed(hit),
            "  of which: content_hash(input)": lambda _: timed(lambda: content_hash(frame)),
            "  of which: ArtifactStore.get(output)": lambda _: timed(
                lambda: store.artifacts.get(ref)
            ),
        }
        measure = baseline_call(config, "flyte_df_hit", rows=rows)
        if measure is not None:
            cases[FLYTE] = measure
        timings = interleaved(cases, config.reps(), warmup=config.warmups)
        ms = timings.medians(scale=1e3)
        mine, flyte = ms["kernelflow cache hit"], ms.get(FLYTE)
        ok = None if mine is None or flyte is None else flyte / mine >= TARGET_SPEEDUP
        profile = profile_top(hit) if config.profile_if_missed(ok) else []
    parts = tuple(name for name in ms if name.strip().startswith("of which"))
    rows_out = rows_against("kernelflow cache hit", ms, "ms", timings, no_ratio=parts)
    if FLYTE not in cases:
        rows_out.append(absent_row(FLYTE, "ms", config))
    speedup = f"{flyte / mine:.1f}x faster than flytekit" if mine and flyte else "no baseline"
    return Section(
        "cache_frame",
        f"Cache hit with a {rows:,} x 10 DataFrame input and output",
        f">= {TARGET_SPEEDUP:g}x faster than flytekit's local cache hit",
        rows_out,
        verdict(ok),
        f"{mine:.0f} ms; {speedup}" if mine is not None else "absent",
        notes=[
            "The task is `double(frame) -> frame * 2`, called directly (a one-node run).",
            "flytekit keys a plain DataFrame input by its random upload URI, so without "
            "`Annotated[pd.DataFrame, HashMethod(...)]` it never hits at all.",
        ],
        profile=profile,
    )
