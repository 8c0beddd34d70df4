"""Parallel backends: loky and dask workers give what a sequential run gives.

The dask tests start a real ``distributed.LocalCluster`` (worker processes);
the loky tests use joblib's reusable loky pool.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

import kernelflow
from kernelflow import current_context, task, workflow
from kernelflow.api import load_target
from kernelflow.engine.backends import (
    DaskExecutor,
    LokyExecutor,
    SequentialExecutor,
    ThreadingExecutor,
    get_executor,
    portable,
)
from kernelflow.errors import (
    OutputTypeError,
    ParameterError,
    RecoverableError,
    TaskFailedError,
    TaskTimeoutError,
)
from kernelflow.notebook.load import NotebookWorkflow, workflow_from_cells

BACKENDS = ["loky", "threading", "dask"]
PROCESS_BACKENDS = ["loky", "dask"]


# --- an SDK workflow with a diamond shape; the tasks call a module-level helper ----


def scale(value: int, factor: int) -> int:
    return value * factor


@task
def source(n: int) -> int:
    return n + 1


@task
def left(x: int) -> int:
    return scale(x, 10)


@task
def right(x: int) -> list[int]:
    return [x, os.getpid()]


@task
def join(a: int, b: list[int]) -> int:
    return a + b[0]


@workflow
def diamond(n: int = 4) -> tuple[int, int]:
    x = source(n=n)
    return join(a=left(x=x), b=right(x=x)), left(x=x)


@task
def explode(n: int) -> int:
    if n > 2:
        raise ValueError(f"n is too large: {n}")
    return n


@workflow
def exploding(n: int = 3) -> int:
    return explode(n=source(n=n))


@pytest.mark.parametrize("backend", BACKENDS)
def test_sdk_diamond_gives_the_sequential_outputs(backend: str) -> None:
    expected = kernelflow.run(diamond)
    result = kernelflow.run(diamond, parallel=2, backend=backend, force=True)
    assert result.status == "succeeded", result.error
    assert result.outputs == expected.outputs == {"o0": 55, "o1": 50}
    assert {t.status for t in result.tasks.values()} == {"succeeded"}
    worker_pid = result.values["right"]["o0"][1]
    assert (worker_pid != os.getpid()) == (backend in PROCESS_BACKENDS)


# --- a notebook workflow: a setup cell with a helper, three task cells -------------


def notebook(log: Path) -> NotebookWorkflow:
    setup = textwrap.dedent(
        f"""
        import os

        def double(v):
            return 2 * v

        with open({str(log)!r}, "a") as _log:
            _log.write(f"{{os.getpid()}}\\n")
        """
    )
    cells = [
        (setup, []),
        ("n = 5", ["parameters"]),
        ("%%task first\nx = double(n)", []),
        ("%%task second\ny = double(x) + 1", []),
        ("%%task third\nz: int = x + y\nwhere: int = os.getpid()", []),
    ]
    return workflow_from_cells(cells, name="nb")


@pytest.mark.parametrize("backend", BACKENDS)
def test_notebook_workflow_gives_the_sequential_outputs(backend: str, tmp_path: Path) -> None:
    log = tmp_path / "setup-runs.txt"
    flow = notebook(log)
    expected = kernelflow.run(flow)
    result = kernelflow.run(flow, parallel=2, backend=backend, force=True)
    assert result.status == "succeeded", result.error
    assert result.outputs["z"] == expected.outputs["z"] == 31
    assert {name: v for name, v in result.values.items() if name != "third"} == {
        "first": {"x": 10},
        "second": {"y": 21},
    }
    assert (result.outputs["where"] != os.getpid()) == (backend in PROCESS_BACKENDS)
    setup_pids = log.read_text().split()
    assert len(setup_pids) == len(set(setup_pids)), "setup code ran twice in one process"


# --- failures cross the process boundary as the in-process errors ------------------


@pytest.mark.parametrize("backend", PROCESS_BACKENDS)
def test_a_failing_task_in_a_worker_names_it_and_shows_the_users_line(backend: str) -> None:
    result = kernelflow.run(exploding, parallel=2, backend=backend)
    assert result.status == "failed"
    error = result.error
    assert isinstance(error, TaskFailedError)
    assert error.task == "explode"
    assert "ValueError: n is too large: 4" in str(error)
    assert 'raise ValueError(f"n is too large: {n}")' in error.traceback
    assert error.traceback.lstrip().splitlines()[1].lstrip().startswith(f'File "{__file__}"')
    assert "kernelflow/engine" not in error.traceback


def test_a_failing_cell_in_a_worker_shows_the_cell_line(tmp_path: Path) -> None:
    cells = [
        ("def check(v):\n    return v\n", []),
        ("%%task ok\nv = check(1)", []),
        ("%%task bad\nw = 2\nboom = v / (w - 2)", []),
    ]
    result = kernelflow.run(workflow_from_cells(cells, name="nb"), parallel=2, backend="loky")
    assert isinstance(result.error, TaskFailedError)
    assert result.error.task == "bad"
    assert "ZeroDivisionError" in str(result.error)
    assert "boom = v / (w - 2)" in result.error.traceback


@pytest.mark.parametrize("backend", PROCESS_BACKENDS)
def test_an_output_that_cannot_leave_the_worker_names_the_variable(backend: str) -> None:
    cells = [
        ("n = 3", ["parameters"]),
        ("%%task make\nnumbers = (i * i for i in range(n))", []),
        ("%%task use\ntotal: int = sum(numbers)", []),
    ]
    result = kernelflow.run(workflow_from_cells(cells, name="nb"), parallel=2, backend=backend)
    assert result.status == "failed"
    assert isinstance(result.error, OutputTypeError)
    assert (result.error.task, result.error.variable) == ("make", "numbers")
    assert "'numbers', a generator, which cannot be sent back" in str(result.error)
    assert result.tasks["use"].status == "skipped"


@task
def count_items(items: Any) -> int:
    return sum(1 for _ in items)


@workflow
def counting(items: Any = None) -> int:
    return count_items(items=items)


def test_an_input_that_cannot_reach_the_worker_names_the_variable() -> None:
    result = kernelflow.run(counting, {"items": (i for i in range(3))}, parallel=2, backend="loky")
    assert isinstance(result.error, TaskFailedError)
    assert (result.error.task, result.error.variable) == ("count_items", "items")
    assert "input 'items' of task 'count_items' is a generator" in str(result.error)


@task(retries=1)
def flaky_in_worker(marker: str) -> int:
    if current_context().attempt == 1:
        Path(marker).write_text(str(os.getpid()))
        raise RecoverableError("first attempt fails")  # a flaky service: retried
    return int(Path(marker).read_text())


def test_retries_work_across_worker_processes(tmp_path: Path) -> None:
    @workflow
    def wf(marker: str) -> int:
        return flaky_in_worker(marker=marker)

    result = kernelflow.run(wf, {"marker": str(tmp_path / "m")}, parallel=2, backend="loky")
    assert result.status == "succeeded", result.error
    assert result.tasks["flaky_in_worker"].attempts == 2
    assert result.outputs["o0"] != os.getpid()


# --- real parallelism and timeouts ---------------------------------------------------


@task
def stamp(name: str, folder: str) -> list[float]:
    """Record when it ran; wait (up to 60 s) until its sibling has started too."""
    started = time.time()
    Path(folder, f"{name}.start").write_text(str(started))
    for _ in range(600):
        if len(list(Path(folder).glob("*.start"))) == 2:
            break
        time.sleep(0.1)
    return [started, time.time()]


@workflow
def two_stamps(folder: str) -> tuple[list[float], list[float]]:
    return stamp(name="a", folder=folder), stamp(name="b", folder=folder)


def test_independent_tasks_overlap_in_time_under_loky(tmp_path: Path) -> None:
    result = kernelflow.run(two_stamps, {"folder": str(tmp_path)}, parallel=2, backend="loky")
    assert result.status == "succeeded", result.error
    (start_a, end_a), (start_b, end_b) = result.outputs["o0"], result.outputs["o1"]
    assert max(start_a, start_b) < min(end_a, end_b)


@task(timeout=1)
def interruptible(marker: str) -> int:
    try:
        time.sleep(120)
    finally:
        Path(marker).write_text("stopped")
    return 0


@task(timeout=1)
def deaf(marker: str) -> int:
    import signal

    Path(marker).write_text(str(os.getpid()))
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})  # the deadline cannot reach it
    time.sleep(120)
    return 0


def test_a_timed_out_task_is_stopped_in_its_loky_worker(tmp_path: Path) -> None:
    @workflow
    def wf(marker: str) -> int:
        return interruptible(marker=marker)

    marker = tmp_path / "marker"
    result = kernelflow.run(wf, {"marker": str(marker)}, parallel=2, backend="loky")
    assert isinstance(result.error, TaskTimeoutError)
    assert result.error.task == "interruptible"
    assert marker.read_text() == "stopped"


def test_a_worker_stuck_past_its_deadline_is_killed_when_the_run_ends(tmp_path: Path) -> None:
    @workflow
    def wf(marker: str) -> tuple[int, int]:
        return deaf(marker=marker), source(n=1)

    marker = tmp_path / "pid"
    result = kernelflow.run(wf, {"marker": str(marker)}, parallel=2, backend="loky")
    assert isinstance(result.error, TaskTimeoutError)
    assert result.tasks["source"].status == "succeeded"
    with pytest.raises(ProcessLookupError):
        os.kill(int(marker.read_text()), 0)


# --- tasks that cannot leave the process: a live kernel's cells ----------------------


class KernelLikeEnvironment:
    """Like the kernel session's environment: code runs in one live namespace."""

    portable = False

    def __init__(self) -> None:
        self.user_ns: dict[str, Any] = {"_lock": threading.Lock()}

    def namespace(self) -> dict[str, Any]:
        return self.user_ns

    def execute(self, code: str, filename: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
        self.user_ns.update(inputs)
        exec(compile(code, filename, "exec"), self.user_ns)
        return self.user_ns


def kernel_workflow() -> NotebookWorkflow:
    cells = [("%%task one\na = 1", []), ("%%task two\nb: int = a + 1", [])]
    flow = workflow_from_cells(cells, name="kernel")
    environment = KernelLikeEnvironment()
    for node in flow.graph.nodes.values():
        node.task.environment = environment  # type: ignore[attr-defined]
    return flow


def test_kernel_cells_are_refused_by_process_backends_with_the_fix() -> None:
    flow = kernel_workflow()
    tasks = [node.task for node in flow.graph.nodes.values()]
    assert not any(portable(t) for t in tasks)
    with pytest.raises(ParameterError, match="--backend threading"):
        get_executor("loky", 2, tasks=tasks)
    with pytest.raises(ParameterError, match="in a kernel, --parallel uses threads"):
        kernelflow.run(flow, parallel=2, backend="loky")
    assert kernelflow.run(flow, parallel=2, backend="threading").outputs == {"b": 2}


def test_notebook_and_sdk_tasks_are_portable(tmp_path: Path) -> None:
    tasks = [node.task for node in notebook(tmp_path / "log").graph.nodes.values()]
    assert all(portable(t) for t in [*tasks, source, kernelflow.map_task(source)])


# --- choosing a backend ---------------------------------------------------------------


def test_get_executor_picks_the_backend() -> None:
    kinds = {
        ("loky", 1): SequentialExecutor,
        ("threading", 3): ThreadingExecutor,
        ("loky", 2): LokyExecutor,
    }
    for (backend, parallel), kind in kinds.items():
        executor = get_executor(backend, parallel)
        assert isinstance(executor, kind)
        executor.close()
    with pytest.raises(ParameterError, match="choose one of loky, threading, dask"):
        get_executor("mpi", 2)
    with pytest.raises(ParameterError, match="--address"):
        get_executor("threading", 2, address="tcp://localhost:8786")


def test_the_dask_backend_without_distributed_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    with pytest.raises(ParameterError, match=r"pip install kernelflow\[dask\]"):
        get_executor("dask", 2)
    with pytest.raises(ParameterError, match=r"pip install kernelflow\[dask\]"):
        DaskExecutor(2)


# --- pickling tasks for workers -----------------------------------------------------


def test_a_task_in_an_importable_module_pickles_by_reference() -> None:
    from flyte_basics.mapping import square

    data = pickle.dumps(square)
    assert b"flyte_basics.mapping" in data
    assert pickle.loads(data) is square


def test_a_task_defined_in_a_function_pickles_by_value() -> None:
    offset = 7

    @task
    def shifted(n: int) -> int:
        return n + offset

    copy = pickle.loads(pickle.dumps(shifted))
    assert copy is not shifted
    assert copy.run({"n": 1}) == {"o0": 8}
    assert copy.interface == shifted.interface


SCRIPT = """
from kernelflow import task, workflow

def helper(n):
    return n * 3

@task
def tripled(n: int) -> int:
    return helper(n)

@workflow
def wf(n: int = 2) -> int:
    return tripled(n=n)

if __name__ == "__main__":
    import kernelflow
    print(kernelflow.run(wf, parallel=2, backend="loky").outputs["o0"])
"""


def test_a_task_of_a_loaded_script_runs_where_the_script_cannot_be_imported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = tmp_path / "kf_backends_script.py"
    script.write_text(SCRIPT)
    monkeypatch.setattr(sys, "path", list(sys.path))  # load_target adds the script's folder
    wf = load_target(f"{script}:wf")
    data = pickle.dumps(next(iter(wf.graph.nodes.values())).task)
    program = "import pickle, sys; print(pickle.load(sys.stdin.buffer).run({'n': 5}))"
    ran = subprocess.run(
        [sys.executable, "-c", program], input=data, capture_output=True, cwd="/", check=True
    )
    assert ran.stdout.decode().strip() == "{'o0': 15}"
    assert kernelflow.run(wf, parallel=2, backend="loky").outputs == {"o0": 6}


def test_tasks_of_a_main_script_run_in_loky_workers(tmp_path: Path) -> None:
    script = tmp_path / "main_script.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "KERNELFLOW_HOME": str(tmp_path / "home")}
    ran = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip().splitlines()[-1] == "6"


def test_a_worker_error_survives_pickling_with_its_fields() -> None:
    result = kernelflow.run(exploding, parallel=2, backend="loky")
    again = pickle.loads(pickle.dumps(result.error))
    assert isinstance(again, TaskFailedError)
    assert json.dumps(again.fields, default=str) == json.dumps(result.error.fields, default=str)
