"""``%workflow lineage`` as a table a person reads, and ``%workflow --help`` (issue 12, point 5).

In-process, on the real shell of ``conftest.shell``: the magics, the session and
the store are the ones a kernel uses.
"""

from __future__ import annotations

import re

import pandas as pd
import pytest
from IPython.core.interactiveshell import InteractiveShell
from shell_runner import fails, run

from kernelflow import api
from kernelflow.errors import KernelflowError, ParameterError
from kernelflow.notebook.kernel.session import session_of

LOAD = "%%task load_sales\nsales = pd.DataFrame({'amount': [10.0, 20.0, 30.0]})"
TOTAL = "%%task total\ntotal_revenue: float = float(sales['amount'].sum() * (1 + rate))"
COLUMNS = ["name", "value", "type", "hash", "task", "code", "run", "when"]
SHORT_HASH = re.compile(r"[0-9a-f]{8}")


def _sales_then_total(shell: InteractiveShell) -> None:
    """Two cells run one by one, then an unrelated one: the last run is not total's."""
    run(shell, "import pandas as pd\nrate = 0.2")
    run(shell, LOAD)
    run(shell, TOTAL)
    run(shell, "%%task other\nz = 1")


def _row(table: pd.DataFrame, name: str) -> dict[str, str]:
    [row] = [dict(zip(table.columns, values)) for values in table.values if values[0] == name]
    return row


def _assert_no_stored_bytes(table: pd.DataFrame) -> None:
    shown = table.to_string() + table.to_html()
    assert "inline" not in shown and "gAWV" not in shown and "artifact" not in shown


def _lineage_of_total(table: pd.DataFrame, shell: InteractiveShell) -> None:
    """The table for total / total_revenue: the value, then sales and rate."""
    assert list(table.columns) == COLUMNS
    assert list(table.index) == ["output", "input", "input"]
    session = session_of(shell)
    output, sales, rate = (_row(table, n) for n in ("total_revenue", "sales", "rate"))
    code = api.lineage(output["run"], "total")["code_hash"]
    assert output["value"] == "72.0" and output["type"] == "float"
    assert (output["task"], output["code"]) == ("total", str(code)[:8])
    assert output["run"] in session.run_ids and output["when"].startswith("20")
    assert sales["task"] == "load_sales" and SHORT_HASH.fullmatch(sales["code"])
    assert sales["value"] == "pandas.DataFrame with columns ['amount']"
    assert sales["run"] in session.run_ids and sales["run"] != output["run"]
    assert (rate["value"], rate["type"], rate["task"]) == ("0.2", "float", "(kernel)")
    assert all(SHORT_HASH.fullmatch(row["hash"]) for row in (output, sales, rate))
    _assert_no_stored_bytes(table)


def test_lineage_of_a_task_run_from_its_cell_or_of_its_output(shell: InteractiveShell) -> None:
    _sales_then_total(shell)
    _lineage_of_total(run(shell, "%workflow lineage total"), shell)
    _lineage_of_total(run(shell, "%workflow lineage total_revenue"), shell)
    sales = run(shell, "%workflow lineage sales")
    assert list(sales.index) == ["output"] and _row(sales, "sales")["task"] == "load_sales"


def test_lineage_after_workflow_run_names_parameters_and_upstream_tasks(
    shell: InteractiveShell,
) -> None:
    _sales_then_total(shell)
    run(shell, "k = 2")
    run(shell, "%%task scale --defer\nscaled: float = total_revenue * k")
    run(shell, "%workflow run -p k 3")
    table = run(shell, "%workflow lineage scaled")
    scaled, total, k = (_row(table, n) for n in ("scaled", "total_revenue", "k"))
    assert (scaled["value"], scaled["task"]) == ("216.0", "scale")
    assert (total["task"], total["run"]) == ("total", scaled["run"])
    assert (k["value"], k["type"], k["task"], k["code"]) == ("3", "int", "parameter", "")
    _assert_no_stored_bytes(table)


def test_lineage_falls_back_to_the_stores_latest_run(shell: InteractiveShell) -> None:
    _sales_then_total(shell)
    shell.run_line_magic("unload_ext", "kernelflow")
    shell.run_line_magic("load_ext", "kernelflow")  # a new session: it has run nothing
    assert not session_of(shell).run_ids
    table = run(shell, "%workflow lineage total_revenue")
    output = _row(table, "total_revenue")
    assert (output["value"], output["task"]) == ("72.0", "total")
    assert _row(table, "sales")["task"] == "load_sales"


def test_lineage_of_an_unknown_name_says_where_it_looked(shell: InteractiveShell) -> None:
    _sales_then_total(shell)
    error = fails(shell, "%workflow lineage nothing_like_it")
    assert isinstance(error, KernelflowError)
    assert "no run of this kernel, and none in the store" in str(error)
    assert "'nothing_like_it'" in str(error) and "task name" in str(error.fix)


@pytest.mark.parametrize("line", ["%workflow", "%workflow --help", "%workflow -h"])
def test_workflow_alone_or_with_help_prints_the_usage(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str], line: str
) -> None:
    assert run(shell, line) is None
    shown = capsys.readouterr()
    assert shown.out.startswith("usage: %workflow") and "required" not in shown.out
    for command in ("show", "run", "resume", "export", "runs", "lineage", "cache"):
        assert re.search(rf"^\s+{command}\s+\S", shown.out, re.MULTILINE), command
    assert shown.err == ""


@pytest.mark.parametrize(
    ("command", "mentions"),
    [
        ("show", "picture"),
        ("run", "-p NAME VALUE"),
        ("resume", "RUN_ID"),
        ("export", "--from NOTEBOOK"),
        ("runs", "history"),
        ("lineage", "NAME"),
        ("cache", "{ls,clear}"),
    ],
)
def test_each_command_prints_its_usage_with_help(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str], command: str, mentions: str
) -> None:
    assert run(shell, f"%workflow {command} --help") is None
    shown = capsys.readouterr().out
    assert shown.startswith(f"usage: %workflow {command}") and mentions in shown


def test_a_wrong_command_names_its_own_help(shell: InteractiveShell) -> None:
    error = fails(shell, "%workflow run --parallel many")
    assert isinstance(error, ParameterError)
    assert "%workflow run: argument --parallel" in str(error)
    assert error.fix == "see %workflow run --help"
    assert fails(shell, "%workflow bogus").fix == "see %workflow --help"  # type: ignore[attr-defined]
