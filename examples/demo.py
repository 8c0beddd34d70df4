"""``make demo``: run the quickstart notebook as a workflow and say where everything went.

No kernel is needed: the notebook's task cells run in this process, through the
engine. Run it twice: the second run restores the cached tasks instead of
recomputing them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import kernelflow
from kernelflow.notebook.outputs import write_executed_copy
from kernelflow.progress import TextProgress
from kernelflow.store.home import open_store

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "quickstart.ipynb"


def main() -> int:
    params = {"n_rows": 5000}
    result = kernelflow.run(NOTEBOOK, params, listeners=[TextProgress(sys.stdout)])
    if result.error is not None:
        print(f"error: {result.error}")
        return 1
    store = open_store()
    executed = write_executed_copy(
        NOTEBOOK,
        ROOT / "runs" / "demo" / "quickstart.ipynb",
        run_id=result.run_id,
        params=params,
        store_home=str(store.home),
    )
    print()
    print(f"result:    mse = {result.outputs['mse']:.4f} (test split of {params['n_rows']} rows)")
    print(f"run id:    {result.run_id} (workflow {result.workflow}, version {result.version})")
    for node, task_run in result.tasks.items():
        state = (
            f"cached, saved {task_run.saved:.2f} s"
            if task_run.status == "cached"
            else f"{task_run.status} in {task_run.duration:.2f} s"
        )
        print(f"  {node:<14} {state}")
    print(f"outputs:   in the store {store.home}")
    for row in store.runs.node_executions(result.run_id):
        for name, meta in row["outputs"].items():
            path = meta["artifact"]["path"]
            where = "inline in runs.sqlite (small value)" if path.startswith("inline:") else path
            print(f"  {row['node'] + '.' + name:<24} {where}")
    print(f"notebook:  {executed} (read it back with kernelflow.read_outputs)")
    print(f"history:   kernelflow runs  |  kernelflow lineage {result.run_id} evaluate")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
