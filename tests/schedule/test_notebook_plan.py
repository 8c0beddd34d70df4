"""A notebook's launch plan is its export plus a schedule (issue 14, point 6, notebook form).

Export a real notebook with ``kernelflow export``, schedule the export with
``kernelflow schedule add`` and a cron, fire one due tick of the scheduler (its
clock moved, no waiting): the run is in the store, with the plan's fixed
parameter and the notebook's default for the others.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from notebook_runner import make_notebook, write
from test_cli import kernelflow_cli

import kernelflow
from kernelflow.schedule.scheduler import Scheduler
from kernelflow.store.home import open_store

pytestmark = pytest.mark.notebook


def test_an_exported_notebook_scheduled_with_a_cron_runs_with_the_plans_parameters(
    tmp_path: Path,
) -> None:
    source = make_notebook(
        [
            ("count: int = 3\nfactor: int = 1", ["parameters"]),
            "%load_ext kernelflow",
            "%%task values\nvalues = list(range(count))",
            "%%task total\ntotal: int = sum(values) * factor",
        ],
        name="summing",
    )
    exported = kernelflow_cli(
        "export", str(write(source, tmp_path / "summing.ipynb")), "--out", str(tmp_path / "exports")
    )
    assert exported.returncode == 0, exported.stderr
    export_path = exported.stdout.splitlines()[-1]

    added = kernelflow_cli(
        "schedule", "add", export_path, "--cron", "0 6 * * *", "-p", "count", "5", cwd=tmp_path
    )
    assert added.returncode == 0, added.stderr
    assert "summing" in added.stdout

    tomorrow_six = (datetime.now(UTC) + timedelta(days=1)).replace(
        hour=6, minute=0, second=0, microsecond=0
    )
    scheduler = Scheduler(
        runs_dir=tmp_path / "runs", clock=lambda: tomorrow_six + timedelta(minutes=1)
    )
    [(plan, tick, status)] = scheduler.run_pending()

    assert (plan.name, tick, status) == ("summing", tomorrow_six, "succeeded"), plan.last_error
    executed = tmp_path / "runs" / "summing" / f"{tomorrow_six:%Y%m%dT%H%M%SZ}.ipynb"
    assert kernelflow.read_outputs(executed)["total"] == 10  # sum(range(5)) * 1
    runs = kernelflow.runs()
    assert (runs.workflow[0], runs.status[0]) == ("summing", "succeeded")
    recorded = open_store().runs.get_run(runs.run_id[0])
    assert recorded is not None
    assert recorded["params"] == {"count": 5, "factor": 1}  # the plan's value, the default
    assert scheduler.run_pending() == []  # the tick is done; the next is a day away
