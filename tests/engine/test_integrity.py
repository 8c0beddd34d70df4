"""Damaged artifacts are detected, reported, recomputed; concurrent runs share one store."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import kernelflow
from kernelflow import task, workflow
from kernelflow.errors import KernelflowWarning

RUNS: list[str] = []


@task(cache=True)
def frame(n: int) -> pd.DataFrame:
    RUNS.append("frame")
    return pd.DataFrame({"x": np.arange(n, dtype="float64"), "label": [f"r{i}" for i in range(n)]})


@task(cache=True)
def column(df: pd.DataFrame) -> np.ndarray:
    RUNS.append("column")
    return df["x"].to_numpy() * 2


@task(cache=True)
def summary(values: np.ndarray) -> dict[str, object]:
    RUNS.append("summary")  # the running totals make the pickle large enough for a file
    return {"total": float(values.sum()), "running": values.cumsum().tolist()}


@workflow
def pipeline(n: int = 1000) -> dict[str, object]:
    return summary(values=column(df=frame(n=n)))


def _damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "truncate":
        path.write_bytes(data[: len(data) // 2])
    else:
        middle = len(data) // 2
        path.write_bytes(data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :])


@pytest.mark.parametrize("how", ["truncate", "flip"])
def test_every_damaged_artifact_is_detected_recomputed_and_repaired(
    store_home: Path, how: str
) -> None:
    RUNS.clear()
    expected = {"total": 999000.0, "running": (np.arange(1000) * 2).cumsum().tolist()}
    assert pipeline() == expected
    files = sorted((store_home / "artifacts").rglob("*.*"))
    assert {f.suffix for f in files} == {".parquet", ".npy", ".pkl"}
    for path in files:
        _damage(path, how)
    RUNS.clear()
    with pytest.warns(KernelflowWarning, match="damaged") as caught:
        assert pipeline() == expected
    damaged = {str(w.message).split("task ")[1].split()[0] for w in caught.list}
    assert damaged == {"'frame'", "'column'", "'summary'"}
    assert RUNS == ["frame", "column", "summary"]
    RUNS.clear()
    result = kernelflow.run(pipeline)
    assert RUNS == [] and {t.status for t in result.tasks.values()} == {"cached"}


def test_a_tampered_pickle_is_never_loaded(store_home: Path) -> None:
    import pickle

    RUNS.clear()
    pipeline()
    (pickled,) = (store_home / "artifacts").rglob("*.pkl")
    pickled.write_bytes(pickle.dumps({"total": -1.0, "running": []}))  # same format, no key
    RUNS.clear()
    with pytest.warns(KernelflowWarning, match="'summary'"):
        assert pipeline()["total"] == 999000.0
    assert RUNS == ["summary"]


def test_concurrent_runs_share_one_fresh_store(tmp_path: Path) -> None:
    script = tmp_path / "flow.py"
    script.write_text(
        "import numpy as np\nfrom kernelflow import task, workflow\n\n\n"
        "@task(cache=True)\ndef make(n: int) -> np.ndarray:\n"
        "    return np.random.default_rng(0).normal(size=n)\n\n\n"
        "@task(cache=True)\ndef total(a: np.ndarray) -> float:\n    return float(a.sum())\n\n\n"
        "@workflow\ndef wf(n: int = 200000) -> float:\n    return total(a=make(n=n))\n"
    )
    command = [sys.executable, "-m", "kernelflow", "run", "flow.py:wf"]
    processes = [
        subprocess.Popen(
            command,
            cwd=tmp_path,
            env=dict(os.environ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    results = [process.communicate(timeout=120) for process in processes]
    assert [p.returncode for p in processes] == [0, 0, 0, 0], [r[1] for r in results]
    values = {out.split("o0 = ")[1].split()[0] for out, _ in results}
    assert len(values) == 1
    fifth = subprocess.run(
        command, cwd=tmp_path, env=dict(os.environ), capture_output=True, text=True, timeout=120
    )
    assert fifth.returncode == 0
    assert "make cached" in fifth.stderr and "total cached" in fifth.stderr
    assert fifth.stdout.split("o0 = ")[1].split()[0] in values
