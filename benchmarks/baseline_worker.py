"""Baseline measurements (flytekit, Apache Hamilton), run inside ``.venv-baselines``.

A script, not part of the ``benchmarks`` package: it runs in the baselines env,
where kernelflow is not installed. It reads one JSON request per line on stdin
and answers one JSON line on stdout: ``{"result": ...}`` or ``{"error": "..."}``.
Each timing request is one repetition, so the runner can interleave baseline
and kernelflow repetitions. Anything the libraries print goes to stderr.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

# flytekit wants tasks at module level, with annotations it can resolve here.
import numpy as np
import pandas as pd
from flytekit import HashMethod, task, workflow

HOME = Path(os.environ.get("BENCH_HOME", "."))
_built: dict[tuple[Any, ...], Any] = {}


# --- flytekit ---------------------------------------------------------------------


def _hash_frame(frame: pd.DataFrame) -> str:
    return str(pd.util.hash_pandas_object(frame).sum())


@task
def inc(x: int) -> int:
    return x + 1


@task(cache=True, cache_version="1")
def cached_inc(x: int) -> int:
    return x + 1


# Without a HashMethod, flytekit keys a DataFrame input by its (random) upload URI
# and never hits; HashMethod is its documented way to cache frames.
@task(cache=True, cache_version="1")
def double(frame: Annotated[pd.DataFrame, HashMethod(_hash_frame)]) -> pd.DataFrame:
    return frame * 2


def _flyte_chain(n: int, cache: bool) -> Any:
    step = cached_inc if cache else inc

    @workflow
    def chain(x: int = 0) -> int:
        for _ in range(n):
            x = step(x=x)
        return x

    return chain


def flyte_chain(n: int, cache: bool, round: int) -> float:
    """One local run of an n-task chain; cached runs always use the same input."""
    key = ("flyte_chain", n, cache)
    if key not in _built:
        _built[key] = _flyte_chain(n, cache)
        if cache:
            _built[key](x=0)  # fill the cache: every timed run is all hits
    chain = _built[key]
    x = 0 if cache else round * 1_000_000
    start = time.perf_counter()
    result = chain(x=x)
    seconds = time.perf_counter() - start
    assert result == x + n, result
    return seconds


def _frame(rows: int) -> pd.DataFrame:
    data = np.random.default_rng(0).standard_normal((rows, 10))
    return pd.DataFrame(data, columns=[f"c{i}" for i in range(10)])


def flyte_df_hit(rows: int, round: int) -> float:
    """One call (a cache hit) of a cached task on a rows x 10 frame."""
    key = ("flyte_df", rows)
    if key not in _built:
        _built[key] = _frame(rows)
        double(frame=_built[key])  # fill the cache: every timed call is a hit
    frame = _built[key]
    start = time.perf_counter()
    result = double(frame=frame)
    seconds = time.perf_counter() - start
    assert result.shape == frame.shape
    return seconds


# --- Hamilton ---------------------------------------------------------------------


def _hamilton_module(n: int) -> Any:
    """A module of n chained functions, written to a file so Hamilton can hash sources."""
    name = f"hamilton_chain_{n}"
    lines = ["def n0(x: int) -> int:", "    return x + 1", ""]
    for i in range(1, n):
        lines += [f"def n{i}(n{i - 1}: int) -> int:", f"    return n{i - 1} + 1", ""]
    (HOME / f"{name}.py").write_text("\n".join(lines))
    if str(HOME) not in sys.path:
        sys.path.insert(0, str(HOME))
    return importlib.import_module(name)


def hamilton_chain(n: int, cache: bool, round: int) -> float:
    """One ``driver.execute`` of an n-node chain; cached runs use the same input."""
    key = ("hamilton_chain", n, cache)
    if key not in _built:
        from hamilton import driver

        builder = driver.Builder().with_modules(_hamilton_module(n))
        if cache:
            builder = builder.with_cache(path=str(HOME / "hamilton-cache"))
        _built[key] = builder.build()
        if cache:
            _built[key].execute([f"n{n - 1}"], inputs={"x": 0})  # fill the cache
    dr = _built[key]
    x = 0 if cache else round * 1_000_000
    start = time.perf_counter()
    result = dr.execute([f"n{n - 1}"], inputs={"x": x})
    seconds = time.perf_counter() - start
    assert result[f"n{n - 1}"] == x + n, result
    return seconds


# --- the protocol -----------------------------------------------------------------


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": sys.version.split()[0]}
    for package in ("flytekit", "apache-hamilton", "pandas", "pyarrow", "numpy"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "absent"
    return found


OPS: dict[str, Callable[..., Any]] = {
    "versions": versions,
    "flyte_chain": flyte_chain,
    "flyte_df_hit": flyte_df_hit,
    "hamilton_chain": hamilton_chain,
    "quit": lambda: None,
}


def main() -> None:
    answers = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # whatever the libraries print must not reach the protocol stream
    sys.stdout = sys.stderr
    for line in sys.stdin:
        request = json.loads(line)
        op = request.pop("op")
        try:
            answer = {"result": OPS[op](**request)}
        except Exception as error:
            traceback.print_exc()
            answer = {"error": f"{type(error).__name__}: {error}"}
        answers.write(json.dumps(answer) + "\n")
        answers.flush()
        if op == "quit":
            return


if __name__ == "__main__":
    main()
