"""Workers die with their run: a SIGKILLed ``--parallel`` parent leaves no process behind.

Issue 16, finding 4: loky workers and the resource tracker of a killed run lived
on for minutes, still running the killed run's task and writing its checkpoints
while the resume of that run ran. The main test starts a real ``kernelflow run``
whose two tasks loop (for two minutes at most), SIGKILLs it (so none of its
cleanup code runs), and expects every process it had started to be gone within
:data:`EXIT_WITHIN` seconds, and the tasks to have stopped writing. The others
check that the watch never takes workers from a live process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

import kernelflow
from kernelflow import task, workflow
from kernelflow.engine.worker_lifetime import ORPHANED_EXIT_CODE, POLL_SECONDS

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX process tree")

FLOW = """
import os
import time
from pathlib import Path

from kernelflow import current_context, task, workflow

MARKERS = Path(os.environ["FLOW_MARKERS"])


@task
def spin(name: str) -> int:
    context = current_context()
    marker = MARKERS / f"{name}.txt"
    for tick in range(1200):  # two minutes at most, even if nothing stops it
        context.checkpoint.save({"tick": tick})
        with marker.open("a") as handle:
            handle.write(f"{os.getpid()} {tick}\\n")
        time.sleep(0.1)
    return tick


@workflow
def wf() -> tuple[int, int]:
    return spin(name="a"), spin(name="b")
"""

EXIT_WITHIN = 5.0
"""Seconds the killed run's processes get to exit (README, "Guarantees"); they take 0.05-0.4."""


@pytest.fixture
def flow(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    markers = tmp_path / "markers"
    markers.mkdir()
    (tmp_path / "flow.py").write_text(FLOW)
    yield markers, dict(os.environ, FLOW_MARKERS=str(markers))


def _start(tmp_path: Path, env: dict[str, str], backend: str) -> subprocess.Popen[bytes]:
    run = ["run", "flow.py:wf", "--parallel", "2", "--backend", backend]
    return subprocess.Popen(
        [sys.executable, "-m", "kernelflow", *run],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _wait_for_workers(process: subprocess.Popen[bytes], markers: Path) -> list[psutil.Process]:
    """The parent's process tree once both tasks run in workers (each wrote its marker)."""
    deadline = time.monotonic() + 120
    while not all((markers / f"{name}.txt").exists() for name in "ab"):
        assert process.poll() is None, "the run ended before its tasks started"
        assert time.monotonic() < deadline, "the tasks never started"
        time.sleep(0.05)
    tree = psutil.Process(process.pid).children(recursive=True)
    workers = {int(line.split()[0]) for name in "ab" for line in _lines(markers, name)}
    assert workers <= {child.pid for child in tree}, "the tasks do not run in child processes"
    return tree


def _lines(markers: Path, name: str) -> list[str]:
    return (markers / f"{name}.txt").read_text().splitlines()


def _alive(processes: list[psutil.Process]) -> list[psutil.Process]:
    """Processes still running; an orphaned zombie waiting for its reaper counts as gone."""
    alive = []
    for proc in processes:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(proc)
        except psutil.NoSuchProcess:
            pass
    return alive


def _survivors_after(tree: list[psutil.Process], seconds: float) -> tuple[list[str], float]:
    """Who is still alive once ``seconds`` have passed (or nobody is), and when that was."""
    start = time.monotonic()
    while (alive := _alive(tree)) and time.monotonic() - start < seconds:
        time.sleep(0.05)
    return [f"{proc.pid} {' '.join(proc.cmdline()[:4])}" for proc in alive], (
        time.monotonic() - start
    )


def _stop(process: subprocess.Popen[bytes], tree: list[psutil.Process]) -> None:
    """Whatever the outcome, nothing this test started outlives it."""
    if process.poll() is None:
        process.kill()
        process.wait(timeout=30)
    for proc in _alive(tree):
        proc.kill()
    psutil.wait_procs(tree, timeout=10)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["loky", "dask"])
def test_a_killed_parallel_run_leaves_no_process_behind(
    tmp_path: Path, flow: tuple[Path, dict[str, str]], backend: str
) -> None:
    markers, env = flow
    process = _start(tmp_path, env, backend)
    tree: list[psutil.Process] = []
    try:
        tree = _wait_for_workers(process, markers)
        process.send_signal(signal.SIGKILL)
        assert process.wait(timeout=30) == -signal.SIGKILL
        survivors, took = _survivors_after(tree, EXIT_WITHIN)
        assert not survivors, f"alive {EXIT_WITHIN:g} s after the parent was killed: {survivors}"
        print(f"{backend}: {len(tree)} processes gone {took:.2f} s after the kill")
        written = [len(_lines(markers, name)) for name in "ab"]
        time.sleep(0.5)
        assert [len(_lines(markers, name)) for name in "ab"] == written, "a task still writes"
    finally:
        _stop(process, tree)


# --- a live run keeps its workers -------------------------------------------------


@task
def whereabouts() -> list[Any]:
    return [os.getpid(), [thread.name for thread in threading.enumerate()]]


@workflow
def where() -> list[Any]:
    return whereabouts()


def test_loky_workers_watch_their_parent_and_serve_run_after_run() -> None:
    first = kernelflow.run(where, parallel=2, backend="loky").outputs["o0"]
    pool = {child.pid for child in psutil.Process().children()}
    time.sleep(4 * POLL_SECONDS)  # the watch has looked at a living parent a few times
    second = kernelflow.run(where, parallel=2, backend="loky").outputs["o0"]
    assert {first[0], second[0]} <= pool  # the second run reused the first run's workers
    assert "kernelflow-parent-watch" in first[1]


def test_a_worker_whose_parent_died_before_it_started_exits_at_once() -> None:
    program = "from kernelflow.engine.worker_lifetime import exit_with_parent; exit_with_parent(1)"
    ran = subprocess.run([sys.executable, "-c", program], timeout=60)
    assert ran.returncode == ORPHANED_EXIT_CODE
