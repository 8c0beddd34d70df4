"""Rendering the benchmark report (markdown) and describing the machine it ran on.

A figure without the machine, the versions and the command that repeats it
cannot be checked by anyone else; the report always carries all three.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import sys
from collections.abc import Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from benchmarks.common import Config, Row, Section

PACKAGES = (
    "kernelflow",
    "pandas",
    "numpy",
    "pyarrow",
    "xxhash",
    "joblib",
    "cloudpickle",
    "ipython",
    "ipykernel",
    "nbclient",
    "papermill",
)
COMMAND = ".venv/bin/python -m benchmarks"


def machine(config: Config) -> dict[str, str]:
    """Cores, CPU, memory, Python, platform and package versions, as report lines."""
    info = {
        "cores": str(os.cpu_count()),
        "CPU": _cpu_model(),
        "memory": _memory(),
        "Python": f"{platform.python_version()} ({sys.implementation.name})",
        "platform": platform.platform(),
        "packages (project venv)": ", ".join(f"{p} {_version(p)}" for p in PACKAGES),
    }
    worker = config.baselines
    if worker is not None:
        versions = ", ".join(f"{k} {v}" for k, v in worker.versions.items())
        info["packages (baselines venv)"] = versions
    else:
        info["baselines"] = config.baseline_note
    return info


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "absent"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as file:
            for line in file:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory() -> str:
    try:
        with open("/proc/meminfo") as file:
            kilobytes = int(file.readline().split()[1])
        return f"{kilobytes / 1024**2:.1f} GiB"
    except (OSError, ValueError, IndexError):
        return "unknown"


def command_for(key: str, config: Config) -> str:
    """The command that measures one figure again."""
    extra = " --quick" if config.quick else ""
    extra += "" if config.baselines is not None else " --no-baselines"
    return f"{COMMAND} --only {key}{extra}"


def render(
    sections: Sequence[Section],
    info: Mapping[str, str],
    config: Config,
    *,
    started: dt.datetime,
    seconds: float,
    numbers: Mapping[str, int],
) -> str:
    """The whole report: header, machine, summary table, then one part per figure."""
    lines = _header(config, started, seconds)
    lines += ["## Machine", "", "| | |", "|---|---|"]
    lines += [f"| {key} | {_cell(value)} |" for key, value in info.items()]
    lines += ["", "## Summary", ""]
    lines += ["| # | figure | target | measured | verdict | seconds |", "|---|---|---|---|---|---|"]
    for section in sections:
        number = numbers[section.key]
        lines.append(
            f"| {number} | [{_cell(section.title)}](#{number}-{section.key}) | "
            f"{_cell(section.target)} | {_cell(section.summary)} | "
            f"**{section.verdict}** | {section.seconds:.0f} |"
        )
    for section in sections:
        lines += ["", *_section(section, numbers[section.key], config)]
    return "\n".join(lines).rstrip() + "\n"


def _header(config: Config, started: dt.datetime, seconds: float) -> list[str]:
    mode = "quick (tiny sizes, 1 repetition, no warm-up: a smoke test, not figures)"
    if not config.quick:
        mode = f"full (--repeat {config.repeats}; kernel runs and big graphs use fewer)"
    return [
        "# kernelflow benchmarks",
        "",
        f"Written by `{COMMAND}` (`make bench`) on {started:%Y-%m-%d %H:%M} UTC; "
        f"the run took {seconds / 60:.1f} min. Mode: {mode}.",
        "",
        "How to read it: each figure is the median of its repetitions (counted "
        "beside each figure's command), after a warm-up round that is not counted; "
        "the cases of a figure ran interleaved (A, B, A, B, ...) in the same run, so "
        "drift hits all of them alike. **ratio** is kernelflow's time / the row's "
        "time (below 1: kernelflow is faster), unless a figure says otherwise. Each "
        "figure has the command that measures it again. Nothing here is asserted by "
        "the tests; the targets come from the issue, and the verdicts say honestly "
        "whether they are met.",
        "",
    ]


def _section(section: Section, number: int, config: Config) -> list[str]:
    lines = [
        f"<a id='{number}-{section.key}'></a>",
        f"## {number}. {section.title}",
        "",
        f"Target: {section.target}. Verdict: **{section.verdict}** ({section.summary}).",
        "",
        f"Repeat: `{command_for(section.key, config)}` ({_rounds(section.rounds)})",
        "",
        "| case | value | unit | ratio | note |",
        "|---|---:|---|---:|---|",
    ]
    lines += [_row(row) for row in section.rows]
    lines.append("")
    lines += [f"- {note}" for note in section.notes]
    if section.profile:
        lines += ["", f"{section.profile_title}:", "", "```"]
        lines += section.profile
        lines.append("```")
    return lines


def _rounds(rounds: Sequence[tuple[int, int]]) -> str:
    """'5 repetitions after 1 warm-up round', or each distinct combination."""
    texts = []
    for repeats, warmup in dict.fromkeys(rounds):
        text = f"{repeats} repetition{'s' if repeats != 1 else ''}"
        texts.append(f"{text} after {warmup} warm-up round" if warmup else f"{text}, no warm-up")
    return "; ".join(texts) or "no repetitions"


def _row(row: Row) -> str:
    value = "absent" if row.value is None else number(row.value)
    share = "" if row.ratio is None else number(row.ratio)
    return f"| {_cell(row.case)} | {value} | {row.unit} | {share} | {_cell(row.note)} |"


def number(value: float) -> str:
    """Three significant figures, without scientific notation for everyday sizes."""
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 0.01 or magnitude == 0:
        return f"{value:.2f}"
    return f"{value:.2g}"


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")
