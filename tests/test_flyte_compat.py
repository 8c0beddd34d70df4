"""Flyte programs, written as Flyte's user guide writes them, run with one change:
their imports, rewritten by the rule of README "Flyte compatibility"
(``flytekit`` -> ``kernelflow``). Each test checks the result Flyte documents
(issue 14: signatures, failure handling, ``current_context()``).
"""

from __future__ import annotations

import functools
import logging
import os
import pickle
import shutil
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import pytest

import kernelflow
from kernelflow import WorkflowFailurePolicy, current_context, map_task, task, workflow
from kernelflow.core.type_engine import BatchSize
from kernelflow.errors import KernelflowError, TaskFailedError, UnsupportedFeatureError
from kernelflow.exceptions.user import FlyteRecoverableException
from kernelflow.types.error.error import FlyteError
from kernelflow.types.file import FlyteFile

# --- the import rule: Flyte's names at Flyte's paths -------------------------------


def test_flyte_paths_resolve() -> None:
    import kernelflow as flytekit  # `import flytekit`, rewritten
    from kernelflow.exceptions.base import FlyteRecoverableException as Base

    assert flytekit.task is task and flytekit.current_context is current_context
    assert Base is FlyteRecoverableException
    assert issubclass(FlyteRecoverableException, Exception)
    assert FlyteError("boom", "n0").message == "boom"
    copy = pickle.loads(pickle.dumps(FlyteRecoverableException("flaky", timestamp=1.5)))
    assert (type(copy), str(copy), copy.timestamp) == (FlyteRecoverableException, "flaky", 1.5)
    from kernelflow.core.node_creation import create_node
    from kernelflow.core.task import Echo  # flytekit.core.task.Echo (conditional.py uses it)

    assert callable(create_node) and Echo(name="e", inputs={"x": int}).name == "e"


@pytest.mark.parametrize(
    ("module", "name"),
    [("kernelflow", "SQLTask"), ("kernelflow.exceptions.user", "FlyteAuthenticationException")],
)
def test_an_unsupported_flyte_name_fails_with_one_message(module: str, name: str) -> None:
    with pytest.raises(UnsupportedFeatureError) as caught:
        exec(f"from {module} import {name}", {})
    flyte_path = f"{module.replace('kernelflow', 'flytekit', 1)}.{name}"
    assert str(caught.value) == (
        f"kernelflow does not support {flyte_path}; see README 'Flyte compatibility'"
    )
    assert isinstance(caught.value, (ImportError, KernelflowError))
    assert not hasattr(kernelflow, "no_such_name")  # other names: a plain AttributeError


@pytest.mark.parametrize(
    ("statement", "feature"),
    [
        ("from kernelflow.extras.pytorch import PyTorchCheckpoint", "flytekit.extras.pytorch"),
        (
            "from kernelflow.extras.tasks.shell import RawShellTask",
            "flytekit.extras.tasks.shell.RawShellTask",
        ),
        ("import kernelflow.plugins.nosuchplugin", "flytekitplugins.nosuchplugin"),
    ],
)
def test_an_unsupported_flyte_module_fails_with_one_message(statement: str, feature: str) -> None:
    with pytest.raises(UnsupportedFeatureError, match=f"does not support {feature};"):
        exec(statement, {})
    with pytest.raises(ModuleNotFoundError):  # not one of Flyte's paths: Python's own error
        exec("import kernelflow.no_such_module", {})


# --- signatures as Flyte writes them -----------------------------------------------


@task
def print_message(message: str):  # type: ignore[no-untyped-def]
    print(message)


@task
def fruits() -> list[str]:
    return ["apple", "banana"]


@task
def basket() -> dict[str, str]:
    return {"fruit": "banana"}


@dataclass
class Fruit:
    name: str


@task
def a_fruit() -> Fruit:
    return Fruit(name="banana")


@task
def nested() -> (dict[str, list[str]], list[dict[str, str]]):  # type: ignore[syntax]
    return {"fruits": ["banana"]}, [{"fruit": "cherry"}]


@task
def shout(message: str) -> str:
    return message.upper()


def test_a_task_without_return_annotation_returns_nothing() -> None:
    @workflow
    def wf(message: str = "hi"):  # type: ignore[no-untyped-def]
        print_message(message=message)

    assert print_message.interface.outputs == {}
    assert wf() is None


def test_a_tuple_literal_declares_two_outputs() -> None:
    assert list(nested.interface.outputs) == ["o0", "o1"]
    assert nested() == ({"fruits": ["banana"]}, [{"fruit": "cherry"}])


def test_attribute_and_index_access_on_promises() -> None:
    @workflow
    def wf() -> (str, str, str, str, str):  # type: ignore[syntax]
        listing, dicts = nested()
        return (
            shout(message=fruits()[1]),
            shout(message=basket()["fruit"]),
            shout(message=a_fruit().name),
            listing["fruits"][0],
            dicts[0]["fruit"],
        )

    assert wf() == ("BANANA", "BANANA", "BANANA", "banana", "cherry")


def test_access_on_a_workflow_input_and_slices() -> None:
    @workflow
    def wf(fruit: Fruit) -> (str, str):  # type: ignore[syntax]
        return shout(message=fruit.name), join(words=fruits()[0:1], extra={})

    assert wf(fruit=Fruit(name="kiwi")) == ("KIWI", "apple")
    assert "fruit.name" in wf.graph.nodes


def test_an_attribute_a_dataclass_lacks_fails_at_definition() -> None:
    with pytest.raises(KernelflowError, match="has no such attribute"):

        @workflow
        def wf() -> str:
            return shout(message=a_fruit().colour)


@task
def join(words: list[str], extra: dict[str, str]) -> str:
    return " ".join(words + [f"{k}={v}" for k, v in sorted(extra.items())])


def test_lists_and_dicts_of_promises_as_inputs_and_outputs() -> None:
    @workflow
    def wf(a: str, b: str) -> (str, list[str], dict[str, str]):  # type: ignore[syntax]
        first, second = shout(message=a), shout(message=b)
        joined = join(words=[first, "and", second], extra={"x": first})
        return joined, [second, first], {"a": first, "b": second}

    assert wf(a="x", b="y") == ("X and Y x=X", ["Y", "X"], {"a": "X", "b": "Y"})


def test_timeouts_as_flyte_writes_them() -> None:
    @task(timeout=timedelta(minutes=2))
    def slow(n: int) -> int:
        return n

    @task(timeout=0)
    def unlimited(n: int) -> int:
        return n

    assert slow.options.timeout == 120.0
    assert unlimited.options.timeout is None
    assert slow(n=1) == 1 and unlimited(n=2) == 2


@task
def price(quantity: int, unit: float, shipping: float) -> float:
    return quantity * unit + shipping


@task
def get_unit() -> float:
    return 2.0


def test_map_task_over_a_partial_with_promises_and_constants() -> None:
    @workflow
    def wf(quantities: list[int], shipping: float = 1.0) -> list[float]:
        partial_task = functools.partial(price, unit=get_unit(), shipping=shipping)
        return map_task(partial_task, concurrency=2)(quantity=quantities)

    assert wf(quantities=[1, 2, 3]) == [3.0, 5.0, 7.0]


@task
def invert(n: int) -> float:
    return 1 / n


def test_min_success_ratio_lets_items_fail_as_none() -> None:
    @workflow
    def tolerant(values: list[int]) -> list[float | None]:
        return map_task(invert, min_success_ratio=0.5)(n=values)

    assert tolerant(values=[1, 0, 4]) == [1.0, None, 0.25]
    with pytest.raises(TaskFailedError, match="2 of 3 items failed"):
        tolerant(values=[0, 0, 4])


# --- failure handling ----------------------------------------------------------------

ATTEMPTS: list[str] = []


@task(retries=2)
def flaky(n: int) -> int:
    ATTEMPTS.append("flaky")
    if current_context().attempt < 3:
        raise FlyteRecoverableException(f"attempt {current_context().attempt} failed")
    return n


@task(retries=2)
def wrong(n: int) -> int:
    ATTEMPTS.append("wrong")
    raise ValueError("bad input")


def test_a_recoverable_exception_is_retried_and_a_user_error_is_not() -> None:
    ATTEMPTS.clear()

    @workflow
    def wf(n: int) -> (int, int):  # type: ignore[syntax]
        return flaky(n=n), wrong(n=n)

    result = kernelflow.run(wf, {"n": 1})
    assert result.tasks["flaky"].attempts == 3 and result.tasks["flaky"].status == "succeeded"
    assert result.tasks["wrong"].attempts == 1 and result.tasks["wrong"].status == "failed"
    assert ATTEMPTS.count("wrong") == 1


@task(retries=1)
def dies_once(marker: str) -> int:
    if not Path(marker).exists():
        Path(marker).write_text("died")
        os._exit(1)  # the worker process dies: a system failure
    return 7


def test_a_worker_that_died_is_retried(tmp_path: Path) -> None:
    @workflow
    def wf(marker: str) -> int:
        return dies_once(marker=marker)

    result = kernelflow.run(wf, {"marker": str(tmp_path / "m")}, parallel=2, backend="loky")
    assert result.status == "succeeded", result.error
    assert result.tasks["dies_once"].attempts == 2


CLEANED: list[tuple[str, str]] = []


@task
def create_cluster(name: str) -> str:
    return name


@task
def fail(cluster: str) -> int:
    raise ValueError(f"Fail on {cluster}!")


@task
def clean_up(name: str, err: FlyteError | None = None):  # type: ignore[no-untyped-def]
    CLEANED.append((name, err.message if err else ""))


def test_on_failure_runs_the_cleanup_with_the_inputs_and_the_error() -> None:
    CLEANED.clear()

    @workflow(
        on_failure=clean_up,
        failure_policy=WorkflowFailurePolicy.FAIL_AFTER_EXECUTABLE_NODES_COMPLETE,
    )
    def wf(name: str = "my_cluster") -> int:
        return fail(cluster=create_cluster(name=name))

    with pytest.raises(TaskFailedError, match="Fail on my_cluster!"):
        wf()
    assert len(CLEANED) == 1
    assert CLEANED[0][0] == "my_cluster" and "Fail on my_cluster!" in CLEANED[0][1]

    result = kernelflow.run(wf, {"name": "other"})  # the same through kernelflow.run
    assert result.status == "failed" and CLEANED[1][0] == "other"


@workflow(on_failure=clean_up)
def cluster_job(name: str) -> int:
    return fail(cluster=create_cluster(name=name))


@task
def fine(name: str) -> str:
    return f"{name} is fine"


def test_a_failing_sub_workflow_runs_its_own_on_failure() -> None:
    """Flyte's semantics: the sub-workflow's handler gets its inputs; the parent's runs too."""
    CLEANED.clear()

    @workflow
    def parent(prefix: str) -> int:
        return cluster_job(name=fine(name=prefix))

    result = kernelflow.run(parent, {"prefix": "sub"})
    assert result.status == "failed"
    [(name, message)] = CLEANED  # the sub-workflow's own input, and its error
    assert name == "sub is fine" and "Fail on sub is fine!" in message
    assert result.tasks["cluster_job"].status == "failed"

    CLEANED.clear()

    @workflow(on_failure=clean_up)
    def guarded(name: str) -> int:
        return cluster_job(name=name)

    with pytest.raises(TaskFailedError, match="Fail on outer!"):
        guarded(name="outer")
    assert [name for name, _ in CLEANED] == ["outer", "outer"]  # inner handler, then outer


def test_a_sub_workflow_that_succeeds_runs_no_handler() -> None:
    CLEANED.clear()

    @workflow(on_failure=clean_up)
    def ok_job(name: str) -> str:
        return fine(name=name)

    @workflow
    def parent(name: str) -> str:
        return ok_job(name=name)

    assert parent(name="x") == "x is fine"
    assert CLEANED == []


# --- current_context() ---------------------------------------------------------------


@task(retries=1)
def uses_context(n: int) -> (str, str, int):  # type: ignore[syntax]
    context = current_context()
    assert isinstance(context.logging, logging.Logger)
    context.logging.info("running")
    workdir = Path(context.working_directory)
    assert workdir.is_dir()
    previous = context.checkpoint.read()
    context.checkpoint.write(b"%d" % (int(previous or b"0") + n))
    if previous is None:
        raise FlyteRecoverableException("first attempt")
    return context.execution_id.name, str(workdir), int(context.checkpoint.read() or b"0")


def test_current_context_as_flyte_has_it() -> None:
    @workflow
    def wf(n: int) -> (str, str, int):  # type: ignore[syntax]
        return uses_context(n=n)

    result = kernelflow.run(wf, {"n": 5})
    assert result.status == "succeeded", result.error
    run_name, workdir, total = result.outputs["o0"], result.outputs["o1"], result.outputs["o2"]
    assert run_name == result.run_id
    assert workdir.endswith("attempt-2")  # one directory per attempt
    assert total == 10  # the second attempt read the first's checkpoint


def test_current_context_outside_a_task_is_the_local_one() -> None:
    """As in Flyte, at module level too (a launch plan script passes it along)."""
    context = current_context()
    assert context.execution_id.name == "local"
    assert Path(context.working_directory).is_dir()
    assert isinstance(context.logging, logging.Logger)
    with pytest.raises(KernelflowError, match="checkpoint was used outside a running task"):
        context.checkpoint  # noqa: B018


@task
def write_in_scratch(text: str, log: str) -> FlyteFile:
    """Flyte's usual pattern: write a file in the working directory, return it."""
    workdir = current_context().working_directory
    Path(log).write_text(workdir)  # where it was, for the test (any backend's process)
    path = Path(workdir, "note.txt")
    path.write_text(text)
    return FlyteFile(str(path))


@task
def read_file(f: FlyteFile) -> str:
    with open(f) as handle:
        return handle.read()


@pytest.mark.parametrize("parallel,backend", [(1, "threading"), (2, "loky")])
def test_the_working_directory_is_removed_when_the_task_ends(
    tmp_path: Path, parallel: int, backend: str
) -> None:
    """Per attempt, gone afterwards, as in Flyte; a file returned from it outlives it."""

    @workflow
    def wf(text: str, log: str) -> (str, FlyteFile):  # type: ignore[syntax]
        f = write_in_scratch(text=text, log=log)
        return read_file(f=f), f

    log = tmp_path / "workdir.txt"
    result = kernelflow.run(
        wf, {"text": "kept", "log": str(log)}, parallel=parallel, backend=backend
    )
    assert result.status == "succeeded", result.error
    text, returned = result.outputs["o0"], result.outputs["o1"]
    assert not Path(log.read_text()).exists()
    assert text == "kept"  # the next task read the file
    with open(returned) as handle:
        assert handle.read() == "kept"  # and so can the caller, after the run


@task
def name_scratch() -> str:
    return current_context().working_directory


def test_a_working_directory_an_output_still_names_is_kept() -> None:
    """A path into it that the store does not copy (here: text) keeps the directory."""
    workdir = name_scratch()
    assert Path(workdir).is_dir()
    shutil.rmtree(workdir)


FAILED_SCRATCH: list[str] = []


@task
def fail_in_scratch() -> int:
    FAILED_SCRATCH.append(current_context().working_directory)
    Path(FAILED_SCRATCH[-1], "partial.txt").write_text("half done")
    raise ValueError("gave up")


def test_the_working_directory_of_a_failed_task_is_removed_too() -> None:
    FAILED_SCRATCH.clear()
    with pytest.raises(TaskFailedError, match="gave up"):
        fail_in_scratch()
    assert FAILED_SCRATCH and not Path(FAILED_SCRATCH[0]).exists()


def test_batch_size_is_accepted_on_a_list_output() -> None:
    """``Annotated[list[T], BatchSize(n)]`` (flytekit.core.type_engine): one artifact locally."""

    @task
    def make(n: int) -> Annotated[list[int], BatchSize(2)]:
        return list(range(n))

    @task
    def total(xs: list[int]) -> int:
        return sum(xs)

    @workflow
    def wf(n: int = 5) -> int:
        return total(xs=make(n=n))

    assert wf() == 10
    with pytest.raises(
        UnsupportedFeatureError, match=r"flytekit\.core\.type_engine\.DictTransformer"
    ):
        exec("from kernelflow.core.type_engine import DictTransformer", {})


def test_a_reference_task_can_be_wired_and_refuses_to_run_here() -> None:
    """reference_task (a task registered on a cluster): the workflow defines, running says why."""
    from kernelflow import reference_task

    @reference_task(project="p", domain="development", name="remote.double", version="v1")
    def double(x: int) -> int: ...

    @workflow
    def wf(x: int = 2) -> int:
        return double(x=x)

    assert list(wf.graph.nodes) == ["remote.double"]
    result = kernelflow.run(wf)
    assert result.status == "failed"
    assert "reference_task 'remote.double'" in str(result.error)
    assert "replace it with a local task" in str(result.error)
