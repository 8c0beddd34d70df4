"""Chaos: a parallel run with checkpoints and a map node, SIGKILLed at random moments.

Each kill is followed by ``--resume last`` (killed again, at random, a bounded
number of times) until the run finishes. Its outputs must equal those of an
uninterrupted run, and no process of any killed run may be left behind. The
kill times come from a seeded generator, so a failure can be replayed with the
seed the assertion message names.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

FLOW = textwrap.dedent(
    """
    import time
    from kernelflow import current_context, map_task, task, workflow

    @task
    def prepare(n: int) -> list[int]:
        time.sleep(0.1)
        return list(range(1, n + 1))

    @task(cache=True)
    def train(seed: int) -> int:
        checkpoint = current_context().checkpoint
        state = checkpoint.restore() or {"epoch": 0, "acc": seed}
        for epoch in range(state["epoch"], 6):
            time.sleep(0.04)
            state = {"epoch": epoch + 1, "acc": state["acc"] * 3 + epoch}
            checkpoint.save(state)
        return state["acc"]

    @task
    def baseline(n: int) -> int:
        checkpoint = current_context().checkpoint
        state = checkpoint.restore() or {"step": 0, "total": 0}
        for step in range(state["step"], 8):
            time.sleep(0.05)
            state = {"step": step + 1, "total": state["total"] + n * step}
            checkpoint.save(state)
        return state["total"]

    @task
    def combine(scores: list[int], base: int) -> int:
        return sum(scores) * 1000 + base

    @workflow
    def wf(n: int = 6) -> int:
        seeds = prepare(n=n)
        return combine(scores=map_task(train)(seed=seeds), base=baseline(n=n))
    """
)
TOKEN_VARIABLE = "KERNELFLOW_CHAOS_TOKEN"
MAX_KILLS = 6


def _start(flow: Path, home: Path, token: str, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "KERNELFLOW_HOME": str(home), TOKEN_VARIABLE: token}
    return subprocess.Popen(
        [sys.executable, "-m", "kernelflow", "run", f"{flow}:wf", "--parallel", "2", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _output(done: subprocess.CompletedProcess[str] | tuple[str, str]) -> str:
    stdout = done[0] if isinstance(done, tuple) else done.stdout
    return next(line for line in stdout.splitlines() if line.startswith("o0 = "))


def _processes_with(token: str) -> list[int]:
    """Pids of live processes started for this test (they inherit the token)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().split(") ")[-1][:1]
        except OSError:
            continue
        if f"{TOKEN_VARIABLE}={token}".encode() in environ.split(b"\0") and state != "Z":
            found.append(int(entry.name))
    return found


def _wait_until_gone(token: str, seconds: float = 10.0) -> list[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        alive = _processes_with(token)
        if not alive:
            return []
        time.sleep(0.1)
    return _processes_with(token)


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux's /proc")
@pytest.mark.parametrize("seed", [7, 2024])
def test_random_kills_then_resume_give_the_uninterrupted_outputs(tmp_path: Path, seed: int) -> None:
    flow = tmp_path / "flow.py"
    flow.write_text(FLOW)
    token = f"chaos-{os.getpid()}-{seed}"
    started = time.monotonic()
    reference = _start(flow, tmp_path / "reference-home", token)
    expected = _output(reference.communicate(timeout=120))
    assert reference.returncode == 0
    whole = time.monotonic() - started  # kills land within a run of that length

    rng = random.Random(seed)
    home = tmp_path / "home"
    kills = 0
    resume: tuple[str, ...] = ()
    try:
        while True:
            process = _start(flow, home, token, *resume)
            if kills < MAX_KILLS:
                try:
                    process.wait(timeout=rng.uniform(0.15, 0.85) * whole)
                except subprocess.TimeoutExpired:
                    process.send_signal(signal.SIGKILL)
                    process.communicate()
                    kills += 1
                    resume = ("--resume", "last")
                    continue
            stdout, stderr = process.communicate(timeout=120)
            if process.returncode == 2 and "no unfinished run" in stderr:
                resume = ()  # killed before the run was recorded: start it afresh
                continue
            if process.returncode == 2 and "nothing to resume" in stderr:
                # killed after the run had finished (while the process was exiting):
                # its values are in the store; a new run finds the items in the cache
                resume = ()
                continue
            break
        assert process.returncode == 0, f"seed {seed}, after {kills} kills: {stderr}"
        assert kills >= 1, f"seed {seed}: no kill landed before the run ended"
        assert _output((stdout, stderr)) == expected, f"seed {seed}, after {kills} kills"
        assert _wait_until_gone(token) == [], f"seed {seed}: processes left behind"
    finally:
        for pid in _processes_with(token):
            os.kill(pid, signal.SIGKILL)
