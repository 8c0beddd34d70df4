"""Tasks: options, the interface read from annotations, calling one, and shipping one."""

from __future__ import annotations

import dataclasses
import inspect
import pickle
from collections.abc import Mapping
from typing import Any, NamedTuple

import cloudpickle
import pytest

import kernelflow
from kernelflow import task
from kernelflow._core.interface import Interface
from kernelflow._core.task import Task, TaskOptions
from kernelflow.errors import DefinitionError, SignatureError, TypeMismatchError
from kernelflow.workflows.task import FunctionTask


class MinMax(NamedTuple):
    low: int
    high: int


# --- TaskOptions -----------------------------------------------------------------


def test_a_zero_timeout_means_none_in_task_but_not_in_task_options() -> None:
    with pytest.raises(DefinitionError, match="timeout must be a positive number of seconds"):
        TaskOptions(timeout=0)

    @task(timeout=0)  # Flyte's spelling of "no timeout"
    def body(n: int) -> int:
        return n

    assert body.options.timeout is None


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"retries": -1}, "retries must be >= 0, got -1"),
        ({"timeout": -2.5}, "timeout must be a positive number of seconds, got -2.5"),
    ],
)
def test_bad_options_are_refused_when_the_task_is_defined(
    options: dict[str, Any], message: str
) -> None:
    with pytest.raises(DefinitionError, match=message):
        TaskOptions(**options)
    with pytest.raises(DefinitionError, match=message):

        @task(**options)
        def body(n: int) -> int:
            return n


def test_good_options_are_kept_and_cannot_be_changed() -> None:
    @task(cache=True, cache_version=2, retries=3, timeout=1.5)
    def body(n: int) -> int:
        return n

    assert body.options == TaskOptions(cache=True, cache_version="2", retries=3, timeout=1.5)
    assert TaskOptions() == TaskOptions(cache=False, cache_version="", retries=0, timeout=None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        body.options.retries = 5  # type: ignore[misc]


# --- the Task base ----------------------------------------------------------------


class Doubler(Task):
    name = "doubler"
    interface = Interface({"n": int}, {"o0": int}, {}, "single")
    options = TaskOptions()

    def run(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        return {"o0": inputs["n"] * 2}


def test_a_task_is_not_a_map_unless_it_says_so() -> None:
    @task
    def plain(n: int) -> int:
        return n

    assert Doubler().map_items({"n": [1, 2]}) is None
    assert plain.map_items({"n": 1}) is None
    assert kernelflow.map_task(plain).map_items({"n": [1, 2]}) == (plain, [{"n": 1}, {"n": 2}])


def test_the_base_task_has_no_body_or_code_hash_and_no_modules() -> None:
    bare = Task()
    with pytest.raises(NotImplementedError):
        bare.run({})
    with pytest.raises(NotImplementedError):
        _ = bare.code_hash
    assert Doubler().modules == {}
    assert repr(Doubler()) == "<Doubler doubler>"


# --- @task: the interface ---------------------------------------------------------


def test_the_interface_comes_from_the_annotations() -> None:
    @task
    def scale(values: list[float], factor: float = 2.0) -> list[float]:
        return [v * factor for v in values]

    assert scale.interface.inputs == {"values": list[float], "factor": float}
    assert scale.interface.defaults == {"factor": 2.0}
    assert scale.interface.outputs == {"o0": list[float]}
    assert scale.interface.output_kind == "single"


def test_a_missing_annotation_names_the_task_and_the_parameter_with_a_fix() -> None:
    with pytest.raises(SignatureError) as info:

        @task
        def loose(count: int, label) -> str:  # type: ignore[no-untyped-def]
            return label * count

    error = info.value
    assert (error.task, error.variable) == ("loose", "label")
    assert "parameter 'label'" in str(error)
    assert "Fix: annotate it, e.g. `def loose(label: int) -> float`" in str(error)


def test_name_overrides_the_task_name_only() -> None:
    @task(name="renamed")
    def original(n: int) -> int:
        return n

    assert original.name == "renamed"
    assert original.__name__ == "original"
    assert repr(original) == "<FunctionTask renamed>"


def test_the_function_stays_reachable_and_documented() -> None:
    def add(a: int, b: int = 1) -> int:
        """Add two numbers."""
        return a + b

    wrapped = task(add)
    assert wrapped.__wrapped__ is add
    assert (wrapped.__name__, wrapped.__doc__) == ("add", "Add two numbers.")
    assert wrapped.__qualname__ == add.__qualname__
    assert wrapped.__module__ == __name__
    assert inspect.signature(wrapped) == inspect.signature(add)  # help() shows the real one
    assert wrapped.__wrapped__(a=1, b=2) == 3  # the plain function, no engine


# --- @task: calling one ------------------------------------------------------------


def test_a_positional_call_says_to_use_keywords_and_runs_nothing() -> None:
    ran = []

    @task
    def add(a: int, b: int) -> int:
        ran.append(a)
        return a + b

    with pytest.raises(SignatureError) as info:
        add(1, b=2)
    assert isinstance(info.value, TypeError)  # what Python raises for a bad call
    assert "1 positional argument(s)" in str(info.value)
    assert info.value.fix == "call it as add(a=..., b=...)"
    assert ran == []


def test_a_task_called_outside_a_workflow_runs_and_returns_its_value() -> None:
    @task
    def add(a: int, b: int = 10) -> int:
        return a + b

    @task
    def bounds(values: list[int]) -> MinMax:
        return MinMax(min(values), max(values))

    @task
    def pair(n: int) -> tuple[int, str]:
        return n, str(n)

    @task
    def nothing(n: int) -> None:
        return None

    assert add(a=1, b=2) == 3
    assert add(a=1) == 11  # the default of b
    result = bounds(values=[4, 1, 7])
    assert result == MinMax(1, 7) and type(result) is MinMax and result.high == 7
    assert pair(n=5) == (5, "5")
    assert nothing(n=1) is None


@pytest.mark.parametrize(("cache", "runs"), [(True, [3]), (False, [3, 3])], ids=["cached", "not"])
def test_a_task_called_twice_runs_its_body_once_when_cached(cache: bool, runs: list[int]) -> None:
    ran = []

    @task(cache=cache)
    def square(n: int) -> int:
        ran.append(n)
        return n * n

    assert square(n=3) == 9
    assert square(n=3) == 9
    assert ran == runs
    assert square(n=4) == 16  # another input is another cache entry
    assert ran == [*runs, 4]


def test_a_bad_call_outside_a_workflow_is_refused_before_the_body_runs() -> None:
    ran = []

    @task
    def square(n: int) -> int:
        ran.append(n)
        return n * n

    with pytest.raises(SignatureError, match=r"task 'square' has no input 'm'"):
        square(m=3)
    with pytest.raises(SignatureError, match=r"task 'square' is missing input 'n' \(int\)"):
        square()
    with pytest.raises(TypeMismatchError, match=r"input 'n' of task 'square' expects int"):
        square(n="3")
    assert ran == []


# --- shipping a task to a worker ------------------------------------------------------


@pytest.mark.parametrize("dumps", [pickle.dumps, cloudpickle.dumps], ids=["pickle", "cloudpickle"])
def test_an_importable_task_travels_by_reference(dumps: Any) -> None:
    from flyte_basics.mapping import square

    data = dumps(square)
    assert b"flyte_basics.mapping" in data and b"task_by_reference" in data
    assert pickle.loads(data) is square  # the very same task, its globals included


@pytest.mark.parametrize("dumps", [pickle.dumps, cloudpickle.dumps], ids=["pickle", "cloudpickle"])
def test_a_task_defined_in_a_function_travels_by_value(dumps: Any) -> None:
    factor = 3

    @task(cache=True, retries=1)
    def scaled(n: int) -> int:
        """Multiply by the factor."""
        return n * factor

    data = dumps(scaled)
    assert b"task_by_value" in data
    copy = pickle.loads(data)
    assert copy is not scaled and isinstance(copy, FunctionTask)
    assert copy.run({"n": 2}) == {"o0": 6}  # the closure came along
    assert (copy.name, copy.options, copy.interface) == (
        scaled.name,
        scaled.options,
        scaled.interface,
    )
    assert (copy.__name__, copy.__doc__) == ("scaled", "Multiply by the factor.")
