"""The command line: outputs and run ids on success, exit 1 for a failed task, 2 for bad input."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import EXAMPLES
from sample_flows import SIZED

FLOW = """
from kernelflow import task, workflow


@task
def check(n: int) -> int:
    if n < 0:
        raise ValueError("n must not be negative")
    return n


@workflow
def guarded(n: int) -> int:
    return check(n=n)
"""

# A cached task with a pickled output: running it again reads the store key.
PICKLED = """
from kernelflow import task, workflow


@task(cache=True)
def make(n: int) -> set[int]:
    return set(range(n))


@workflow
def keep(n: int = 3) -> set[int]:
    return make(n=n)
"""


def kernelflow_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kernelflow", *args],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        cwd=cwd,
        timeout=120,
    )


def test_run_prints_outputs_and_run_id() -> None:
    done = kernelflow_cli(
        "run",
        f"{EXAMPLES}/flyte_basics/defaults.py:line_wf",
        "-p",
        "x",
        "[1, 2, 3]",
        "-p",
        "y",
        "[2, 4, 6]",
    )
    assert done.returncode == 0, done.stderr
    assert "o0 = 0.0" in done.stdout
    assert "run_id: " in done.stdout
    assert "[2/2] intercept ran in" in done.stderr


def test_parameter_of_the_wrong_type_exits_2_without_traceback() -> None:
    done = kernelflow_cli("run", f"{EXAMPLES}/flyte_basics/defaults.py:line_wf", "-p", "x", "three")
    assert done.returncode == 2
    assert "parameter 'x'" in done.stderr and "list[int]" in done.stderr
    assert "Traceback" not in done.stderr
    assert "run_id" not in done.stdout  # refused before anything ran


def test_unknown_parameter_exits_2_and_lists_the_known_ones() -> None:
    done = kernelflow_cli("run", f"{EXAMPLES}/flyte_basics/defaults.py:line_wf", "-p", "z", "1")
    assert done.returncode == 2
    assert "no parameter 'z'" in done.stderr and "x (list[int])" in done.stderr


def test_failed_task_exits_1_naming_task_and_exception(tmp_path: Path) -> None:
    (tmp_path / "flow.py").write_text(FLOW)
    done = kernelflow_cli("run", "flow.py:guarded", "-p", "n", "-1", cwd=tmp_path)
    assert done.returncode == 1
    assert "task 'check' failed" in done.stderr
    assert "ValueError: n must not be negative" in done.stderr
    assert "Traceback" not in done.stderr
    debug = kernelflow_cli("--debug", "run", "flow.py:guarded", "-p", "n", "-1", cwd=tmp_path)
    assert 'raise ValueError("n must not be negative")' in debug.stderr


def test_unknown_workflow_name_exits_2_and_lists_workflows(tmp_path: Path) -> None:
    (tmp_path / "flow.py").write_text(FLOW)
    done = kernelflow_cli("run", "flow.py:nope", cwd=tmp_path)
    assert done.returncode == 2
    assert "'nope'" in done.stderr and "guarded" in done.stderr


def test_runs_lineage_and_cache_commands(tmp_path: Path) -> None:
    ran = kernelflow_cli(
        "run", f"{EXAMPLES}/flyte_basics/ml_pipeline.py:ml_pipeline", "-p", "n_rows", "200"
    )
    assert ran.returncode == 0, ran.stderr
    run_id = ran.stdout.split("run_id: ")[1].split()[0]
    listing = kernelflow_cli("runs")
    assert run_id in listing.stdout and "ml_pipeline" in listing.stdout
    lineage = kernelflow_cli("lineage", run_id, "evaluate")
    assert lineage.returncode == 0 and '"train"' in lineage.stdout
    cached = kernelflow_cli("cache", "ls")
    assert "make_dataset" in cached.stdout and "train" in cached.stdout
    cleared = kernelflow_cli("cache", "clear", "train")
    assert "removed 1 cache entry" in cleared.stdout
    assert "train " not in kernelflow_cli("cache", "ls").stdout


def test_a_script_that_fails_to_import_exits_2_naming_it(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("from kernelflow import task\ndef oops(:\n")
    (tmp_path / "missing.py").write_text("import not_a_module_kernelflow_test\n")
    broken = kernelflow_cli("run", "broken.py:wf", cwd=tmp_path)
    assert broken.returncode == 2 and "'broken.py' line 2 does not parse" in broken.stderr
    missing = kernelflow_cli("run", "missing.py:wf", cwd=tmp_path)
    assert missing.returncode == 2 and "ModuleNotFoundError" in missing.stderr
    assert "Traceback" not in broken.stderr + missing.stderr


@pytest.mark.parametrize(
    ("kind", "where"),
    [
        ("directory", "journal/99999999-0badc0de.jsonl"),  # a dead process's journal
        ("file", "journal"),
        ("directory", "runs.sqlite"),
        ("directory", "secret.key"),
    ],
)
def test_a_store_path_of_the_wrong_kind_is_one_paragraph_exit_1(
    tmp_path: Path, store_home: Path, kind: str, where: str
) -> None:
    (tmp_path / "flow.py").write_text(PICKLED)
    assert kernelflow_cli("run", "flow.py:keep", cwd=tmp_path).returncode == 0
    path = store_home / where
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
    if kind == "directory":
        path.mkdir(parents=True)
    else:
        path.write_text("")

    done = kernelflow_cli("run", "flow.py:keep", cwd=tmp_path)
    assert done.returncode == 1, done.stderr  # the store cannot be used: not a usage error
    assert "Traceback" not in done.stderr
    (error,) = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert str(path) in error
    assert f"is a {kind}" in error or "Is a directory" in error
    assert "\n  Fix: " in done.stderr


def _age_files(home: Path) -> None:
    """As if the runs were an hour ago: gc keeps files written in its last seconds."""
    then = time.time() - 3600
    for path in (home / "artifacts").rglob("*"):
        os.utime(path, (then, then))


def _file_count(home: Path) -> int:
    return sum(1 for path in (home / "artifacts").rglob("*") if path.is_file())


def test_gc_keeps_the_newest_runs_and_says_what_it_removed(
    tmp_path: Path, store_home: Path
) -> None:
    (tmp_path / "flow.py").write_text(SIZED)
    for n in (1, 2, 3):
        ran = kernelflow_cli("run", "flow.py:sized", "-p", "n", str(n), "--quiet", cwd=tmp_path)
        assert ran.returncode == 0, ran.stderr
    _age_files(store_home)
    assert _file_count(store_home) == 6

    dry = kernelflow_cli("gc", "--keep-runs", "1", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "Would remove 2 runs of 3 (4 node records)" in dry.stdout
    assert "2 artifact files" in dry.stdout and "nothing was removed" in dry.stdout
    assert len(kernelflow_cli("runs").stdout.splitlines()) == 4  # header and three runs
    assert _file_count(store_home) == 6

    done = kernelflow_cli("gc", "--keep-runs", "1")
    assert done.returncode == 0, done.stderr
    assert "Removed 2 runs of 3 (4 node records)" in done.stdout
    assert "2 artifact files" in done.stdout and "Freed " in done.stdout
    assert len(kernelflow_cli("runs").stdout.splitlines()) == 2
    assert _file_count(store_home) == 4  # fill's three, kept by the cache, and the last tail
    again = kernelflow_cli("run", "flow.py:sized", "-p", "n", "1", cwd=tmp_path)
    assert "fill cached" in again.stderr, again.stderr


def test_gc_with_a_negative_count_exits_2() -> None:
    done = kernelflow_cli("gc", "--keep-runs", "-1")
    assert done.returncode == 2
    assert "must not be negative" in done.stderr and "Traceback" not in done.stderr


def test_cache_clear_frees_the_files_only_the_cache_kept(tmp_path: Path, store_home: Path) -> None:
    (tmp_path / "flow.py").write_text(SIZED)
    for n in (1, 2, 3):
        ran = kernelflow_cli("run", "flow.py:sized", "-p", "n", str(n), "--quiet", cwd=tmp_path)
        assert ran.returncode == 0, ran.stderr
    _age_files(store_home)
    assert kernelflow_cli("gc", "--keep-runs", "1").returncode == 0
    assert _file_count(store_home) == 4  # fill's three, and tail's output in the kept run
    records = (store_home / "runs.sqlite").stat().st_size

    cleared = kernelflow_cli("cache", "clear", "fill")

    assert cleared.returncode == 0, cleared.stderr
    assert "removed 3 cache entries, then 2 artifact files" in cleared.stdout
    assert "Freed " in cleared.stdout
    assert _file_count(store_home) == 2  # what the kept run used: fill's and tail's output
    assert (store_home / "runs.sqlite").stat().st_size <= records
