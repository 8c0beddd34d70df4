"""Flyte's cache control (issue 15, point 5): HashMethod, cache_ignore_input_vars, cache_serialize.

Written as a Flyte program would be, with ``flytekit`` read as ``kernelflow``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Annotated

import pandas as pd
import pytest

from kernelflow import HashMethod, task, workflow
from kernelflow.errors import DefinitionError

CALLS: list[str] = []


def row_count(frame: pd.DataFrame) -> str:
    """A deliberately coarse hash: frames with as many rows are 'the same'."""
    return str(len(frame))


@task
def make_frame(seed: int) -> Annotated[pd.DataFrame, HashMethod(row_count)]:
    return pd.DataFrame({"x": [seed, seed + 1, seed + 2]})


@task(cache=True, cache_version="1.0")
def summarize(frame: pd.DataFrame) -> int:
    CALLS.append("summarize")
    return len(frame)


@workflow
def summary_wf(seed: int) -> int:
    return summarize(frame=make_frame(seed=seed))


def test_a_hash_method_output_keeps_the_downstream_task_a_cache_hit() -> None:
    CALLS.clear()
    assert summary_wf(seed=1) == 3
    assert summary_wf(seed=5) == 3  # another frame, but HashMethod says it is the same
    assert CALLS == ["summarize"]


def test_the_hash_method_is_what_the_output_records_as_its_hash() -> None:
    from kernelflow._core.hash_method import output_hash
    from kernelflow._core.hashing import hash_or_none

    declared = Annotated[pd.DataFrame, HashMethod(row_count)]
    one, other = pd.DataFrame({"x": [1, 2]}), pd.DataFrame({"x": [7, 8]})
    assert output_hash(one, declared) == output_hash(other, declared)
    assert output_hash(one, pd.DataFrame) == hash_or_none(one)
    assert output_hash(one, declared) != hash_or_none(one)


@task(cache=True, cache_version="1.0", cache_ignore_input_vars=("verbose",))
def scale(x: int, verbose: bool) -> int:
    CALLS.append(f"scale {x} {verbose}")
    return 2 * x


def test_an_ignored_input_does_not_enter_the_cache_key() -> None:
    CALLS.clear()
    assert scale(x=2, verbose=False) == 4
    assert scale(x=2, verbose=True) == 4  # only the ignored input changed: a hit
    assert scale(x=3, verbose=True) == 6  # a kept input changed: a miss
    assert CALLS == ["scale 2 False", "scale 3 True"]


def test_ignoring_an_input_the_task_does_not_have_is_refused() -> None:
    with pytest.raises(DefinitionError, match=r"'verbos'.*not one of its inputs"):

        @task(cache=True, cache_ignore_input_vars=("verbos",))
        def shout(text: str, verbose: bool) -> str:
            return text.upper()


# --- cache_serialize, with two real processes ----------------------------------------

SCRIPT = """
import os, sys, time
from pathlib import Path
from kernelflow import task, workflow

HERE = Path(sys.argv[1])
ME = sys.argv[2]
LOG = HERE / "body.log"


def wait_for(condition, limit):
    deadline = time.monotonic() + limit
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    return condition()


@task(cache=True, cache_version="1", cache_serialize=True)
def expensive(n: int) -> int:
    # (The body reads no global that differs between the processes: it is in the key.)
    with LOG.open("a") as log:
        log.write(f"{os.getpid()}\\n")
    # Give the other process every chance to run the body too (it would, unserialized):
    # wait, boundedly, until both have started their runs and a second body line appears.
    wait_for(lambda: all((HERE / f"launched-{p}").exists() for p in "ab"), 60)
    wait_for(lambda: len(LOG.read_text().split()) > 1, 3)
    return n * n


@workflow
def wf(n: int) -> int:
    return expensive(n=n)


(HERE / f"ready-{ME}").touch()
assert wait_for(lambda: all((HERE / f"ready-{p}").exists() for p in "ab"), 60)
(HERE / f"launched-{ME}").touch()
print(wf(n=7))
"""


def test_cache_serialize_runs_the_body_once_for_two_processes(tmp_path: Path) -> None:
    script = tmp_path / "serialized.py"
    script.write_text(textwrap.dedent(SCRIPT))
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(tmp_path), me],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=dict(os.environ),
        )
        for me in "ab"
    ]
    results = [proc.communicate(timeout=180) for proc in procs]
    for proc, (out, err) in zip(procs, results):
        assert proc.returncode == 0, err
        assert out.split()[-1] == "49"
    assert len((tmp_path / "body.log").read_text().split()) == 1  # one body ran
    locks = list((Path(os.environ["KERNELFLOW_HOME"]) / "locks").glob("*.lock"))
    assert len(locks) == 1


HOLDER = """
import sys, time
from kernelflow.store.cache_locks import CacheLocks

locks = CacheLocks(sys.argv[1])
assert locks.acquire("k")
print("held", flush=True)
time.sleep(600)
"""


def test_a_cache_lock_is_released_when_its_holder_dies(tmp_path: Path) -> None:
    import fcntl

    from kernelflow.store.cache_locks import CacheLocks

    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        probe = open(tmp_path / "locks" / "k.lock")  # noqa: SIM115 (closed below)
        try:
            with pytest.raises(BlockingIOError):  # held by the other process
                fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            probe.close()
    finally:
        holder.kill()
        holder.wait(timeout=60)
    locks = CacheLocks(tmp_path)
    assert locks.acquire("k")  # the holder died: the kernel released its lock
    assert not locks.acquire("k")  # held here already: not taken twice
    locks.release_all()
