"""Issue 14, points 6, 8, 10: launch plans, human-in-the-loop signals, the remote client.

The programs are in ``examples/flyte_lifecycle/``, written Flyte's way, importing
only from ``kernelflow``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import EXAMPLES
from test_cli import kernelflow_cli

from kernelflow import CronSchedule, FixedRate, LaunchPlan
from kernelflow.errors import KernelflowError, ParameterError

PROGRAMS = EXAMPLES / "flyte_lifecycle"
PLANS = PROGRAMS / "plans.py"
SIGNALS = PROGRAMS / "signals.py"


@pytest.fixture
def plans():  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(PROGRAMS))
    try:
        import plans as module

        yield module
    finally:
        sys.path.remove(str(PROGRAMS))


# --- point 6: launch plans ---------------------------------------------------------


def test_a_launch_plan_applies_fixed_and_default_inputs(plans) -> None:  # type: ignore[no-untyped-def]
    assert plans.doubled() == 12.0  # default values [1, 2, 3], fixed factor 2
    assert plans.doubled(values=[5.0], offset=1.0) == 11.0  # defaults can be overridden
    with pytest.raises(ParameterError, match="'factor' is fixed by launch plan 'doubled'"):
        plans.doubled(factor=3.0)
    assert plans.report_default(values=[1.0, 2.0]) == 3.0
    assert plans.report_default.name == "report"


def test_get_or_create_returns_the_same_plan_and_refuses_other_settings(plans) -> None:  # type: ignore[no-untyped-def]
    again = LaunchPlan.get_or_create(
        plans.report,
        name="every_ten_minutes",
        default_inputs={"values": [10.0]},
        schedule=FixedRate(duration=timedelta(minutes=10)),
    )
    assert again is plans.every_ten_minutes
    assert LaunchPlan.get_or_create(plans.report) is plans.report_default
    with pytest.raises(KernelflowError, match="exists already"):
        LaunchPlan.get_or_create(
            plans.report, name="every_ten_minutes", fixed_inputs={"offset": 1.0}
        )


def test_schedules_have_a_local_cron_or_are_refused() -> None:
    assert CronSchedule(schedule="0 6 * * *").cron() == "0 6 * * *"
    assert FixedRate(duration=timedelta(minutes=10)).cron() == "*/10 * * * *"
    assert FixedRate(duration=timedelta(hours=6)).cron() == "0 */6 * * *"
    assert FixedRate(duration=timedelta(days=1)).cron() == "0 0 * * *"
    with pytest.raises(ParameterError, match="has no local meaning"):
        FixedRate(duration=timedelta(minutes=7)).cron()


def test_kernelflow_run_runs_a_launch_plan() -> None:
    done = kernelflow_cli("run", f"{PLANS}:doubled", "-p", "values", "[5.0]")
    assert done.returncode == 0, done.stderr
    assert "o0 = 10.0" in done.stdout
    refused = kernelflow_cli("run", f"{PLANS}:doubled", "-p", "factor", "3")
    assert refused.returncode == 2
    assert "'factor' is fixed by launch plan 'doubled'" in refused.stderr


def test_schedule_add_a_script_launch_plan_then_the_scheduler_runs_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from kernelflow.schedule import scheduler as scheduler_module
    from kernelflow.schedule.cli import add_schedule_commands

    parser = argparse.ArgumentParser()
    add_schedule_commands(parser.add_subparsers())
    monkeypatch.chdir(tmp_path)
    args = parser.parse_args(["schedule", "add", f"{PLANS}:doubled", "-p", "values", "[4.0]"])
    assert args.handler(args) == 0
    added = capsys.readouterr().out
    assert "added plan doubled: 0 6 * * * (UTC)" in added  # the launch plan's own cron

    args = parser.parse_args(["schedule", "add", f"{PLANS}:morning"])
    assert args.handler(args) == 0
    bad = parser.parse_args(["schedule", "add", f"{PLANS}:every_ten_minutes", "--name", "x"])
    assert bad.handler(bad) == 0  # a rate that is a cron step is scheduled
    with pytest.raises(ParameterError, match="is fixed"):
        args = parser.parse_args(["schedule", "add", f"{PLANS}:doubled", "-p", "factor", "1"])
        args.handler(args)

    # The next morning, one pass of the scheduler runs the plans for real.
    tick = (datetime.now(UTC) + timedelta(days=1)).replace(
        hour=6, minute=0, second=0, microsecond=0
    )
    monkeypatch.setattr(scheduler_module, "utc_now", lambda: tick + timedelta(minutes=1))
    capsys.readouterr()
    args = parser.parse_args(["scheduler", "--once"])
    assert args.handler(args) == 0
    out = capsys.readouterr().out
    run_file = f"{tick:%Y%m%dT%H%M%SZ}.log"
    assert f"doubled: succeeded -> runs/doubled/{run_file}" in out
    log = (tmp_path / "runs" / "doubled" / run_file).read_text()
    assert "o0 = 8.0" in log and "run_id: " in log
    morning = (tmp_path / "runs" / "morning" / run_file).read_text()
    assert f"o0 = '{tick:%Y-%m-%d} 06:00: 2.0'" in morning  # the tick is the kickoff input

    from kernelflow import api

    runs = api.runs()
    assert {"doubled", "morning"} <= set(runs["workflow"])
