"""``versions.json`` (issue 16, finding 8): locked, atomic, and rebuilt when corrupt.

Concurrent exports of one workflow must not lose each other's entries, and a
damaged index must not turn ``versions``, ``diff`` and ``export`` into tracebacks:
the exported notebooks beside it hold what it listed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from notebook_runner import make_notebook, write
from test_cli import kernelflow_cli

from kernelflow.errors import KernelflowWarning
from kernelflow.notebook.export import export
from kernelflow.notebook.versions import versions

# Each process waits for the "go" file, so that all of them export at the same time.
EXPORTER = """
import sys, time
from pathlib import Path
from kernelflow.cli import main

go, out, *sources = sys.argv[1:]
while not Path(go).exists():
    time.sleep(0.001)
for source in sources:
    if main(["export", source, "--out", out]) != 0:
        sys.exit(1)
"""


def _source(folder: Path, k: int) -> Path:
    """A notebook of workflow ``flow`` whose version differs with ``k``."""
    notebook = make_notebook(
        [("n: int = 1", ["parameters"]), f"%%task total\ntotal: int = n + {k}"], name="flow"
    )
    folder.mkdir(parents=True, exist_ok=True)
    return write(notebook, folder / f"flow_{k}.ipynb")


def _index(out: Path) -> list[dict]:
    return json.loads((out / "flow" / "versions.json").read_text())["versions"]


def test_concurrent_exports_lose_no_index_entry(tmp_path: Path) -> None:
    out, go = tmp_path / "exports", tmp_path / "go"
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                EXPORTER,
                str(go),
                str(out),
                *(str(_source(tmp_path / "src", 5 * p + i)) for i in range(5)),
            ],
            env=os.environ.copy(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for p in range(8)
    ]
    go.touch()
    results = [process.communicate(timeout=180) for process in processes]
    assert [p.returncode for p in processes] == [0] * 8, [err for _, err in results]

    exported = {path.stem for path in (out / "flow").glob("*.ipynb")}
    listed = [record["version"] for record in _index(out)]
    assert len(exported) == 40
    assert sorted(listed) == sorted(exported)  # every export is listed, once
    assert [r["parent"] for r in _index(out)] == [None, *listed[:-1]]
    cli = kernelflow_cli("versions", "flow", "--out", str(out))
    assert cli.returncode == 0 and len(cli.stdout.splitlines()) == 40


DAMAGE = {
    "not JSON": '{"workflow": "flow", "versions": [',
    "empty": "",
    "not an index": "[]",
    "an entry without tasks": '{"workflow": "flow", "versions": [{"version": "x"}]}',
    "not text": "\udcff",
}


def _damage(out: Path, how: str) -> None:
    (out / "flow" / "versions.json").write_bytes(
        DAMAGE[how].encode("utf-8", errors="surrogateescape")
    )


@pytest.mark.parametrize("how", sorted(DAMAGE))
def test_a_corrupt_index_is_rebuilt_from_the_exported_notebooks(tmp_path: Path, how: str) -> None:
    out = tmp_path / "exports"
    made = [export(_source(tmp_path, k), out) for k in range(3)]
    _damage(out, how)

    with pytest.warns(KernelflowWarning, match="was corrupt .*rebuilt it from the 3 exported"):
        listed = versions("flow", out)

    assert sorted(r["version"] for r in listed) == sorted(e.version for e in made)
    assert [r["parent"] for r in listed] == [None, listed[0]["version"], listed[1]["version"]]
    assert all(r["tasks"] == {"total": r["tasks"]["total"]} for r in listed)
    assert _index(out) == listed  # written back: the next reader needs no repair
    assert versions("flow", out) == listed


def test_versions_diff_and_export_work_past_a_corrupt_index(tmp_path: Path) -> None:
    out = tmp_path / "exports"
    first, second = (export(_source(tmp_path, k), out).version for k in range(2))
    arguments = ("--out", str(out))

    _damage(out, "not JSON")
    listed = kernelflow_cli("versions", "flow", *arguments)
    assert listed.returncode == 0 and "Traceback" not in listed.stderr, listed.stderr
    assert first in listed.stdout and second in listed.stdout
    assert "rebuilt it from the 2 exported notebooks" in listed.stderr

    _damage(out, "not JSON")
    changed = kernelflow_cli("diff", "flow", first, second, *arguments)
    assert changed.returncode == 0, changed.stderr
    assert "changed: total" in changed.stdout

    _damage(out, "not JSON")
    third = kernelflow_cli("export", str(_source(tmp_path, 2)), *arguments)
    assert third.returncode == 0, third.stderr
    assert "new version" in third.stdout and "rebuilt" in third.stderr
    version = third.stdout.split()[1]
    assert [r["version"] for r in _index(out)] == [first, second, version]


def test_an_export_whose_entry_was_lost_is_listed_by_the_next_export(tmp_path: Path) -> None:
    out = tmp_path / "exports"
    first = export(_source(tmp_path, 0), out)
    second = export(_source(tmp_path, 1), out)
    index = out / "flow" / "versions.json"
    kept = json.loads(index.read_text())
    kept["versions"] = kept["versions"][:1]  # as if the export died after its notebook
    index.write_text(json.dumps(kept))

    again = export(_source(tmp_path, 1), out)

    assert (again.version, again.new) == (second.version, False)
    assert [r["version"] for r in versions("flow", out)] == [first.version, second.version]
    assert versions("flow", out)[1]["parent"] == first.version
