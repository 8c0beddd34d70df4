"""In a real kernel: results, the cache across kernels, and exactly-affected reruns."""

from __future__ import annotations

from pathlib import Path

import pytest
from notebook_runner import execute, make_notebook, outputs_text

pytestmark = pytest.mark.notebook

HELPER = "def helper(x):\n    return x * 2"
TASK_A = "%%task a --cache\nlog('a')\nxs = list(range(n))"
TASK_B = "%%task b --cache\nlog('b')\nys = [helper(x) for x in xs]"
TASK_C = "%%task c --cache\nlog('c')\ntotal: int = sum(ys) * scale"


def _notebook(
    log: Path,
    *,
    n: int = 3,
    scale: int = 1,
    helper: str = HELPER,
    task_b: str = TASK_B,
    task_c: str = TASK_C,
) -> object:
    return make_notebook(
        [
            "%load_ext kernelflow",
            (f"n = {n}\nscale = {scale}", ["parameters"]),
            f"import pathlib\n\ndef log(name):\n    with open({str(log)!r}, 'a') as f:\n"
            "        f.write(name + '\\n')",
            helper,
            TASK_A,
            task_b,
            task_c,
            "print('total is', total)",
        ]
    )


def _ran(log: Path) -> list[str]:
    lines = log.read_text().splitlines() if log.exists() else []
    log.unlink(missing_ok=True)
    return lines


def test_results_cache_across_kernels_and_exact_reruns(tmp_path: Path) -> None:
    log = tmp_path / "ran.log"
    first = execute(_notebook(log), cwd=tmp_path)
    assert "total is 6" in outputs_text(first.cells[-1])
    assert "c: ran in" in outputs_text(first.cells[6])
    assert _ran(log) == ["a", "b", "c"]

    second = execute(_notebook(log), cwd=tmp_path)  # a new kernel, the same store
    assert _ran(log) == []
    assert "total is 6" in outputs_text(second.cells[-1])
    assert "c: cached, saved" in outputs_text(second.cells[6])

    commented = TASK_B.replace("log('b')", "log('b')  # says that b ran\n\n# a blank line above")
    execute(_notebook(log, task_b=commented), cwd=tmp_path)
    assert _ran(log) == []

    execute(_notebook(log, task_c=TASK_C.replace("* scale", "* scale + 0")), cwd=tmp_path)
    assert _ran(log) == ["c"]  # a code edit reruns that task only

    changed = execute(_notebook(log, scale=10), cwd=tmp_path)
    assert _ran(log) == ["c"]  # only c reads scale
    assert "total is 60" in outputs_text(changed.cells[-1])

    execute(_notebook(log, helper="def helper(x):\n    return x + x"), cwd=tmp_path)
    assert _ran(log) == ["b"]  # b uses the helper; its output is unchanged, so c is cached

    execute(_notebook(log, helper="def helper(x):\n    return x * 3"), cwd=tmp_path)
    assert _ran(log) == ["b", "c"]  # now ys changed, so c reruns too
