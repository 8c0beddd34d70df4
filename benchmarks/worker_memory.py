"""Figure: the scheduling process's peak memory while a Dask map makes 10 GB of outputs.

A map of 1,000 items each returning a 10 MB array runs on a ``distributed.LocalCluster``
(two worker processes, made by the run), then a second map reads each array
and a last task sums one number per item. Workers write what they make to the
store and read what they need from it; only references (a few hundred bytes an
item) reach the scheduling process, whose peak resident memory is measured in
a fresh process (``ru_maxrss``) so nothing else inflates it. The baseline in
the same run is that process's peak for the same workflow over 2 items of 1 MB:
what kernelflow, Dask and a local cluster cost before any output.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from benchmarks.common import ROOT, Config, Row, Section, isolated_home, verdict

TARGET_MB = 300


def run(config: Config) -> Section:
    items, megabytes = (20, 1) if config.quick else (1000, 10)
    with isolated_home(config, "worker-memory"):
        floor = _measure(2, 1)
        big = _measure(items, megabytes)
    peak = big.get("peak_mb")
    ok = None if peak is None else peak < TARGET_MB
    rows = [
        Row(
            "2 items of 1 MB: peak RSS of the scheduling process",
            floor.get("peak_mb"),
            "MB",
            note=floor.get("error", ""),
        ),
        Row(
            f"{items:,} items of {megabytes} MB ({items * megabytes / 1024:.1f} GB of outputs): "
            "peak RSS",
            peak,
            "MB",
            note=big.get("error", ""),
        ),
        Row("  its run took", big.get("seconds"), "s"),
    ]
    return Section(
        "worker_memory",
        f"Dask map of {items:,} x {megabytes} MB: the scheduling process's peak memory",
        f"< {TARGET_MB} MB peak resident memory in the process that runs the workflow",
        rows,
        verdict(ok),
        f"{peak:.0f} MB peak for {items * megabytes / 1024:.1f} GB of outputs"
        if peak is not None
        else "absent",
        notes=[
            "Measured in a fresh `python` process per case (`resource.getrusage(...).ru_maxrss`); "
            "the local cluster's scheduler runs in that process too, its workers do not.",
            "The outputs are written to the store on local disk by the workers; "
            "the run's sum checks that every item was made and read.",
        ],
    )


def _measure(items: int, megabytes: int) -> dict[str, float | str]:
    """Run the workflow in a fresh process; its peak RSS and run time, or an error."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    child = subprocess.run(
        [sys.executable, "-m", "benchmarks.worker_memory", str(items), str(megabytes)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=3600,
    )
    if child.returncode != 0:
        return {"error": (child.stderr.strip().splitlines() or ["failed"])[-1][:200]}
    return json.loads(child.stdout.strip().splitlines()[-1])


def _child(items: int, megabytes: int) -> None:
    import resource

    import kernelflow
    from benchmarks.tasks import blocks_workflow

    started = time.perf_counter()
    result = kernelflow.run(
        blocks_workflow(),
        {"indexes": list(range(items)), "megabytes": megabytes},
        parallel=2,
        backend="dask",
    )
    result.raise_for_status()
    seconds = time.perf_counter() - started
    expected = float(sum(range(items)))
    if result.outputs["o0"] != expected:
        raise SystemExit(f"wrong sum: {result.outputs['o0']} != {expected}")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux
    print(json.dumps({"peak_mb": peak_mb, "seconds": seconds}))


if __name__ == "__main__":
    _child(int(sys.argv[1]), int(sys.argv[2]))
