"""``make demo``: run the seed ML pipeline as a workflow and say where everything went.

Run it twice: the second run restores the cached tasks instead of recomputing them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import kernelflow
from kernelflow.progress import TextProgress
from kernelflow.store.home import open_store

HERE = Path(__file__).resolve().parent


def main() -> int:
    target = f"{HERE / 'flyte_basics' / 'ml_pipeline.py'}:ml_pipeline"
    result = kernelflow.run(target, {"n_rows": 5000}, listeners=[TextProgress(sys.stdout)])
    if result.error is not None:
        print(f"error: {result.error}")
        return 1
    store = open_store()
    print()
    print(f"mean squared error on the test split: {result.outputs['o0']:.4f}")
    print(f"run id:     {result.run_id} (workflow version {result.version})")
    print(f"store:      {store.home}")
    for node, task_run in result.tasks.items():
        state = (
            f"cached, saved {task_run.saved:.2f} s"
            if task_run.status == "cached"
            else (f"{task_run.status} in {task_run.duration:.2f} s")
        )
        print(f"  {node:<14} {state}")
    print("outputs:")
    for row in store.runs.node_executions(result.run_id):
        for name, meta in row["outputs"].items():
            print(f"  {row['node']}.{name:<8} {store.home / meta['artifact']['path']}")
    print(f"history:    kernelflow runs   |   lineage: kernelflow lineage {result.run_id} evaluate")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
