"""Figure 8: parallel runs. CPU-bound tasks on processes; waiting tasks on threads.

Two independent pure-Python tasks of ~1 s hold the GIL: only a process backend
(``loky``) can run them at once, so the speed-up with ``parallel=2`` says
whether it does. Twenty 0.1 s sleeping tasks need no CPU: threads overlap them.
"""

from __future__ import annotations

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
from benchmarks.tasks import naps_workflow, spin, two_spins_workflow

TARGET_SPEEDUP = 1.7
CALIBRATION = 200_000


def spin_size(seconds: float) -> int:
    """Loop count that makes one ``spin`` take about ``seconds`` here."""
    spin.fn(n=CALIBRATION, seed=1)  # warm
    took = min(timed(lambda: spin.fn(n=CALIBRATION, seed=1)) for _ in range(3))
    return max(1000, int(CALIBRATION * seconds / took))


def run(config: Config) -> Section:
    import kernelflow
    from kernelflow.engine.backends import get_executor

    spin_seconds = 0.05 if config.quick else 1.0
    naps, nap_seconds = (4, 0.02) if config.quick else (20, 0.1)
    spins = two_spins_workflow(spin_size(spin_seconds))
    trivial = two_spins_workflow(1)
    sleepers = naps_workflow(naps, nap_seconds)

    def go(wf: object, **options: object) -> float:
        return timed(lambda: kernelflow.run(wf, {}, **options).raise_for_status())  # type: ignore[arg-type]

    with isolated_home(config, "parallel"):
        cpu = interleaved(
            {
                "sequential": lambda _: go(spins),
                "loky, parallel=2": lambda _: go(spins, parallel=2, backend="loky"),
                "loky start-up": lambda _: go(trivial, parallel=2, backend="loky"),
            },
            config.reps(3),
            warmup=config.warmups,
        )
        io = interleaved(
            {
                "sequential": lambda _: go(sleepers),
                f"threading, parallel={naps}": lambda _: go(
                    sleepers, parallel=naps, backend="threading"
                ),
            },
            config.reps(3),
            warmup=config.warmups,
        )
    loky_kind = type(get_executor("loky", 2)).__name__
    seq, par = cpu.median("sequential"), cpu.median("loky, parallel=2")
    speedup = None if seq is None or par is None else seq / par
    io_seq, io_par = io.median("sequential"), io.median(f"threading, parallel={naps}")
    io_speedup = None if io_seq is None or io_par is None else io_seq / io_par
    rows = [
        Row(f"2 CPU tasks (~{(seq or 0) / 2:.2g} s each): sequential", seq, "s"),
        Row(
            "2 CPU tasks: loky, parallel=2",
            par,
            "s",
            ratio(par, seq),
            cpu.errors.get("loky, parallel=2", ""),
        ),
        Row("  speed-up", speedup, "x"),
        Row(
            "2 trivial tasks: loky, parallel=2 (dispatch cost; the pool is reused)",
            cpu.median("loky start-up"),
            "s",
            note=cpu.errors.get("loky start-up", ""),
        ),
        Row(f"{naps} sleeping tasks ({nap_seconds:g} s each): sequential", io_seq, "s"),
        Row(
            f"{naps} sleeping tasks: threading, parallel={naps}", io_par, "s", ratio(io_par, io_seq)
        ),
        Row("  speed-up", io_speedup, "x"),
    ]
    return Section(
        "parallel",
        "Parallel runs: CPU-bound (loky) and waiting (threading) tasks",
        f">= {TARGET_SPEEDUP:g}x for two CPU-bound tasks with parallel=2, backend=loky",
        rows,
        verdict(None if speedup is None else speedup >= TARGET_SPEEDUP),
        f"{speedup:.2f}x (CPU, loky)" if speedup is not None else "absent",
        notes=[
            f"`get_executor('loky', 2)` is a {loky_kind} in this build"
            + (
                ": the loky backend still runs in threads, so CPU-bound tasks cannot overlap."
                if loky_kind == "ThreadingExecutor"
                else "."
            ),
            "Ratios here are parallel time / sequential time.",
            "loky's worker pool outlives a run, so only the warm-up round paid for "
            "starting the workers.",
        ],
    )
