"""Issue 14, points 6, 8, 10: launch plans, human-in-the-loop signals, the remote client.

The programs are in ``examples/flyte_lifecycle/``, written Flyte's way, importing
only from ``kernelflow``.
"""

from __future__ import annotations

import argparse
import os
import re
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
    default = LaunchPlan.get_default_launch_plan(None, plans.report)
    assert default is plans.report_default  # Flyte's other spelling of the default plan
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


# --- point 8: human in the loop -----------------------------------------------------


def _wait_until(condition, what: str, seconds: float = 60.0):  # type: ignore[no-untyped-def]
    """Poll ``condition`` until it returns something truthy; bounded, never a timing claim."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"gave up waiting for {what}")


def test_wait_for_input_and_approve_get_their_values_from_the_cli(tmp_path: Path) -> None:
    from kernelflow import api

    env = {**os.environ, "SIGNALS_TIMEOUT": "120"}
    running = subprocess.Popen(
        [sys.executable, "-m", "kernelflow", "run", f"{SIGNALS}:review", "-p", "base", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        wait = _wait_until(lambda: api.waiting_nodes(), "the node to wait")[0]
        assert (wait["name"], wait["node"], wait["type"]) == ("extra", "extra", "int")
        run_id = wait["run_id"]
        assert api.runs()["status"][0] == "waiting"  # running, and waiting for a person
        listed = kernelflow_cli("runs")
        assert re.search(rf"{run_id}.*waiting", listed.stdout)
        assert f"extra: waiting for signal 'extra' (int): kernelflow signal {run_id}" in (
            listed.stdout
        )
        bad_run = kernelflow_cli("signal", "no-such-run", "extra", "5")
        assert bad_run.returncode == 2 and "no run 'no-such-run'" in bad_run.stderr
        sent = kernelflow_cli("signal", run_id, "extra", "5")
        assert sent.returncode == 0, sent.stderr
        approved = kernelflow_cli("approve", run_id, "proposal-ok")
        assert approved.returncode == 0, approved.stderr
        out, err = running.communicate(timeout=120)
    finally:
        if running.poll() is None:
            running.kill()
            running.communicate()
    assert running.returncode == 0, err
    assert "o0 = 25" in out  # 2 * 10, approved, + 5
    assert "extra waiting for signal 'extra' (int)" in err  # the task_waiting event
    assert api.waiting_nodes() == []


def test_a_signal_that_does_not_come_in_time_fails_the_node(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from kernelflow import api

    monkeypatch.setenv("SIGNALS_TIMEOUT", "0.2")
    events = []
    result = api.run(f"{SIGNALS}:review", listeners=[events.append])
    assert result.status == "failed"
    assert result.tasks["extra"].status == "failed"
    message = str(result.tasks["extra"].error)
    assert "wait_for_input 'extra' got no value within 0.2 s" in message
    assert f"kernelflow signal {result.run_id} extra VALUE" in message
    waiting = [e for e in events if e.kind == "task_waiting"]
    assert waiting and waiting[0].waiting_for == "signal 'extra' (int)"


def test_a_rejected_approval_fails_the_node(monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    from kernelflow import api

    monkeypatch.setenv("SIGNALS_TIMEOUT", "120")

    def answer() -> None:
        wait = _wait_until(lambda: api.waiting_nodes(), "the first node to wait")[0]
        api.send_signal(wait["run_id"], "extra", "1")
        api.send_signal(wait["run_id"], "proposal-ok", "false")

    helper = threading.Thread(target=answer)
    helper.start()
    result = api.run(f"{SIGNALS}:review")
    helper.join(timeout=120)
    assert result.status == "failed"
    assert "approval 'proposal-ok' was rejected" in str(result.tasks["proposal-ok"].error)


def test_sleep_waits_then_the_workflow_goes_on() -> None:
    from kernelflow import api

    result = api.run(f"{SIGNALS}:nap")
    assert result.status == "succeeded" and result.outputs == {"o0": "done"}
    assert result.tasks["sleep"].status == "succeeded"


# --- point 10: the remote client ----------------------------------------------------


def test_flyte_remote_executes_and_fetches_executions(plans, store_home: Path) -> None:  # type: ignore[no-untyped-def]
    from kernelflow.configuration import Config
    from kernelflow.remote import FlyteRemote

    assert Config.auto().home == store_home == Config.for_sandbox().home
    remote = FlyteRemote(Config.auto(), default_project="flytesnacks", default_domain="development")
    execution = remote.execute(plans.doubled, inputs={"values": [1.0, 4.0]}, wait=True)
    assert execution.is_done and execution.is_successful
    assert execution.id.project == "flytesnacks"
    assert execution.outputs["o0"] == 10.0

    fetched = remote.fetch_execution(name=execution.id.name)
    assert fetched.outputs.get("o0", as_type=float) == 10.0
    assert set(fetched.node_executions) == {"scale", "total"}
    scale = fetched.node_executions["scale"]
    assert scale.status == "succeeded" and scale.is_done
    assert scale.inputs == {"values": [1.0, 4.0]}  # the fixed factor is a constant
    assert scale.outputs == {"o0": [2.0, 8.0]}
    assert fetched.node_executions["total"].inputs == {"values": [2.0, 8.0], "offset": 0.0}
    assert remote.wait(fetched).id.name == execution.id.name

    # A run made elsewhere (the CLI) in the remote's project is an execution too, and the
    # newest one; one of another project is not listed.
    other = kernelflow_cli("run", f"{PLANS}:report", "-p", "values", "[5.0]")
    assert other.returncode == 0, other.stderr
    done = kernelflow_cli(
        "--project", "flytesnacks", "run", f"{PLANS}:report", "-p", "values", "[3.0]"
    )
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.split("run_id: ")[1].split()[0]
    recent = remote.recent_executions(limit=5)
    assert [e.id.name for e in recent] == [run_id, execution.id.name]
    assert recent[0].outputs["o0"] == 3.0
    # the remote's run is recorded in its project: the default project does not list it
    listed = kernelflow_cli("runs", "--all-domains")
    assert execution.id.name not in listed.stdout and run_id not in listed.stdout
    assert execution.id.name in kernelflow_cli("--project", "flytesnacks", "runs").stdout

    with pytest.raises(ParameterError, match="'factor' is fixed"):
        remote.execute(plans.doubled, inputs={"factor": 1.0})
    with pytest.raises(ParameterError, match="no execution 'nope'"):
        remote.fetch_execution(name="nope")


def test_flyte_remote_waits_for_a_running_execution_and_signals_it() -> None:
    from kernelflow.configuration import Config
    from kernelflow.remote import FlyteRemote

    remote = FlyteRemote(Config.for_sandbox())
    env = {**os.environ, "SIGNALS_TIMEOUT": "120"}
    running = subprocess.Popen(
        [sys.executable, "-m", "kernelflow", "run", f"{SIGNALS}:review", "--quiet"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        run_id = _wait_until(lambda: remote.recent_executions(limit=1), "the run")[0].id.name
        execution = remote.fetch_execution(name=run_id)
        assert not execution.is_done
        with pytest.raises(KernelflowError, match="still running"):
            execution.outputs  # noqa: B018
        _wait_until(lambda: remote.list_signals(run_id), "the node to wait")
        remote.set_signal("extra", run_id, 7)
        remote.set_signal("proposal-ok", run_id, True)
        finished = remote.wait(execution, timeout=timedelta(seconds=120))
        running.communicate(timeout=120)
    finally:
        if running.poll() is None:
            running.kill()
            running.communicate()
    assert finished.is_successful
    assert finished.outputs["o0"] == 17
    assert finished.node_executions["extra"].outputs == {"o0": 7}


def test_the_progress_row_of_a_waiting_node_says_waiting() -> None:
    from kernelflow.api import Event
    from kernelflow_jupyter.rows import Row

    row = Row()
    row.apply(Event("task_started", "r", "review", 0.0, node="extra", task="extra"))
    row.apply(
        Event("task_waiting", "r", "review", 0.0, node="extra", waiting_for="signal 'extra' (int)")
    )
    assert row.state == "waiting" and not row.finished


def test_notifications_are_accepted_on_a_launch_plan_and_kept() -> None:
    """Email/Slack/PagerDuty have no local meaning: the plan takes them and still runs."""
    from kernelflow import (
        Email,
        LaunchPlan,
        Slack,
        WorkflowExecutionPhase,
        task,
        workflow,
    )

    @task
    def double(a: int) -> int:
        return a * 2

    @workflow
    def doubler(a: int) -> int:
        return double(a=a)

    told = [
        Email(phases=[WorkflowExecutionPhase.FAILED], recipients_email=["me@example.com"]),
        Slack(phases=[WorkflowExecutionPhase.SUCCEEDED], recipients_email=["team@slack.com"]),
    ]
    plan = LaunchPlan.get_or_create(
        workflow=doubler, name="notified", default_inputs={"a": 4}, notifications=told
    )
    assert plan() == 8
    assert [n.channel for n in told] == ["email", "slack"]
