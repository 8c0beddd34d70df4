"""Staleness in a kernel: each task's state across runs, why it is stale, and runs of only that.

In-process, on a real IPython shell (the ``shell`` fixture): cells run one by
one, then an upstream cell or a parameter is edited, as a user would.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from IPython.core.interactiveshell import InteractiveShell
from shell_runner import ran, run

from kernelflow.api import open_kernel_session
from kernelflow.render import dag_svg

CELLS = {
    "load": "%%task load\nlog('load')\nxs = list(range(n))",
    "double": "%%task double\nlog('double')\nys = [2 * x for x in xs]",
    "total": "%%task total\nlog('total')\nt = sum(ys)",
}


def _states(shell: InteractiveShell) -> dict[str, tuple[str, str]]:
    frame = run(shell, "%workflow status")
    return {task: (row.state, row.why) for task, row in frame.iterrows()}


def _run_all(shell: InteractiveShell) -> None:
    run(shell, "n = 3")
    for source in CELLS.values():
        run(shell, source)


def test_tasks_run_one_by_one_are_all_up_to_date(shell: InteractiveShell, tmp_path: Path) -> None:
    _run_all(shell)
    assert _states(shell) == {name: ("ran", "") for name in CELLS}
    ran(tmp_path)


def test_an_edited_upstream_cell_makes_it_and_its_readers_stale(
    shell: InteractiveShell, tmp_path: Path
) -> None:
    _run_all(shell)
    run(shell, "%%task double --defer\nlog('double')\nys = [3 * x for x in xs]")
    states = _states(shell)
    assert states["load"] == ("ran", "")
    assert states["double"] == ("stale", "code changed")
    assert states["total"] == ("stale", "upstream double is stale")
    ran(tmp_path)
    run(shell, "%workflow run")  # only what is stale runs
    assert ran(tmp_path) == ["double", "total"]
    assert shell.user_ns["t"] == 9
    assert set(s for s, _ in _states(shell).values()) <= {"ran", "cached"}


def test_a_changed_parameter_makes_its_readers_stale(
    shell: InteractiveShell, tmp_path: Path
) -> None:
    _run_all(shell)
    run(shell, "n = 4")
    states = _states(shell)
    assert states["load"] == ("stale", "input n changed")
    assert states["total"][0] == "stale"
    ran(tmp_path)
    run(shell, "%workflow run")
    assert ran(tmp_path) == ["load", "double", "total"]
    assert shell.user_ns["t"] == 12


def test_a_task_never_run_is_said_so(shell: InteractiveShell) -> None:
    run(shell, "n = 3")
    run(shell, CELLS["load"])
    run(shell, CELLS["double"].replace("%%task double", "%%task double --defer"))
    assert _states(shell)["double"] == ("never run", "")


def test_show_draws_the_states_with_a_legend(shell: InteractiveShell) -> None:
    _run_all(shell)
    run(shell, "n = 5")
    session = open_kernel_session(shell)
    states = {node: status.state for node, status in session.statuses().items()}
    assert states == {"load": "stale", "double": "stale", "total": "stale"}
    picture = dag_svg(session.workflow().graph, states, legend=True)
    assert "kf-legend" in picture and picture.count("#f6b26b") >= 4  # 3 boxes + the legend


def test_export_refuses_a_saved_file_that_is_not_what_the_kernel_ran(
    shell: InteractiveShell, tmp_path: Path
) -> None:
    from notebook_runner import make_notebook, write
    from shell_runner import fails

    saved = write(
        make_notebook(
            ["def log(name):\n    pass", ("n: int = 3", ["parameters"]), *CELLS.values()]
        ),
        tmp_path / "saved.ipynb",
    )
    run(shell, "n = 3")
    run(shell, CELLS["load"])
    run(shell, CELLS["double"].replace("2 * x", "5 * x"))  # edited and run, not saved
    error = fails(shell, f"%workflow export --from {saved} --out {tmp_path / 'exports'}")
    assert "task 'double' has other code in the file" in str(error)
    assert not (tmp_path / "exports").exists()
    run(shell, CELLS["double"])  # the saved code again: the export goes through
    run(shell, f"%workflow export --from {saved} --out {tmp_path / 'exports'}")
    assert list((tmp_path / "exports").glob("*/*.ipynb"))


def _status_line(shell: InteractiveShell, source: str, capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    run(shell, source)
    return capsys.readouterr().out.strip().splitlines()[-1]


def test_a_task_run_on_a_stale_upstream_says_so(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    _run_all(shell)
    run(shell, "%%task load --defer\nlog('load')\nxs = list(range(n + 1))")  # edited, not run
    line = _status_line(shell, CELLS["double"], capsys)
    assert re.fullmatch(r"double: ran in .* \(upstream load is stale\)", line), line
    line = _status_line(shell, CELLS["total"], capsys)  # stale through double
    assert line.endswith("(upstream double is stale)"), line
    run(shell, "%workflow run")
    line = _status_line(shell, CELLS["total"], capsys)
    assert "stale" not in line, line


def test_an_edited_cell_run_again_is_no_longer_stale_for_its_readers(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    _run_all(shell)
    run(shell, "%%task load --defer\nlog('load')\nxs = [0]")
    run(shell, CELLS["load"])  # back to the code it ran with: not stale
    assert "stale" not in _status_line(shell, CELLS["double"], capsys)


def test_a_changed_parameter_upstream_is_said_in_the_status_line(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    _run_all(shell)
    run(shell, "n = 3")  # the same value again: nothing changed
    assert "stale" not in _status_line(shell, CELLS["double"], capsys)
    run(shell, "n = 5")
    line = _status_line(shell, CELLS["total"], capsys)  # stale through load and double
    assert line.endswith("(upstream double is stale)"), line
    line = _status_line(shell, CELLS["double"], capsys)
    assert line.endswith("(upstream load is stale)"), line
    run(shell, CELLS["load"])  # ran with the new value: its readers are up to date again
    assert "stale" not in _status_line(shell, CELLS["double"], capsys)
