"""The cache across processes: hits for the same code and inputs, misses for real changes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = """
from pathlib import Path

from kernelflow import task, workflow

LOG = Path({log!r})


@task(cache=True, cache_version={version!r})
def expensive(n: int) -> int:
    {comment}
    with LOG.open("a") as log:
        log.write("ran\\n")
    return n * n


@workflow
def wf(n: int = 3) -> int:
    return expensive(n=n)
"""


def _run_in_new_process(
    tmp_path: Path, *, n: int = 3, version: str = "1", comment: str = "# squares n"
) -> str:
    script = tmp_path / "flow.py"
    log = tmp_path / "ran.log"
    script.write_text(
        textwrap.dedent(SCRIPT).format(log=str(log), version=version, comment=comment)
    )
    code = f"from kernelflow import api; print(api.run('{script}:wf', {{'n': {n}}}).outputs['o0'])"
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        check=True,
    )
    return done.stdout.strip()


def _times_ran(tmp_path: Path) -> int:
    log = tmp_path / "ran.log"
    return len(log.read_text().splitlines()) if log.exists() else 0


def test_body_runs_once_across_two_processes(tmp_path: Path) -> None:
    assert _run_in_new_process(tmp_path) == "9"
    assert _run_in_new_process(tmp_path) == "9"
    assert _times_ran(tmp_path) == 1


def test_comment_and_formatting_edits_keep_the_cache(tmp_path: Path) -> None:
    _run_in_new_process(tmp_path, comment="# squares n")
    _run_in_new_process(tmp_path, comment="# a different comment, same code   ")
    assert _times_ran(tmp_path) == 1


def test_new_cache_version_or_new_input_runs_again(tmp_path: Path) -> None:
    _run_in_new_process(tmp_path, version="1")
    _run_in_new_process(tmp_path, version="2")
    assert _times_ran(tmp_path) == 2
    assert _run_in_new_process(tmp_path, version="2", n=4) == "16"
    assert _times_ran(tmp_path) == 3


def test_a_code_change_runs_again(tmp_path: Path) -> None:
    _run_in_new_process(tmp_path, comment="pass")
    _run_in_new_process(tmp_path, comment="n = n + 0")
    assert _times_ran(tmp_path) == 2
