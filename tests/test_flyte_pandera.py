"""Validated frames (issue 15, point 3): pandera ``DataFrame[Schema]`` inputs and outputs.

Flyte-style programs (``examples/flyte_pandera``) with ``flytekitplugins.pandera``
read as ``kernelflow.plugins.pandera``: importing it turns validation on.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Annotated

import pandas as pd
import pytest
from flyte_pandera import orders
from notebook_runner import make_notebook, write
from pandera.typing import DataFrame
from shell_runner import fails, kernel_shell, run

import kernelflow
from kernelflow import task
from kernelflow.errors import KernelflowWarning, OutputTypeError, TaskFailedError
from kernelflow.plugins.pandera import ValidationConfig


@pytest.fixture(autouse=True)
def _calls() -> None:
    orders.CALLS.clear()


def test_a_valid_frame_passes_through_every_task() -> None:
    assert orders.revenue_wf(quantities=[1, 2], prices=[2.0, 3.0]) == 8.0
    assert orders.CALLS == ["load", "add_totals", "revenue"]


def test_an_output_that_breaks_its_schema_fails_the_task_naming_each_column() -> None:
    with pytest.raises(OutputTypeError) as info:
        orders.revenue_wf(quantities=[0, 2], prices=[2.0, -3.0])
    error = info.value
    assert error.task == "load" and error.variable == "o0"
    text = str(error)
    assert "task 'load' produced 'o0' that does not validate" in text
    assert "schema Orders" in text
    # lazy validation: both columns, each with its failed check and the bad value
    assert "column 'quantity': greater_than_or_equal_to(1) failed for 0" in text
    assert "column 'price': greater_than(0) failed for -3.0 (row 1)" in text
    assert orders.CALLS == ["load"]  # nothing downstream ran


def test_an_input_that_breaks_its_schema_fails_the_task_before_its_body_runs() -> None:
    result = kernelflow.run(orders.raw_wf, params={"quantities": [0, 2]})
    assert result.status == "failed"
    error = result.error
    assert isinstance(error, TaskFailedError)
    assert error.task == "add_totals" and error.variable == "orders"
    text = str(error)
    assert "task 'add_totals' received 'orders' that does not validate" in text
    assert "column 'price' is missing" in text
    assert "column 'quantity': greater_than_or_equal_to(1) failed for 0 (row 0)" in text
    assert orders.CALLS == ["raw_orders"]  # neither add_totals nor revenue ran
    assert result.tasks["revenue"].status != "succeeded"


def test_a_frame_that_breaks_no_check_but_lacks_a_column_names_it() -> None:
    with pytest.raises(OutputTypeError, match="column 'total' is missing"):

        @task
        def forgets_total(frame: DataFrame[orders.Orders]) -> DataFrame[orders.Priced]:
            return frame

        forgets_total(frame=pd.DataFrame({"item": ["a"], "quantity": [1], "price": [1.0]}))


def test_on_error_warn_lets_the_frame_through_with_a_warning() -> None:
    @task
    def lenient(n: int) -> Annotated[DataFrame[orders.Orders], ValidationConfig(on_error="warn")]:
        return pd.DataFrame({"item": ["a"], "quantity": [n], "price": [1.0]})

    with pytest.warns(KernelflowWarning, match="column 'quantity'"):
        frame = lenient(n=0)
    assert list(frame.quantity) == [0]


def test_a_plain_frame_feeds_a_schema_input_and_back_at_definition() -> None:
    # pd.DataFrame -> DataFrame[Orders] is an edge the workflow accepts; the value decides.
    assert orders.raw_wf.graph.nodes  # defined without a TypeMismatchError
    with pytest.raises(kernelflow.errors.TypeMismatchError):

        @task
        def count() -> int:
            return 1

        @kernelflow.workflow
        def wrong() -> float:
            return orders.revenue(priced=count())


def test_a_notebook_cell_output_annotated_with_a_schema_is_validated(tmp_path) -> None:
    setup = (
        "import kernelflow.plugins.pandera\n"
        "import pandas as pd\n"
        "from pandera.typing import DataFrame\n"
        "from flyte_pandera.orders import Orders"
    )
    bad = (
        "%%task load\n"
        "frame: DataFrame[Orders] = pd.DataFrame("
        "{'item': ['a', 'b'], 'quantity': [3, -1], 'price': [0.0, 2.0]})"
    )
    cells = [setup, bad, "%%task count\nn = len(frame)"]
    path = write(make_notebook(cells), tmp_path / "orders.ipynb")
    result = kernelflow.run(kernelflow.load_notebook(path))
    assert result.status == "failed"
    text = str(result.error)
    assert "task 'load' produced 'frame' that does not validate" in text
    assert "column 'quantity'" in text and "column 'price'" in text
    assert result.tasks["count"].status != "succeeded"


def test_a_cell_output_in_a_live_kernel_is_validated_against_a_schema_defined_there(
    tmp_path, monkeypatch
) -> None:
    with kernel_shell(tmp_path, monkeypatch) as shell:
        run(
            shell,
            "import kernelflow.plugins.pandera\nimport pandas as pd\n"
            "import pandera.pandas as pa\nfrom pandera.typing import DataFrame, Series\n"
            "class Points(pa.DataFrameModel):\n    x: Series[int] = pa.Field(ge=0)\n",
        )
        run(shell, "%%task good\nok: DataFrame[Points] = pd.DataFrame({'x': [1, 2]})")
        error = fails(shell, "%%task bad\npoints: DataFrame[Points] = pd.DataFrame({'x': [-1]})")
        assert isinstance(error, OutputTypeError)
        assert (error.task, error.variable) == ("bad", "points")
        assert "column 'x': greater_than_or_equal_to(0) failed for -1 (row 0)" in str(error)


WORKER_SCRIPT = """
import kernelflow.plugins.pandera
import pandas as pd
import pandera.pandas as pa
from pandera.typing import DataFrame, Series

import kernelflow
from kernelflow import task, workflow


class Points(pa.DataFrameModel):
    x: Series[int] = pa.Field(ge=0)


@task
def make() -> pd.DataFrame:
    return pd.DataFrame({"x": [-1]})


@task
def use(df: DataFrame[Points]) -> int:
    return len(df)


@workflow
def wf() -> int:
    return use(df=make())


if __name__ == "__main__":
    result = kernelflow.run(wf, parallel=2)  # tasks of __main__ go to workers by value
    print(result.status)
    print(result.error)
"""


def test_a_worker_process_validates_too_when_the_task_travels_by_value(tmp_path) -> None:
    script = tmp_path / "points.py"
    script.write_text(WORKER_SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=240, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "failed"
    assert "task 'use' received 'df' that does not validate" in done.stdout
    assert "column 'x': greater_than_or_equal_to(0) failed for -1 (row 0)" in done.stdout


def test_a_coercing_schema_hands_on_the_coerced_frame_not_the_original() -> None:
    """``coerce=True`` on a field: the text column the task returned comes out as integers,
    to the caller and to the next task."""
    frame = orders.read_counts(texts=["1", "2", "30"])
    assert frame["count"].tolist() == [1, 2, 30]
    assert str(frame["count"].dtype) == "int64"
    assert orders.counts_wf(texts=["4", "5"]) == "int64"


def test_a_coercing_schema_coerces_an_input_before_the_body_sees_it() -> None:
    raw = pd.DataFrame({"count": ["3", "4"]})
    assert orders.doubled(counts=raw) == 14  # not "33" + "44"
    assert raw["count"].tolist() == ["3", "4"]  # the caller's frame is left as it was


def test_a_frame_the_coercing_schema_rejects_still_fails_naming_the_column() -> None:
    with pytest.raises(OutputTypeError) as info:
        orders.read_counts(texts=["1", "many"])
    assert "column 'count'" in str(info.value)


def test_a_notebook_cell_reads_the_frame_a_coercing_schema_made_upstream(tmp_path) -> None:
    setup = (
        "import kernelflow.plugins.pandera\n"
        "import pandas as pd\n"
        "from pandera.typing import DataFrame\n"
        "from flyte_pandera.orders import Counts"
    )
    cells = [
        setup,
        "%%task read\ncounts: DataFrame[Counts] = pd.DataFrame({'count': ['2', '5']})",
        "%%task total\ntotal = int(counts['count'].sum())",
    ]
    path = write(make_notebook(cells), tmp_path / "counts.ipynb")
    result = kernelflow.run(kernelflow.load_notebook(path))
    assert result.status == "succeeded", result.error
    assert result.outputs["total"] == 7  # integers, not "2" + "5"


def test_a_live_kernel_binds_the_coerced_frame(tmp_path, monkeypatch) -> None:
    with kernel_shell(tmp_path, monkeypatch) as shell:
        run(
            shell,
            "import kernelflow.plugins.pandera\nimport pandas as pd\n"
            "from pandera.typing import DataFrame\nfrom flyte_pandera.orders import Counts\n",
        )
        run(shell, "%%task read\ncounts: DataFrame[Counts] = pd.DataFrame({'count': ['2', '5']})")
        assert str(shell.user_ns["counts"]["count"].dtype) == "int64"
        run(shell, "%%task total\ntotal = int(counts['count'].sum())")
        assert shell.user_ns["total"] == 7
