"""What every benchmark shares: the config, interleaved timing, isolated stores, rows.

Timing rules (the issue's): a warm-up, then several repetitions whose median is
reported; the cases of one comparison run interleaved (A, B, A, B, ...) in the
same process run, so that a noisy neighbour or a thermal drift hits both sides.
Nothing here asserts a timing: benchmarks measure and report.
"""

from __future__ import annotations

import contextlib
import cProfile
import os
import pstats
import re
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ENTRY_CHAIN = 0.9
"""Profile lines above this share of the total are the call chain down from ``run``."""
Measure = Callable[[int], float]
"""One repetition of a case: gets the repetition index, returns the seconds it took."""
ROUNDS: list[tuple[int, int]] = []
"""(repetitions, warm-up rounds) of every :func:`interleaved` call, for the report."""


@dataclass
class Config:
    """How the run was asked for: sizes (quick or full), repetitions, baselines."""

    quick: bool = False
    repeats: int = 5
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="kf-bench-")))
    baselines: Any = None
    """A :class:`benchmarks.baselines.BaselineWorker`, or None when they are absent."""
    baseline_note: str = "skipped (--no-baselines)"

    def reps(self, full: int | None = None) -> int:
        """Repetitions for a case: 1 in quick mode, else ``full`` (default: --repeat)."""
        return 1 if self.quick else (full or self.repeats)

    def profile_if_missed(self, ok: bool | None) -> bool:
        """Profile a figure that missed its target (not in quick mode: tiny sizes mislead)."""
        return ok is False and not self.quick

    @property
    def warmups(self) -> int:
        """Warm-up rounds before the measured ones: none in quick mode (a smoke test)."""
        return 0 if self.quick else 1


@dataclass
class Row:
    """One measured case of a figure; ``value`` None means absent (with ``note`` why)."""

    case: str
    value: float | None
    unit: str
    ratio: float | None = None
    note: str = ""


@dataclass
class Section:
    """One figure of the report."""

    key: str
    title: str
    target: str
    rows: list[Row]
    verdict: str = "n/a"
    summary: str = ""
    notes: list[str] = field(default_factory=list)
    profile: list[str] = field(default_factory=list)
    profile_title: str = "Where the time goes (cProfile of one kernelflow repetition)"
    seconds: float = 0.0
    rounds: list[tuple[int, int]] = field(default_factory=list)
    """(repetitions, warm-up rounds) of each comparison measured for this figure."""


@dataclass
class Timings:
    """Seconds per repetition for each case of a comparison, and why a case failed."""

    times: dict[str, list[float]]
    errors: dict[str, str]

    def median(self, case: str, scale: float = 1.0) -> float | None:
        """Median seconds of ``case`` times ``scale``; None if it never ran."""
        values = self.times.get(case)
        return statistics.median(values) * scale if values else None

    def medians(self, scale: float = 1.0) -> dict[str, float | None]:
        return {case: self.median(case, scale) for case in self.times}

    def paired_ratios(self, case: str, base: str) -> list[float]:
        """``case`` / ``base`` in each round: the two ran back to back, so a drift of
        the machine between rounds cancels out (the medians of each would not)."""
        pairs = zip(self.times.get(case, []), self.times.get(base, []))
        return [mine / theirs for mine, theirs in pairs if theirs]


def interleaved(cases: Mapping[str, Measure], repeats: int, warmup: int = 1) -> Timings:
    """Run the cases round-robin (A, B, A, B, ...); warm-up rounds are discarded.

    A case that raises is dropped from the following rounds and reported absent
    with its error, so one broken baseline does not lose the whole figure.
    """
    times: dict[str, list[float]] = {name: [] for name in cases}
    errors: dict[str, str] = {}
    ROUNDS.append((repeats, warmup))
    for round_ in range(warmup + repeats):
        for name, measure in cases.items():
            if name in errors:
                continue
            try:
                seconds = measure(round_)
            except Exception as error:
                errors[name] = f"failed: {type(error).__name__}: {error}"[:300]
                continue
            if round_ >= warmup:
                times[name].append(seconds)
    return Timings(times, errors)


def timed(fn: Callable[[], Any]) -> float:
    """Seconds ``fn()`` took (perf_counter)."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


@contextlib.contextmanager
def isolated_home(config: Config, name: str) -> Iterator[Path]:
    """A fresh ``KERNELFLOW_HOME`` under the run's workdir, restored afterwards."""
    with using_home(Path(tempfile.mkdtemp(prefix=f"{name}-", dir=config.workdir))) as home:
        yield home


@contextlib.contextmanager
def using_home(home: Path) -> Iterator[Path]:
    """``KERNELFLOW_HOME=home`` for this process and the kernels it starts."""
    previous = os.environ.get("KERNELFLOW_HOME")
    os.environ["KERNELFLOW_HOME"] = str(home)
    try:
        yield home
    finally:
        if previous is None:
            os.environ.pop("KERNELFLOW_HOME", None)
        else:
            os.environ["KERNELFLOW_HOME"] = previous


def ratio(ours: float | None, theirs: float | None) -> float | None:
    """kernelflow / baseline (for times: < 1 means kernelflow is faster)."""
    if ours is None or theirs is None or theirs == 0:
        return None
    return ours / theirs


def verdict(ok: bool | None) -> str:
    if ok is None:
        return "n/a"
    return "met" if ok else "missed"


def baseline_call(config: Config, op: str, **args: Any) -> Measure | None:
    """A Measure that asks the baselines worker for one repetition, or None without it."""
    worker = config.baselines
    if worker is None:
        return None

    def measure(round_: int) -> float:
        return float(worker.call(op, round=round_, **args))

    return measure


def rows_against(
    reference: str,
    shown: Mapping[str, float | None],
    unit: str,
    timings: Timings,
    *,
    no_ratio: tuple[str, ...] = (),
) -> list[Row]:
    """A row per case; ratio = the reference case's median time / the row's median time."""
    mine = timings.median(reference)
    rows = []
    for name, value in shown.items():
        share = None if name == reference or name in no_ratio else ratio(mine, timings.median(name))
        rows.append(Row(name, value, unit, share, timings.errors.get(name, "")))
    return rows


def absent_row(case: str, unit: str, config: Config, why: str = "") -> Row:
    return Row(case, None, unit, note=why or config.baseline_note)


def profile_top(fn: Callable[[], Any], limit: int = 8) -> list[str]:
    """cProfile ``fn()`` once: the functions with the most own time, then kernelflow's
    own functions by cumulative time (which part of the engine the time is spent under).
    """
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        fn()
    finally:
        profiler.disable()
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    total = sum(row[2] for row in stats.values()) or 1.0
    lines = [f"profiled total {total * 1e3:.1f} ms; top functions by own time:"]
    by_own = sorted(stats.items(), key=lambda item: item[1][2], reverse=True)
    for (filename, line, function), (_, calls, own, cumulative, _) in by_own[:limit]:
        where = _short_path(filename, line, function)
        lines.append(
            f"  {own / total:5.1%} own  {cumulative / total:6.1%} cum  {calls:6d}x  {where}"
        )
    lines.append("kernelflow functions by cumulative time (below the entry-point chain):")
    ours = [
        item
        for item in stats.items()
        if "/kernelflow" in item[0][0] and item[1][3] < ENTRY_CHAIN * total
    ]
    by_cumulative = sorted(ours, key=lambda item: item[1][3], reverse=True)
    for (filename, line, function), (_, calls, own, cumulative, _) in by_cumulative[:limit]:
        where = _short_path(filename, line, function)
        lines.append(
            f"  {own / total:5.1%} own  {cumulative / total:6.1%} cum  {calls:6d}x  {where}"
        )
    return lines


def _short_path(filename: str, line: int, function: str) -> str:
    if filename == "~":
        return function
    filename = re.sub(r"^.*?(/sdk/|/jupyter_ext/|/site-packages/|/lib/python3\.\d+/)", "", filename)
    return f"{filename}:{line}({function})"
