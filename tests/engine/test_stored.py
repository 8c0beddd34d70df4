"""Workers write where they run: on loky and Dask, outputs go to the store from the
worker that made them and only references come back; the worker that needs a value
reads it from the store. The scheduling process never loads a value it does not need.

Each value here records, in a log file it carries, the pid of every process that
unpickles it: the test's own pid in that log means the value passed through the
scheduling process.
"""

from __future__ import annotations

import functools
import os
import time
from dataclasses import replace
from pathlib import Path

import pytest

import kernelflow
from kernelflow import api, map_task, task, workflow
from kernelflow.errors import KernelflowWarning, TaskFailedError

BACKENDS = ["loky", "dask"]


class Tracked:
    """A value that logs the pid of each process that loads it (unpickles it)."""

    def __init__(self, number: int, log: str, size: int = 10_000) -> None:
        self.number, self.log, self.payload = number, log, os.urandom(size)

    def __getstate__(self) -> dict:
        return self.__dict__

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        with open(self.log, "a") as log:
            log.write(f"{os.getpid()}\n")


def loaders(log: Path) -> set[int]:
    return {int(line) for line in log.read_text().split()} if log.exists() else set()


@task
def make(number: int, log: str) -> Tracked:
    return Tracked(number, log)


@task
def use(value: Tracked, fail_flag: str = "") -> int:
    if fail_flag and os.path.exists(fail_flag):
        raise ValueError("asked to fail")
    return value.number * 10


@task
def total(numbers: list[int]) -> int:
    return sum(numbers)


@workflow
def chain(number: int, log: str, fail_flag: str = "") -> int:
    return use(value=make(number=number, log=log), fail_flag=fail_flag)


@task(cache=True, cache_version="1")
def make_cached(number: int, log: str) -> Tracked:
    return Tracked(number, log)


@workflow
def fan(numbers: list[int], log: str) -> int:
    values = map_task(functools.partial(make_cached, log=log))(number=numbers)
    return total(numbers=map_task(functools.partial(use, fail_flag=""))(value=values))


@pytest.fixture
def log(tmp_path: Path) -> Path:
    return tmp_path / "loaded-by.log"


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_value_goes_from_worker_to_worker_through_the_store(backend: str, log: Path) -> None:
    result = kernelflow.run(chain, {"number": 4, "log": str(log)}, parallel=2, backend=backend)
    assert result.status == "succeeded", result.error
    assert result.outputs == {"o0": 40}
    assert loaders(log), "the consumer read the value in its worker"
    assert os.getpid() not in loaders(log), "the value passed through the scheduling process"
    made = result.values["make"]["o0"]  # asked for: loaded here, then
    assert made.number == 4
    assert os.getpid() in loaders(log)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_map_keeps_references_and_each_item_is_read_by_its_worker(
    backend: str, log: Path
) -> None:
    numbers = list(range(7))
    result = kernelflow.run(fan, {"numbers": numbers, "log": str(log)}, parallel=2, backend=backend)
    assert result.status == "succeeded", result.error
    assert result.outputs == {"o0": 10 * sum(numbers)}
    assert os.getpid() not in loaders(log)
    items = result.values["map_make_cached"]["o0"]  # every item, loaded on request
    assert [item.number for item in items] == numbers
    assert os.getpid() in loaders(log)


def test_cached_items_stay_in_the_store_and_only_a_new_item_runs(log: Path) -> None:
    first = kernelflow.run(fan, {"numbers": [1, 2, 3], "log": str(log)}, parallel=2, backend="loky")
    assert first.outputs == {"o0": 60}
    log.unlink()
    again = kernelflow.run(
        fan, {"numbers": [1, 2, 3, 4], "log": str(log)}, parallel=2, backend="loky"
    )
    assert again.status == "succeeded", again.error
    assert again.outputs == {"o0": 100}
    assert os.getpid() not in loaders(log), "the cache hits were loaded by the scheduler"
    made = sum(1 for _ in Path(log).read_text().split())
    assert made == 4, "each of the 4 items is read once, by the worker of `use`"


def test_a_resumed_run_hands_the_saved_value_to_the_worker_after_gc(
    log: Path, tmp_path: Path
) -> None:
    flag = tmp_path / "fail"
    flag.touch()
    params = {"numbers": [5, 6], "log": str(log)}
    wf = fan_then_fail(str(flag))
    failed = kernelflow.run(wf, params, parallel=2, backend="loky")
    assert failed.status == "failed"
    home = Path(os.environ["KERNELFLOW_HOME"])
    then = time.time() - 30 * 86400
    for path in (home / "artifacts").rglob("*"):
        os.utime(path, (then, then))
    api.gc(keep_runs=1)  # the map's items are named only inside its output's record
    flag.unlink()
    resumed = kernelflow.run(wf, params, parallel=2, backend="loky", resume=failed.run_id)
    assert resumed.status == "succeeded", resumed.error
    assert resumed.outputs == {"o0": 110}
    assert resumed.tasks["map_make"].status == "cached"


def fan_then_fail(flag: str) -> object:
    @workflow
    def fan_fail(numbers: list[int], log: str) -> int:  # no cache: no entry keeps the items
        values = map_task(functools.partial(make, log=log))(number=numbers)
        return total(numbers=map_task(functools.partial(use, fail_flag=flag))(value=values))

    return fan_fail


def test_a_damaged_input_is_named_by_the_task_that_cannot_read_it(
    log: Path, tmp_path: Path
) -> None:
    flag = tmp_path / "fail"
    flag.touch()
    params = {"number": 3, "log": str(log), "fail_flag": str(flag)}
    failed = kernelflow.run(chain, params, parallel=2, backend="loky")
    assert failed.status == "failed"
    home = Path(os.environ["KERNELFLOW_HOME"])
    (artifact,) = [p for p in (home / "artifacts").rglob("*.pkl")]
    data = bytearray(artifact.read_bytes())
    data[-5] ^= 0xFF  # same size: found, and only its bytes tell
    artifact.write_bytes(bytes(data))
    flag.unlink()
    resumed = kernelflow.run(chain, params, parallel=2, backend="loky", resume=failed.run_id)
    assert resumed.status == "failed"
    error = resumed.tasks["use"].error
    assert isinstance(error, TaskFailedError)
    assert "task 'use' could not read its input 'value' from the store" in str(error)
    assert "--resume" in str(error)
    # The damaged file was removed where it was read: resuming again recomputes it.
    with pytest.warns(KernelflowWarning, match="output 'o0' of task 'make' is damaged"):
        again = kernelflow.run(chain, params, parallel=2, backend="loky", resume=resumed.run_id)
    assert again.status == "succeeded", again.error
    assert again.outputs == {"o0": 30}
    assert again.tasks["make"].status == "succeeded"  # made again, not restored


def test_a_worker_whose_store_key_differs_refuses_the_task_and_says_what_to_give_it(
    log: Path,
) -> None:
    from kernelflow.engine.context import ExecutionContext
    from kernelflow.engine.execute import execute_and_store

    home = os.environ["KERNELFLOW_HOME"]
    context = ExecutionContext("run-1", "make", "make", 1, home, key_id="0" * 16)
    with pytest.raises(TaskFailedError) as raised:
        execute_and_store(make, {"number": 1, "log": str(log)}, context)
    message = str(raised.value)
    assert "task 'make' cannot run in worker process" in message
    assert "$KERNELFLOW_STORE_KEY" in message
    assert not log.exists() and not (Path(home) / "artifacts").exists()  # nothing ran
    from kernelflow.store.home import open_artifacts

    right = replace(context, key_id=open_artifacts(home).key_id(create=True))
    stored = execute_and_store(make, {"number": 1, "log": str(log)}, right)
    assert stored["o0"].meta["artifact"]["path"].startswith("artifacts/")


def test_a_map_output_workers_stored_is_used_by_a_run_in_one_process(log: Path) -> None:
    params = {"numbers": [1, 2, 3], "log": str(log)}
    assert kernelflow.run(fan, params, parallel=2, backend="loky").outputs == {"o0": 60}
    here = kernelflow.run(fan, params)  # sequential: the map is a cache hit of references
    assert here.status == "succeeded", here.error
    assert here.tasks["map_make_cached"].status == "cached"
    assert here.outputs == {"o0": 60}
    assert [item.number for item in here.values["map_make_cached"]["o0"]] == [1, 2, 3]


def test_a_value_asked_for_that_the_store_lost_is_an_error_naming_the_output(
    log: Path,
) -> None:
    from kernelflow.errors import KernelflowError

    result = kernelflow.run(chain, {"number": 2, "log": str(log)}, parallel=2, backend="loky")
    assert result.status == "succeeded", result.error
    home = Path(os.environ["KERNELFLOW_HOME"])
    for artifact in (home / "artifacts").rglob("*.pkl"):
        artifact.unlink()
    with pytest.raises(KernelflowError, match="output 'o0' of task 'make' could not be read"):
        result.values["make"]["o0"]
