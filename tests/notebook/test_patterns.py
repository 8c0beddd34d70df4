"""Issue 11: the patterns of real notebooks, each run the four ways on one store.

One small notebook per pattern, written here: its task cells append their name
to ``ran.log`` through a setup helper, so each way shows which bodies ran.
On one store, in this order:

1. a real kernel runs the cells one by one (every task runs), then
   ``%workflow run -p P V1`` (exactly the tasks that read P, and their readers, run);
2. ``kernelflow run`` with ``-p P V1``, then with the defaults: everything cached,
   the same final values (a task that writes a file reruns when the file on
   disk is the other run's);
3. ``kernelflow show`` names the versions of a rebound name (``df@clean``);
4. papermill on the exported notebook with ``-p P V2``: again exactly the
   affected tasks run, and the final value is right.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from notebook_runner import execute, make_notebook, outputs_text, write

import kernelflow
from kernelflow.cli import main

LOG_HELPER = "def log(name):\n    with open('ran.log', 'a') as f:\n        f.write(name + '\\n')"


@dataclass(frozen=True)
class Pattern:
    name: str
    parameters: str  # the parameters cell
    cells: tuple[str, ...]  # task cells, each '%%task NAME --cache\nlog(NAME)\n...'
    param: str
    values: tuple[str, str]  # V1 (the kernel and the command line), V2 (papermill)
    results: tuple[object, object, object]  # `result` with the default, V1, V2
    affected: tuple[tuple[str, ...], tuple[str, ...]]  # the tasks V1, V2 rerun, in order
    edge: str  # a line of `kernelflow show` (a rebound name is versioned: df@clean)
    # Tasks that write a file run again when the file on disk is another run's
    # (a cached file output holds only while the file has that content).
    rewrites: tuple[str, ...] = ()


def _task(name: str, body: str) -> str:
    return f"%%task {name} --cache\nlog({name!r})\n{body}"


PATTERNS = [
    Pattern(
        "import_used_later",
        "n: int = 3",
        (
            _task("load", "import math\nxs = list(range(n))"),
            _task("unit", "scale = 2"),
            _task("roots", "roots = [math.sqrt(x) for x in xs]"),
            _task("report", "result = round(sum(roots) * scale, 6)"),
        ),
        "n",
        ("4", "5"),
        (
            round((0 + 1 + 2**0.5) * 2, 6),
            round((0 + 1 + 2**0.5 + 3**0.5) * 2, 6),
            round((0 + 1 + 2**0.5 + 3**0.5 + 2) * 2, 6),
        ),
        (("load", "roots", "report"),) * 2,
        "in  xs: Any <- load.xs",
    ),
    Pattern(
        "rebound_step_by_step",
        "rows: int = 4",
        (
            _task(
                "load",
                "import pandas as pd\n"
                "df = pd.DataFrame({'x': [float(i) if i % 2 else None for i in range(rows)]})",
            ),
            _task("label", "name = 'rows'"),
            _task("clean", "df = df.dropna()"),
            _task("count", "n = len(df)"),
            _task("report", "result = f'{name}={n}'"),
        ),
        "rows",
        ("6", "9"),
        ("rows=2", "rows=3", "rows=4"),
        (("load", "clean", "count", "report"),) * 2,
        "out df@clean",
    ),
    Pattern(
        "changed_in_place",
        "k: int = 2",
        (
            _task("load", "import pandas as pd\ndf = pd.DataFrame({'x': list(range(k + 2))})"),
            _task("add", "df['y'] = df['x'] * 10"),
            _task("pair", "a = {'v': 1}\nb = {'v': 2}"),
            _task("mark", "for d in [a, b]:\n    d['c'] = d['v'] * 3"),
            _task("report", "result = int(df['y'].sum()) + a['c'] + b['c']"),
        ),
        "k",
        ("3", "4"),
        (60 + 9, 100 + 9, 150 + 9),
        (("load", "add", "report"),) * 2,
        "out a@mark",
    ),
    Pattern(
        "function_and_class",
        "base: int = 2",
        (
            _task(
                "tools",
                "def square(v):\n    return v * v\n\n"
                "class Box:\n    def __init__(self, v):\n        self.v = v\n\n"
                "    def doubled(self):\n        return 2 * self.v",
            ),
            _task("use", "value = Box(square(base)).doubled()"),
            _task("other", "extra = square(3)"),
            _task("report", "result = value + extra"),
        ),
        "base",
        ("3", "4"),
        (8 + 9, 18 + 9, 32 + 9),
        (("use", "report"),) * 2,
        "in  value: Any <- use.value",
    ),
    Pattern(
        "through_a_file",
        "m: int = 3",
        (
            _task(
                "write",
                "import pandas as pd\n"
                "pd.DataFrame({'x': list(range(m))}).to_csv('x.csv', index=False)",
            ),
            _task("other", "w = 5"),
            _task("read", "import pandas as pd\nback = pd.read_csv('x.csv')"),
            _task("report", "result = int(back['x'].sum()) + w"),
        ),
        "m",
        ("4", "5"),
        (3 + 5, 6 + 5, 10 + 5),
        (("write", "read", "report"),) * 2,
        "in  file:x.csv: Any <- write.file:x.csv",
        rewrites=("write",),  # x.csv is the V1 run's when the defaults run again
    ),
    Pattern(
        "untyped_none_parameter_as_bool",
        "flag = None",
        (
            _task("load", "xs = [1, 2, 3]"),
            _task("pick", "chosen = xs[::-1] if flag else xs"),
            _task("report", "result = chosen[0]"),
        ),
        "flag",
        ("False", "True"),
        (1, 1, 3),
        (("pick",), ("pick", "report")),  # False picks what None did: report is a cache hit
        "in  flag: Any <- parameter flag",
    ),
]


def _tasks(pattern: Pattern) -> list[str]:
    return [cell.split()[1] for cell in pattern.cells]


def _flow(pattern: Pattern) -> list:
    return [
        "%load_ext kernelflow",
        LOG_HELPER,
        (pattern.parameters, ["parameters"]),
        *pattern.cells,
    ]


def _ran(work: Path) -> list[str]:
    log = work / "ran.log"
    lines = log.read_text().splitlines() if log.exists() else []
    log.unlink(missing_ok=True)
    return lines


def _result_lines(notebook: object) -> list[object]:
    found = []
    for cell in notebook.cells:  # type: ignore[attr-defined]
        for line in outputs_text(cell).splitlines():
            if line.startswith("RESULT "):
                found.append(ast.literal_eval(line.removeprefix("RESULT ")))
    return found


def _statuses() -> dict[str, str]:
    """Each task's status in the latest run."""
    run_id = kernelflow.runs().run_id[0]
    rows = kernelflow.api.open_store().runs.node_executions(run_id)
    return {row["node"]: row["status"] for row in rows}


@pytest.mark.parametrize("pattern", PATTERNS, ids=[p.name for p in PATTERNS])
def test_a_pattern_runs_the_four_ways_alike(
    pattern: Pattern, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    os.chdir(work)
    flow = write(make_notebook(_flow(pattern), name=pattern.name), work / "flow.ipynb")
    v1, v2 = pattern.values
    r0, r1, r2 = pattern.results

    # 1. A kernel, cell by cell, then %workflow run with the parameter changed.
    kernel = make_notebook(
        [
            *_flow(pattern),
            "print('RESULT', repr(result))\nlog('--')",
            f"%workflow run -p {pattern.param} {v1}",
            "print('RESULT', repr(result))",
        ],
        name=pattern.name,
    )
    done = execute(kernel, cwd=work)
    assert _result_lines(done) == [r0, r1]
    by_cell, _, by_run = "\n".join(_ran(work)).partition("--")
    assert by_cell.split() == _tasks(pattern)
    assert by_run.split() == list(pattern.affected[0])

    # 2. The command line, on the same store: all cached, the same values.
    for params, expected, rewrites in (
        (["-p", pattern.param, v1], r1, ()),
        ([], r0, pattern.rewrites),
    ):
        out = work / "out.ipynb"
        assert main(["run", str(flow), "--quiet", "--output", str(out), *params]) == 0
        assert _ran(work) == list(rewrites)
        assert {t for t, status in _statuses().items() if status != "cached"} == set(rewrites)
        assert kernelflow.read_outputs(out)["result"] == expected

    # 3. The DAG names the versions of what it passes on.
    capsys.readouterr()
    assert main(["show", str(flow)]) == 0
    assert pattern.edge in capsys.readouterr().out

    # 4. Papermill on the exported notebook, a new value: only the affected tasks run.
    exported = kernelflow.export(flow, work / "exports")
    out = work / "papermill.ipynb"
    ran = subprocess.run(
        [
            sys.executable,
            "-m",
            "papermill",
            str(exported.path),
            str(out),
            "-p",
            pattern.param,
            v2,
            "--no-progress-bar",
        ],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=work,
    )
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert _ran(work) == list(pattern.affected[1])
    assert kernelflow.read_outputs(out)["result"] == r2
