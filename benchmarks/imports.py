"""Figure 10: import time, and loading the extension in a kernel.

Each figure is a fresh interpreter importing the module, minus a fresh
interpreter doing nothing (same venv), interleaved. ``python -X importtime``
shows which modules the import pulls in. Loading the extension is timed inside
a fresh kernel around ``%load_ext kernelflow``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.common import (
    Config,
    Row,
    Section,
    interleaved,
    isolated_home,
    ratio,
    timed,
    verdict,
)
from benchmarks.notebooks import run_and_report

TARGET_IMPORT = 0.3
TARGET_EXTENSION = 0.5
KERNELFLOW = "import kernelflow"


def _python(python: str | Path, code: str) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    env["HAMILTON_TELEMETRY_ENABLED"] = "false"
    command: Sequence[str] = [str(python), "-c", code]
    return timed(lambda: subprocess.run(command, check=True, env=env, capture_output=True))


def run(config: Config) -> Section:
    ours = sys.executable
    cases: dict[str, Any] = {
        "empty interpreter (project venv)": lambda _: _python(ours, "pass"),
        KERNELFLOW: lambda _: _python(ours, "import kernelflow"),
        "from kernelflow import run (engine and store)": lambda _: _python(
            ours, "from kernelflow import run"
        ),
    }
    theirs = _baseline_python(config)
    if theirs is not None:
        cases["empty interpreter (baselines venv)"] = lambda _: _python(theirs, "pass")
        cases["import flytekit"] = lambda _: _python(theirs, "import flytekit")
        cases["import hamilton.driver"] = lambda _: _python(theirs, "import hamilton.driver")
    timings = interleaved(cases, config.reps(7), warmup=config.warmups)
    seconds = timings.medians(scale=1e3)
    net = _net(seconds)
    extension = _extension_load(config)
    mine = net.get(KERNELFLOW)
    rows = [
        Row(
            name,
            value,
            "ms",
            None if name == KERNELFLOW or name.startswith("empty") else ratio(mine, value),
            timings.errors.get(name, ""),
        )
        for name, value in net.items()
    ]
    if theirs is None:
        rows += [
            Row(n, None, "ms", note=config.baseline_note)
            for n in ("import flytekit", "import hamilton.driver")
        ]
    rows.append(Row("%load_ext kernelflow in a fresh kernel", extension, "ms"))
    ok = None
    if mine is not None and extension is not None:
        ok = mine <= TARGET_IMPORT * 1e3 and extension <= TARGET_EXTENSION * 1e3
    return Section(
        "imports",
        "Import time and extension load",
        f"import kernelflow <= {TARGET_IMPORT:g} s; %load_ext kernelflow <= {TARGET_EXTENSION:g} s",
        rows,
        verdict(ok),
        _summary(mine, extension),
        notes=[
            "Import rows: median wall time of a fresh interpreter running the import, minus "
            "the median of an empty interpreter of the same venv (shown as its raw time).",
            "Ratio: kernelflow's import time / the row's import time.",
        ],
        profile=importtime_top(ours, "kernelflow"),
        profile_title="What `import kernelflow` loads (`python -X importtime`, largest cumulative)",
    )


def _baseline_python(config: Config) -> Path | None:
    worker = config.baselines
    return None if worker is None else worker.python


def _net(seconds: dict[str, float | None]) -> dict[str, float | None]:
    """Import rows minus the empty interpreter of their venv; empty rows stay raw."""
    net: dict[str, float | None] = {}
    for name, value in seconds.items():
        if name.startswith("empty") or value is None:
            net[name] = value
            continue
        venv = "baselines" if name in ("import flytekit", "import hamilton.driver") else "project"
        empty = seconds.get(f"empty interpreter ({venv} venv)")
        net[name] = None if empty is None else value - empty
    return net


def _extension_load(config: Config) -> float | None:
    cell = (
        "import json, time\n_t = time.perf_counter()\n"
        "get_ipython().run_line_magic('load_ext', 'kernelflow')\n"
        "print(json.dumps({'load': time.perf_counter() - _t}))"
    )

    def once(_: int) -> float:
        with isolated_home(config, "extension"):
            return float(run_and_report([cell], config.workdir)["load"])

    timings = interleaved({"load": once}, config.reps(3), warmup=config.warmups)
    return timings.median("load", scale=1e3)


def importtime_top(python: str | Path, module: str, limit: int = 8) -> list[str]:
    """The largest cumulative import times of ``import module`` (microseconds, from stderr)."""
    result = subprocess.run(
        [str(python), "-X", "importtime", "-c", f"import {module}"],
        capture_output=True,
        text=True,
        check=False,
    )
    entries = []
    for line in result.stderr.splitlines():
        fields = line.removeprefix("import time:").split("|")
        if not line.startswith("import time:") or len(fields) != 3:
            continue
        try:
            self_us, cumulative_us = int(fields[0]), int(fields[1])
        except ValueError:  # the header line
            continue
        entries.append((cumulative_us, self_us, fields[2].strip()))
    entries.sort(reverse=True)
    return [
        f"{c / 1e3:8.1f} ms cumulative, {s / 1e3:7.1f} ms self  {n}" for c, s, n in entries[:limit]
    ]


def _summary(mine: float | None, extension: float | None) -> str:
    parts = []
    if mine is not None:
        parts.append(f"import {mine:.0f} ms")
    if extension is not None:
        parts.append(f"%load_ext {extension:.0f} ms")
    return ", ".join(parts) or "absent"
