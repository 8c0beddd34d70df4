"""Mistakes in workflows are caught early, with messages that name what is wrong."""

from __future__ import annotations

import pytest

from kernelflow import task, workflow
from kernelflow.errors import (
    DefinitionError,
    OutputTypeError,
    ParameterError,
    SignatureError,
    TypeMismatchError,
)


@task
def to_text(n: int) -> str:
    return str(n)


@task
def increment(n: int) -> int:
    return n + 1


def test_positional_call_of_a_task_is_a_type_error_that_says_keywords() -> None:
    with pytest.raises(TypeError, match=r"task 'increment'.*keyword arguments only") as info:
        increment(1)
    assert "increment(n=...)" in str(info.value)


def test_positional_call_of_a_workflow_is_a_type_error() -> None:
    @workflow
    def wf(n: int) -> int:
        return increment(n=n)

    with pytest.raises(TypeError, match=r"workflow 'wf'.*keyword arguments only"):
        wf(3)


def test_missing_parameter_annotation_names_the_parameter() -> None:
    with pytest.raises(SignatureError, match=r"'n'") as info:

        @task
        def untyped(n) -> int:  # type: ignore[no-untyped-def]
            return n

    assert "untyped" in str(info.value)


def test_without_return_annotation_a_returned_value_is_an_error_naming_the_task() -> None:
    @task  # as in Flyte: no return annotation declares no outputs
    def untyped_return(n: int):  # type: ignore[no-untyped-def]
        return n

    with pytest.raises(OutputTypeError, match="task 'untyped_return' should return None"):
        untyped_return(n=1)


def test_output_feeding_an_input_of_another_type_fails_at_definition() -> None:
    with pytest.raises(TypeMismatchError) as info:

        @workflow
        def wf(n: int) -> int:
            return increment(n=to_text(n=n))

    message = str(info.value)
    assert "'n'" in message and "'increment'" in message
    assert "int" in message and "str" in message and "to_text" in message


def test_constant_of_the_wrong_type_fails_at_definition() -> None:
    with pytest.raises(TypeMismatchError, match=r"input 'n' of task 'increment' expects int"):

        @workflow
        def wf() -> int:
            return increment(n="three")


def test_unknown_keyword_names_the_known_inputs() -> None:
    with pytest.raises(SignatureError, match=r"no input 'm'.*inputs are: n"):

        @workflow
        def wf(n: int) -> int:
            return increment(m=n)


def test_using_a_promise_as_a_value_explains_tracing() -> None:
    with pytest.raises(DefinitionError, match="has no value while the workflow is being defined"):

        @workflow
        def wf(n: int) -> int:
            if increment(n=n):
                return 1
            return 0


def test_wrong_value_at_run_time_names_task_variable_and_both_types() -> None:
    @task
    def lies(n: int) -> int:
        return "not a number"  # type: ignore[return-value]

    with pytest.raises(OutputTypeError) as info:
        lies(n=1)
    message = str(info.value)
    assert "'lies'" in message and "'o0'" in message
    assert "expected int" in message and "str" in message


def test_wrong_parameter_type_is_refused_before_any_task_runs() -> None:
    ran = []

    @task
    def record(n: int) -> int:
        ran.append(n)
        return n

    @workflow
    def wf(n: int) -> int:
        return record(n=n)

    with pytest.raises(ParameterError, match=r"parameter 'n' of workflow 'wf' expects int"):
        wf(n="x")
    assert ran == []
