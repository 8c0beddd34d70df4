"""Nothing lost: a run killed mid-task resumes from its checkpoint; finished work stays done."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import kernelflow
from kernelflow import task, workflow
from kernelflow.errors import ResumeError

FLOW = """
import os
import time
from pathlib import Path

from kernelflow import current_context, task, workflow

LOG = Path(os.environ["FLOW_LOG"])
CRASH = os.environ.get("FLOW_CRASH", "")


def log(message):
    with LOG.open("a") as handle:
        handle.write(message + "\\n")


@task
def prepare(n: int) -> list[int]:
    log("prepare{suffix}")
    return list(range(n))


@task
def train(xs: list[int]) -> int:
    context = current_context()
    state = context.checkpoint.restore() or {{"epoch": 0, "total": 0}}
    log(f"train starts at epoch {{state['epoch']}}")
    for epoch in range(state["epoch"], 5):
        state = {{"epoch": epoch + 1, "total": state["total"] + sum(xs)}}
        context.checkpoint.save(state)
        log(f"epoch {{epoch + 1}}")
        if epoch + 1 == 3 and CRASH == "exit":
            os._exit(17)
        if epoch + 1 == 3 and CRASH == "hang":
            log("hanging")
            time.sleep(600)
    return state["total"]


@task
def report(total: int) -> str:
    log("report")
    return f"total={{total}}"


@workflow
def wf(n: int = 4) -> str:
    return report(total=train(xs=prepare(n=n)))
"""


def _setup(tmp_path: Path, suffix: str = "") -> tuple[Path, dict[str, str]]:
    (tmp_path / "flow.py").write_text(FLOW.format(suffix=suffix))
    env = dict(os.environ, FLOW_LOG=str(tmp_path / "log.txt"))
    return tmp_path / "log.txt", env


def _cli(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kernelflow", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _take(log: Path) -> list[str]:
    lines = log.read_text().splitlines()
    log.unlink()
    return lines


def _resume_completes(tmp_path: Path, log: Path, env: dict[str, str]) -> None:
    runs = _cli(tmp_path, env, "runs")
    assert "died" in runs.stdout, runs.stdout  # not "running" forever
    done = _cli(tmp_path, env, "run", "flow.py:wf", "--resume", "last")
    assert done.returncode == 0, done.stderr
    assert "o0 = 'total=30'" in done.stdout
    # prepare did not run again; train restarted from its last checkpoint (epoch 3)
    assert _take(log) == ["train starts at epoch 3", "epoch 4", "epoch 5", "report"]


def test_process_exit_inside_a_task_then_resume_last(tmp_path: Path) -> None:
    log, env = _setup(tmp_path)
    crashed = _cli(tmp_path, dict(env, FLOW_CRASH="exit"), "run", "flow.py:wf")
    assert crashed.returncode == 17
    assert _take(log) == ["prepare", "train starts at epoch 0", "epoch 1", "epoch 2", "epoch 3"]
    _resume_completes(tmp_path, log, env)


def test_sigkill_from_outside_then_resume_last(tmp_path: Path) -> None:
    log, env = _setup(tmp_path)
    process = subprocess.Popen(
        [sys.executable, "-m", "kernelflow", "run", "flow.py:wf"],
        cwd=tmp_path,
        env=dict(env, FLOW_CRASH="hang"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not (log.exists() and "hanging" in log.read_text()):
        assert process.poll() is None and time.monotonic() < deadline, "flow never reached epoch 3"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=30) == -signal.SIGKILL
    assert _take(log)[-2:] == ["epoch 3", "hanging"]
    _resume_completes(tmp_path, log, env)


def test_resume_refuses_when_a_finished_task_changed(tmp_path: Path) -> None:
    _, env = _setup(tmp_path)
    _cli(tmp_path, dict(env, FLOW_CRASH="exit"), "run", "flow.py:wf")
    _setup(tmp_path, suffix=" (edited)")  # prepare, which finished, has new code now
    done = _cli(tmp_path, env, "run", "flow.py:wf", "--resume", "last")
    assert done.returncode == 2
    assert "'prepare' changed" in done.stderr and "without --resume" in done.stderr


def test_keyboard_interrupt_is_recorded_and_resumable() -> None:
    calls: list[str] = []

    @task
    def first(n: int) -> int:
        calls.append("first")
        return n + 1

    @task
    def second(n: int) -> int:
        calls.append("second")
        if len(calls) == 2:
            raise KeyboardInterrupt
        return n * 10

    @workflow
    def interrupted(n: int = 1) -> int:
        return second(n=first(n=n))

    with pytest.raises(KeyboardInterrupt):
        kernelflow.run(interrupted, {"n": 1})
    assert kernelflow.runs()["status"].tolist() == ["interrupted"]
    result = kernelflow.run(interrupted, resume="last")
    assert result.outputs == {"o0": 20}
    assert calls == ["first", "second", "second"]
    assert result.tasks["first"].status == "cached"


def test_nothing_to_resume_and_other_parameters_are_refused() -> None:
    @task
    def ok(n: int) -> int:
        return n

    @workflow
    def fine(n: int = 1) -> int:
        return ok(n=n)

    with pytest.raises(ResumeError, match="no unfinished run"):
        kernelflow.run(fine, resume="last")
    run_id = kernelflow.run(fine).run_id
    with pytest.raises(ResumeError, match="nothing to resume"):
        kernelflow.run(fine, resume=run_id)


def _run_ids(tmp_path: Path, env: dict[str, str]) -> list[str]:
    """The runs of the store, oldest first."""
    listed = _cli(tmp_path, env, "runs").stdout.splitlines()[1:]
    return [line.split()[0] for line in reversed(listed)]


def test_resume_last_resumes_only_the_latest_run(tmp_path: Path) -> None:
    """A crashed run, resumed to the end, is not resumed again after a newer run finished."""
    log, env = _setup(tmp_path)
    assert _cli(tmp_path, dict(env, FLOW_CRASH="exit"), "run", "flow.py:wf").returncode == 17
    assert _cli(tmp_path, env, "run", "flow.py:wf", "--resume", "last").returncode == 0
    newer = _cli(tmp_path, env, "run", "flow.py:wf", "-p", "n", "100")
    assert newer.returncode == 0, newer.stderr
    _take(log)
    for _ in range(2):  # the same answer every time
        again = _cli(tmp_path, env, "run", "flow.py:wf", "--resume", "last")
        assert again.returncode == 2, again.stdout
        assert "nothing to resume" in again.stderr and "Traceback" not in again.stderr
        assert not log.exists()  # no task ran
    crashed, resumed, _ = _run_ids(tmp_path, env)
    by_id = _cli(tmp_path, env, "run", "flow.py:wf", "--resume", crashed)
    assert by_id.returncode == 2
    assert f"run {crashed} was resumed by run {resumed}, which succeeded" in by_id.stderr


def test_resume_last_never_skips_a_running_run_for_an_older_one(tmp_path: Path) -> None:
    log, env = _setup(tmp_path)
    assert _cli(tmp_path, dict(env, FLOW_CRASH="exit"), "run", "flow.py:wf").returncode == 17
    _take(log)
    running = subprocess.Popen(
        [sys.executable, "-m", "kernelflow", "run", "flow.py:wf", "-p", "n", "5"],
        cwd=tmp_path,
        env=dict(env, FLOW_CRASH="hang"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not (log.exists() and "hanging" in log.read_text()):
            assert running.poll() is None and time.monotonic() < deadline, "never reached epoch 3"
            time.sleep(0.05)
        refused = _cli(tmp_path, env, "run", "flow.py:wf", "--resume", "last")
        assert refused.returncode == 2, refused.stdout
        assert "is still running" in refused.stderr
    finally:
        running.kill()
        running.wait(timeout=30)
    assert _take(log)[-1] == "hanging"  # and nothing ran for the refused resume
    done = _cli(tmp_path, env, "run", "flow.py:wf", "--resume", "last")  # now it died
    assert done.returncode == 0, done.stderr
    assert "o0 = 'total=50'" in done.stdout  # the n=5 run, not the older n=4 one
