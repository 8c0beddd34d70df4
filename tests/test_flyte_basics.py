"""Flyte's basic examples, with only the import line changed, give Flyte's answers."""

from __future__ import annotations

from pathlib import Path

import pytest
from flyte_basics import csv_filter, defaults, hello_world, mapping, ml_pipeline, named_outputs
from flyte_basics import nested as nested_module

import kernelflow
from kernelflow import map_task


def test_hello_world() -> None:
    assert hello_world.my_wf() == "Hello, World!"


def test_csv_to_dataframe_filter_pipeline(tmp_path: Path) -> None:
    csv = tmp_path / "values.csv"
    csv.write_text("name,value\na,-1\nb,2\nc,4\nd,9\n")
    assert csv_filter.filter_wf(path=str(csv)) == pytest.approx(5.0)
    assert csv_filter.filter_wf(path=str(csv), minimum=5.0) == pytest.approx(9.0)


def test_ml_pipeline_trains_a_linear_regression_with_small_error() -> None:
    mse = ml_pipeline.ml_pipeline()
    assert 0.15 < mse < 0.4  # the generating noise has variance 0.25
    noisier = ml_pipeline.ml_pipeline(noise=2.0)
    assert noisier > 2.0


def test_workflow_defaults_and_task_defaults() -> None:
    assert defaults.line_wf() == pytest.approx(3.0)
    assert defaults.line_wf(x=[1, 2, 3], y=[2, 4, 6]) == pytest.approx(0.0)


def test_nested_workflow_is_inlined_and_runs() -> None:
    assert nested_module.parent_wf() == 32  # ((1 + 2) * 2 + 10) * 2
    assert nested_module.parent_wf(a=0, b=0) == 20
    assert len(nested_module.parent_wf.graph.nodes) == 4


def test_named_tuple_outputs_by_attribute() -> None:
    result = named_outputs.named_wf()
    assert result.slope == pytest.approx(-1.5)
    assert result.intercept == pytest.approx(3.0)
    assert type(result).__name__ == "LineOut"
    assert named_outputs.tuple_wf() == (6, 3.0)


def test_map_task_in_a_workflow_and_on_its_own() -> None:
    assert mapping.squares_wf() == 30
    assert mapping.squares_wf(xs=[]) == 0
    assert map_task(mapping.square)(x=[3, 1, 2]) == [9, 1, 4]


def test_a_task_called_outside_a_workflow_runs_through_the_engine() -> None:
    assert hello_world.say_hello() == "Hello, World!"
    history = kernelflow.runs()
    assert list(history["workflow"]) == ["say_hello"]
    assert list(history["status"]) == ["succeeded"]
