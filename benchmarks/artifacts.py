"""Figure 5: writing and reading a 1e6 x 10 DataFrame artifact, in MB/s.

``ArtifactStore.put``/``get`` choose Parquet for a frame that round-trips, and
add a checksum (and for pickles an HMAC) on top of the encoding. Baselines: the
same frame through plain ``pickle`` protocol 5 and plain ``DataFrame.to_parquet``
to a file, without the store's checks. A wrapper object that Parquet cannot hold
forces the store's own pickle path.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.common import Config, Row, Section, interleaved, isolated_home, ratio, timed


@dataclass
class Boxed:
    """Not a DataFrame, so the store pickles it (protocol 5)."""

    frame: Any


def run(config: Config) -> Section:
    import pandas as pd

    from benchmarks.cache_frame import make_frame
    from kernelflow.store.artifacts import ArtifactStore

    rows = 10_000 if config.quick else 1_000_000
    frame = make_frame(rows)
    megabytes = frame.memory_usage(index=True, deep=True).sum() / 1e6
    with isolated_home(config, "artifacts") as home:
        store = ArtifactStore(home)
        refs = {"parquet": store.put(frame), "pickle": store.put(Boxed(frame))}
        plain = {"pickle": Path(home) / "plain.pkl", "parquet": Path(home) / "plain.parquet"}
        _plain_write_pickle(frame, plain["pickle"])
        frame.to_parquet(plain["parquet"])

        def put(value: Any, fmt: str) -> float:
            store.delete(refs[fmt])  # content-addressed: a file already there is not rewritten
            return timed(lambda: store.put(value))

        cases = {
            "kernelflow put (Parquet)": lambda _: put(frame, "parquet"),
            "plain DataFrame.to_parquet": lambda _: timed(
                lambda: frame.to_parquet(plain["parquet"])
            ),
            "kernelflow put (pickle, forced)": lambda _: put(Boxed(frame), "pickle"),
            "plain pickle protocol 5 write": lambda _: timed(
                lambda: _plain_write_pickle(frame, plain["pickle"])
            ),
            "kernelflow get (Parquet)": lambda _: timed(lambda: store.get(refs["parquet"])),
            "plain pd.read_parquet": lambda _: timed(lambda: pd.read_parquet(plain["parquet"])),
            "kernelflow get (pickle)": lambda _: timed(lambda: store.get(refs["pickle"])),
            "plain pickle protocol 5 read": lambda _: timed(
                lambda: pickle.loads(plain["pickle"].read_bytes())
            ),
        }
        timings = interleaved(cases, config.reps(), warmup=config.warmups)
        sizes = {fmt: (Path(home) / ref.path).stat().st_size / 1e6 for fmt, ref in refs.items()}
    seconds = timings.medians()
    against = {  # each kernelflow case against the plain way of doing the same job
        "kernelflow put (Parquet)": "plain DataFrame.to_parquet",
        "kernelflow put (pickle, forced)": "plain pickle protocol 5 write",
        "kernelflow get (Parquet)": "plain pd.read_parquet",
        "kernelflow get (pickle)": "plain pickle protocol 5 read",
    }
    rows_out = []
    for name, value in seconds.items():
        base = against.get(name)
        speed = None if value is None else megabytes / value
        share = ratio(value, seconds.get(base)) if base else None
        rows_out.append(Row(name, speed, "MB/s", share, timings.errors.get(name, "")))
    parquet_put = seconds["kernelflow put (Parquet)"]
    parquet_get = seconds["kernelflow get (Parquet)"]
    summary = (
        f"put {megabytes / parquet_put:.0f} MB/s, get {megabytes / parquet_get:.0f} MB/s (Parquet)"
        if parquet_put and parquet_get
        else "absent"
    )
    return Section(
        "artifacts",
        f"Artifact write/read of a {rows:,} x 10 DataFrame ({megabytes:.0f} MB in memory)",
        "none (reported)",
        rows_out,
        "n/a",
        summary,
        notes=[
            "MB/s = in-memory size of the frame / median seconds; 1 MB = 1e6 bytes.",
            f"Files: Parquet {sizes['parquet']:.1f} MB (snappy), pickle {sizes['pickle']:.1f} MB.",
            "Ratio column: kernelflow time / the plain way of doing the same job (the row below) "
            "(the store adds checksums, an HMAC for pickles, and an atomic rename).",
            "Random floats do not compress; real data usually makes Parquet smaller.",
        ],
    )


def _plain_write_pickle(frame: Any, path: Path) -> None:
    with path.open("wb") as file:
        pickle.dump(frame, file, protocol=5)
