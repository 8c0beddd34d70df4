"""The kernel session in-process: ``%%task`` and ``%workflow`` on a real InteractiveShell.

These are the quick counterparts of ``test_kernel_magics.py`` and
``test_kernel_cache.py``, which start kernels: no process, no messages, the
same magics and session. Each test gets a fresh shell (``conftest.shell``) with
the extension loaded, and its own store (``conftest.store_home``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from IPython.core.interactiveshell import InteractiveShell
from shell_runner import fails, ran, run

from kernelflow.errors import (
    KernelflowError,
    OutputTypeError,
    TaskFailedError,
    UndefinedNameError,
)
from kernelflow.notebook.kernel.session import session_of

MAKE = "%%task make --cache\nlog('make')\nxs = list(range(n))"
SCALE = "%%task scale --cache\nlog('scale')\nys = [x * k for x in xs]"


def test_a_task_cell_binds_its_values_and_says_it_ran(
    shell: InteractiveShell, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shell.user_ns["n"] = 3
    run(shell, "%%task make\nlog('make')\nxs = list(range(n))\ntotal: int = sum(xs)")
    assert (shell.user_ns["xs"], shell.user_ns["total"]) == ([0, 1, 2], 3)
    assert ran(tmp_path) == ["make"]
    assert "make: ran in" in capsys.readouterr().out


def test_a_second_identical_run_is_a_cache_hit_that_restores_the_values(
    shell: InteractiveShell, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shell.user_ns["n"] = 3
    run(shell, MAKE)
    assert ran(tmp_path) == ["make"]
    del shell.user_ns["xs"]
    capsys.readouterr()
    run(shell, MAKE)
    assert ran(tmp_path) == []  # the body did not run again
    assert shell.user_ns["xs"] == [0, 1, 2]  # and its output is back
    assert "make: cached, saved" in capsys.readouterr().out


def test_a_function_a_cache_hit_defines_keeps_its_callers_cache_keys(
    shell: InteractiveShell, tmp_path: Path
) -> None:
    """A cached cell's ``def`` runs again (define_code), hashed by source as when it ran."""
    tools = "%%task tools --cache\ndef square(v):\n    return v * v"
    use = "%%task use --cache\nlog('use')\nx = square(3)"
    run(shell, tools)
    run(shell, use)
    assert ran(tmp_path) == ["use"]
    del shell.user_ns["square"], shell.user_ns["x"]  # as in a new kernel
    run(shell, tools)  # a cache hit: square is defined again, not run as the cell
    run(shell, use)
    assert ran(tmp_path) == []  # issue 11: it was a miss (square was hashed by bytecode)
    assert shell.user_ns["x"] == 9


def test_an_uncached_task_runs_every_time(shell: InteractiveShell, tmp_path: Path) -> None:
    shell.user_ns["n"] = 3
    run(shell, MAKE.replace(" --cache", ""))
    run(shell, MAKE.replace(" --cache", ""))
    assert ran(tmp_path) == ["make", "make"]


def test_a_changed_upstream_reruns_the_downstream(shell: InteractiveShell, tmp_path: Path) -> None:
    shell.user_ns.update(n=3, k=2)
    run(shell, MAKE)
    run(shell, SCALE)
    assert ran(tmp_path) == ["make", "scale"]
    run(shell, SCALE)
    assert ran(tmp_path) == []  # nothing changed

    run(shell, MAKE.replace("range(n)", "range(n + 1)"))  # an edited upstream cell
    run(shell, SCALE)
    assert ran(tmp_path) == ["make", "scale"]
    assert shell.user_ns["ys"] == [0, 2, 4, 6]

    shell.user_ns["k"] = 10  # a changed parameter reruns only what reads it
    run(shell, MAKE.replace("range(n)", "range(n + 1)"))
    run(shell, SCALE)
    assert ran(tmp_path) == ["scale"]
    assert shell.user_ns["ys"] == [0, 10, 20, 30]


def test_a_missing_input_names_the_cell_and_the_variable(
    shell: InteractiveShell, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    error = fails(shell, "%%task reads_nothing\nlog('reads_nothing')\nresult = undefined_name + 1")
    assert isinstance(error, UndefinedNameError)
    assert (error.task, error.variable) == ("reads_nothing", "undefined_name")
    shown = capsys.readouterr().out
    assert "task 'reads_nothing' reads 'undefined_name'" in shown
    assert "Fix: run the cell that defines 'undefined_name' first" in shown
    assert "Traceback" not in shown  # one paragraph, not the engine's frames
    assert ran(tmp_path) == []


def test_a_failing_or_mistyped_cell_names_the_task(shell: InteractiveShell) -> None:
    error = fails(shell, "%%task broken\nvalue = 1 / 0")
    assert isinstance(error, TaskFailedError) and error.task == "broken"
    assert error.error_type == "ZeroDivisionError"
    error = fails(shell, "%%task typed\ncount: int = 'three'")
    assert isinstance(error, OutputTypeError)
    assert "'typed'" in str(error) and "'count'" in str(error) and "expected int" in str(error)


def test_a_cell_reading_a_deferred_task_runs_it_first(
    shell: InteractiveShell, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shell.user_ns.update(n=2, k=3)
    run(shell, MAKE.replace("--cache", "--defer"))
    assert "make: registered (--defer)" in capsys.readouterr().out
    assert "xs" not in shell.user_ns and ran(tmp_path) == []
    run(shell, SCALE)
    assert ran(tmp_path) == ["make", "scale"]
    assert (shell.user_ns["xs"], shell.user_ns["ys"]) == ([0, 1], [0, 3])


def test_workflow_run_runs_the_dag_with_parameters(
    shell: InteractiveShell, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shell.user_ns.update(n=2, k=3)
    run(shell, MAKE.replace("--cache", "--defer"))
    run(shell, SCALE.replace("--cache", "--defer"))
    capsys.readouterr()
    run(shell, "%workflow run -p k 10")
    assert ran(tmp_path) == ["make", "scale"]
    assert shell.user_ns["ys"] == [0, 10]
    progress = capsys.readouterr().out
    assert "2 tasks" in progress and "[2/2] scale ran" in progress and "succeeded" in progress
    run(shell, "%workflow run make")  # a target runs what it needs only
    assert ran(tmp_path) == ["make"]


def test_workflow_run_parses_p_by_the_type_of_the_current_value(shell: InteractiveShell) -> None:
    """A list stays JSON; an untyped (None) value reads as papermill reads it (issue 11, #6)."""
    shell.user_ns.update(xs=[1], flag=None, rate=0.5, name="a")
    run(shell, "%%task use --defer\nseen: tuple = (xs, flag, rate, name)")
    run(shell, "%workflow run -p xs '[1, 2]' -p flag False -p rate 2 -p name 7")
    seen = shell.user_ns["seen"]
    assert seen == ([1, 2], False, 2.0, "7")
    assert [type(v) for v in seen] == [list, bool, float, str]


def test_workflow_run_with_no_task_cells_says_what_to_do(shell: InteractiveShell) -> None:
    error = fails(shell, "%workflow run")
    assert isinstance(error, KernelflowError)
    assert "no task cells have run in this kernel yet" in str(error)


def test_workflow_cache_ls_and_clear(
    shell: InteractiveShell, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shell.user_ns.update(n=2, k=3)
    run(shell, MAKE)
    run(shell, SCALE)
    assert sorted(run(shell, "%workflow cache ls")["task"]) == ["make", "scale"]
    capsys.readouterr()
    run(shell, "%workflow cache clear scale")
    assert "removed 1 cache entry" in capsys.readouterr().out
    assert list(run(shell, "%workflow cache ls")["task"]) == ["make"]
    run(shell, "%workflow cache clear")
    assert run(shell, "%workflow cache ls").empty
    ran(tmp_path)  # forget the runs above
    run(shell, MAKE)
    assert ran(tmp_path) == ["make"]  # the entry is gone: the body runs again


def test_unloading_removes_the_magics_and_the_session(shell: InteractiveShell) -> None:
    run(shell, "%%task make\nxs = [1]")
    shell.run_line_magic("unload_ext", "kernelflow")
    assert shell.find_cell_magic("task") is None
    assert shell.find_line_magic("workflow") is None
    assert shell.custom_exceptions == ()  # kernelflow errors show as any other again
    assert "Cell magic `%%task` not found" in str(fails(shell, "%%task make\nxs = [2]"))
    assert shell.user_ns["xs"] == [1]
    with pytest.raises(KernelflowError, match="not loaded") as info:
        session_of(shell)
    assert info.value.fix == "run %load_ext kernelflow first"

    shell.run_line_magic("load_ext", "kernelflow")  # and loading again starts afresh
    assert session_of(shell).cells == {}
    run(shell, "%%task make\nxs = [3]")
    assert shell.user_ns["xs"] == [3]


def test_a_task_cell_calls_a_dynamic_workflow_through_the_sdk(shell: InteractiveShell) -> None:
    """Issue 14: a %%task cell can call a @dynamic-built sub-DAG (it runs through the engine)."""
    run(
        shell,
        "from kernelflow import dynamic, task, workflow\n"
        "@task\ndef square(x: int) -> int:\n    return x * x\n"
        "@dynamic\ndef squares(n: int) -> list[int]:\n    return [square(x=i) for i in range(n)]\n"
        "@workflow\ndef total(n: int) -> list[int]:\n    return squares(n=n)\n",
    )
    run(shell, "n = 4")
    run(shell, "%%task summed\nresult = sum(total(n=n))")
    assert shell.user_ns["result"] == 0 + 1 + 4 + 9
