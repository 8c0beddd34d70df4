"""The scheduler: due ticks, no pile-up, locks, failures, time zones and a real papermill run."""

from __future__ import annotations

import argparse
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook
from test_cli import kernelflow_cli

from kernelflow.schedule import scheduler as scheduler_module
from kernelflow.schedule.cli import add_schedule_commands
from kernelflow.schedule.plans import Plan, PlanStore, make_plan
from kernelflow.schedule.scheduler import Scheduler

T0 = datetime(2024, 1, 10, 12, 0, tzinfo=UTC)  # a Wednesday, winter


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Recorder:
    """A runner that records its calls, fails for chosen plans, and writes the file."""

    def __init__(self, fail: tuple[str, ...] = ()) -> None:
        self.calls: list[tuple[str, datetime, Path]] = []
        self.fail = fail

    def __call__(self, plan: Plan, tick: datetime, out_path: Path) -> None:
        self.calls.append((plan.name, tick, out_path))
        out_path.write_text("{}")
        if plan.name in self.fail:
            raise RuntimeError(f"{plan.name} exploded")


def notebook(path: Path, inputs: dict[str, str] | None = None) -> Path:
    metadata: dict[str, Any] = {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
    }
    if inputs is not None:
        metadata["kernelflow"] = {"workflow": path.stem, "version": "v1", "inputs": inputs}
    nb = new_notebook(
        cells=[
            new_code_cell("n = 1", metadata={"tags": ["parameters"]}),
            new_code_cell("print(n * 2)"),
        ],
        metadata=metadata,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def add(tmp_path: Path, name: str, cron: str, *, tz: str = "UTC", now: datetime = T0) -> Plan:
    path = notebook(tmp_path / "exports" / f"{name}.ipynb")
    return PlanStore().add(make_plan(path, cron, name=name, timezone=tz, now=now))


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2024, 1, day, hour, minute, tzinfo=UTC)


def test_one_pass_runs_exactly_the_due_plans(tmp_path: Path) -> None:
    add(tmp_path, "daily", "0 6 * * *")
    add(tmp_path, "weekly", "0 6 * * 1")  # Mondays; T0 is a Wednesday
    clock, runner = Clock(at(11, 6, 30)), Recorder()
    scheduler = Scheduler(runs_dir=tmp_path / "runs", clock=clock, runner=runner)

    outcomes = scheduler.run_pending()

    assert [(p.name, tick, status) for p, tick, status in outcomes] == [
        ("daily", at(11, 6), "succeeded")
    ]
    assert [call[0] for call in runner.calls] == ["daily"]
    expected = tmp_path / "runs" / "daily" / "20240111T060000Z.ipynb"
    assert runner.calls[0][2] == expected
    plan = PlanStore().get("daily")
    assert plan.last_tick == at(11, 6)
    assert plan.last_status == "succeeded"
    assert plan.last_run_file == str(expected)
    assert plan.running_since is None  # the lock was released
    assert scheduler.run_pending() == []  # same clock: nothing due any more


def test_missed_ticks_run_once_for_the_latest(tmp_path: Path) -> None:
    add(tmp_path, "daily", "0 6 * * *")
    clock, runner = Clock(T0 + timedelta(days=3)), Recorder()  # 3 ticks missed
    scheduler = Scheduler(runs_dir=tmp_path / "runs", clock=clock, runner=runner)

    first = scheduler.run_pending()
    assert [(p.name, tick) for p, tick, _ in first] == [("daily", at(13, 6))]
    assert scheduler.run_pending() == []
    assert len(runner.calls) == 1

    clock.now = at(14, 6)  # the next tick runs as usual
    assert [tick for _, tick, _ in scheduler.run_pending()] == [at(14, 6)]


def test_a_plan_whose_lock_is_held_is_skipped(tmp_path: Path) -> None:
    add(tmp_path, "busy", "0 6 * * *")
    add(tmp_path, "free", "0 6 * * *")
    store = PlanStore()
    assert store.try_lock("busy") is not None  # "running" in this (live) process
    runner = Recorder()
    scheduler = Scheduler(runs_dir=tmp_path / "runs", clock=Clock(at(11, 7)), runner=runner)

    outcomes = {plan.name: status for plan, _, status in scheduler.run_pending()}

    assert outcomes == {"busy": "skipped", "free": "succeeded"}
    assert [call[0] for call in runner.calls] == ["free"]
    busy = store.get("busy")
    assert busy.last_tick is None and busy.last_status is None  # still due later
    assert busy.running_since is not None  # someone else's lock is left alone


def test_a_failing_run_is_recorded_and_the_others_still_run(tmp_path: Path) -> None:
    add(tmp_path, "a_bad", "0 6 * * *")
    add(tmp_path, "b_good", "0 6 * * *")
    runner = Recorder(fail=("a_bad",))
    scheduler = Scheduler(runs_dir=tmp_path / "runs", clock=Clock(at(11, 7)), runner=runner)

    outcomes = {plan.name: status for plan, _, status in scheduler.run_pending()}

    assert outcomes == {"a_bad": "failed", "b_good": "succeeded"}
    bad = PlanStore().get("a_bad")
    assert bad.last_status == "failed"
    assert bad.last_error == "RuntimeError: a_bad exploded"
    assert bad.last_tick == at(11, 6)  # a failure is not retried every pass
    assert bad.running_since is None  # the lock is released after a failure too
    assert scheduler.run_pending() == []


def test_an_interrupted_run_releases_the_lock_and_stays_due(tmp_path: Path) -> None:
    add(tmp_path, "daily", "0 6 * * *")

    def interrupted(plan: Plan, tick: datetime, out_path: Path) -> None:
        raise KeyboardInterrupt

    scheduler = Scheduler(runs_dir=tmp_path / "runs", clock=Clock(at(11, 7)), runner=interrupted)
    with pytest.raises(KeyboardInterrupt):
        scheduler.run_pending()
    plan = PlanStore().get("daily")
    assert plan.running_since is None
    assert plan.last_status == "interrupted"
    assert plan.last_tick is None
    assert [tick for _, tick in scheduler.due()] == [at(11, 6)]


def test_a_paris_morning_plan_is_due_at_five_utc_in_winter(tmp_path: Path) -> None:
    add(tmp_path, "paris", "0 6 * * *", tz="Europe/Paris")
    clock, runner = Clock(at(11, 4, 59)), Recorder()
    scheduler = Scheduler(runs_dir=tmp_path / "runs", clock=clock, runner=runner)

    assert scheduler.run_pending() == []
    clock.now = at(11, 5)
    assert [(p.name, tick) for p, tick, _ in scheduler.run_pending()] == [("paris", at(11, 5))]
    assert runner.calls[0][2].name == "20240111T050000Z.ipynb"


def test_run_now_runs_off_schedule_without_moving_the_ticks(tmp_path: Path) -> None:
    add(tmp_path, "daily", "0 6 * * *")
    clock, runner = Clock(at(11, 3, 15)), Recorder()
    scheduler = Scheduler(runs_dir=tmp_path / "runs", clock=clock, runner=runner)

    plan, tick, status = scheduler.run_now("daily")

    assert (tick, status) == (at(11, 3, 15), "succeeded")
    assert plan.last_tick is None
    clock.now = at(11, 6)
    assert [p.name for p, _, _ in scheduler.run_pending()] == ["daily"]


def test_serve_sleeps_until_the_next_tick_at_most_a_minute(tmp_path: Path) -> None:
    add(tmp_path, "often", "*/15 * * * *")
    clock = Clock(at(11, 6, 14) + timedelta(seconds=30))
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.now += timedelta(seconds=seconds)

    runner = Recorder()
    scheduler = Scheduler(runs_dir=tmp_path / "runs", clock=clock, runner=runner, sleep=sleep)
    scheduler.serve(max_passes=3)

    assert slept == [30.0, 60.0]  # exactly until the 06:15 tick, then capped at a minute
    assert [call[1] for call in runner.calls] == [at(11, 6), at(11, 6, 15)]


def test_scheduler_once_from_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    add(tmp_path, "daily", "0 6 * * *")
    add(tmp_path, "broken", "0 6 * * *")
    runner = Recorder(fail=("broken",))
    monkeypatch.setattr(scheduler_module, "utc_now", Clock(at(11, 6, 1)))
    monkeypatch.setattr(
        scheduler_module, "run_with_papermill", lambda p, t, o, home: runner(p, t, o)
    )
    monkeypatch.chdir(tmp_path)

    parser = argparse.ArgumentParser()
    add_schedule_commands(parser.add_subparsers())
    args = parser.parse_args(["scheduler", "--once"])
    assert args.handler(args) == 1  # one plan failed

    out = capsys.readouterr().out
    assert "daily: succeeded -> runs/daily/20240111T060000Z.ipynb" in out
    assert "broken: failed" in out and "RuntimeError: broken exploded" in out
    args = parser.parse_args(["scheduler", "--once"])
    assert args.handler(args) == 0
    assert "no plans due" in capsys.readouterr().out


@pytest.mark.notebook
def test_a_real_notebook_runs_through_papermill(tmp_path: Path, store_home: Path) -> None:
    path = notebook(tmp_path / "exports" / "double.ipynb", inputs={"n": "int"})
    PlanStore().add(make_plan(path, "0 6 * * *", {"n": "1"}, now=T0))
    scheduler = Scheduler(runs_dir=tmp_path / "runs", clock=Clock(at(11, 6)))

    [(plan, _, status)] = scheduler.run_pending()

    assert status == "succeeded", plan.last_error
    out = tmp_path / "runs" / "double" / "20240111T060000Z.ipynb"
    assert plan.last_run_file == str(out)
    executed = nbformat.read(out, as_version=4)
    printed = [
        output.get("text", "")
        for cell in executed.cells
        for output in cell.get("outputs", [])
        if output.get("output_type") == "stream"
    ]
    assert printed == ["2\n"]  # -p n 1 arrived as the int 1, not the string "1"
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and "n = 1" in injected[0].source


@pytest.mark.notebook
def test_a_failing_notebook_is_recorded_with_the_cell_error(tmp_path: Path) -> None:
    path = notebook(tmp_path / "exports" / "boom.ipynb", inputs={"n": "int"})
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(new_code_cell("raise ValueError('no data for ' + str(n))"))
    nbformat.write(nb, path)
    PlanStore().add(make_plan(path, "0 6 * * *", {"n": "4"}, now=T0))
    scheduler = Scheduler(runs_dir=tmp_path / "runs", clock=Clock(at(11, 6)))

    [(plan, _, status)] = scheduler.run_pending()

    assert status == "failed"
    assert plan.last_error is not None
    assert plan.last_error.startswith("ValueError: no data for 4")
    assert plan.last_run_file is not None and Path(plan.last_run_file).is_file()


# --- a bad plan never stops the others (issue 16, finding 9) ----------------------------


def store_unchecked(name: str, notebook_path: Path, created: datetime = T0) -> None:
    """Store a plan as an older kernelflow could have: no check of its name."""
    PlanStore().plans()  # makes the table
    with sqlite3.connect(PlanStore().path) as conn:
        conn.execute(
            "INSERT INTO plans (name, notebook, cron, params, timezone, created)"
            " VALUES (?, ?, '0 6 * * *', '{}', 'UTC', ?)",
            (name, str(notebook_path), created.isoformat()),
        )


def test_a_stored_plan_with_a_bad_name_fails_alone_and_frees_its_lock(tmp_path: Path) -> None:
    long_name = "a" * 300  # sorts first: it used to stop the pass before the others ran
    store_unchecked(long_name, notebook(tmp_path / "exports" / "long.ipynb"))
    store_unchecked("../escaped", notebook(tmp_path / "exports" / "escaped.ipynb"))
    add(tmp_path, "good", "0 6 * * *")
    runner = Recorder()
    scheduler = Scheduler(runs_dir=tmp_path / "runs", clock=Clock(at(11, 7)), runner=runner)

    outcomes = {plan.name: (status, plan) for plan, _, status in scheduler.run_pending()}

    assert {name: status for name, (status, _) in outcomes.items()} == {
        long_name: "failed",
        "../escaped": "failed",
        "good": "succeeded",
    }
    assert [call[0] for call in runner.calls] == ["good"]
    error = outcomes[long_name][1].last_error
    assert error is not None and "bad plan name" in error and "300 characters" in error
    assert "schedule rm" in error and long_name not in error
    assert "it starts with '.'" in (outcomes["../escaped"][1].last_error or "")
    assert all(plan.running_since is None for plan in PlanStore().plans())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exports", "kernelflow-home", "runs"]
    assert scheduler.run_pending() == []  # a failed tick counts as run, as for any failure


def test_a_tick_another_scheduler_ran_meanwhile_is_reported_as_such(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    add(tmp_path, "first", "0 6 * * *")
    add(tmp_path, "second", "0 6 * * *")
    clock = Clock(at(11, 6, 1))
    other = Scheduler(runs_dir=tmp_path / "runs", clock=clock, runner=Recorder())

    def runner(plan: Plan, tick: datetime, out_path: Path, home: Path) -> None:
        out_path.write_text("{}")
        if plan.name == "first":
            other.run_pending()  # meanwhile another scheduler runs "second" for this tick

    monkeypatch.setattr(scheduler_module, "utc_now", clock)
    monkeypatch.setattr(scheduler_module, "run_with_papermill", runner)
    monkeypatch.chdir(tmp_path)
    parser = argparse.ArgumentParser()
    add_schedule_commands(parser.add_subparsers())
    args = parser.parse_args(["scheduler", "--once"])

    assert args.handler(args) == 0
    out = capsys.readouterr().out
    assert "first: succeeded" in out
    assert "second: skipped (already ran for that tick)" in out
    assert "pid None" not in out


@pytest.mark.notebook
def test_the_scheduler_command_runs_the_good_plans_past_bad_ones(tmp_path: Path) -> None:
    good = notebook(tmp_path / "exports" / "good.ipynb", inputs={"n": "int"})
    gone = notebook(tmp_path / "exports" / "gone.ipynb", inputs={"n": "int"})
    for path in (good, gone):
        assert kernelflow_cli("schedule", "add", str(path), "--cron", "0 6 * * *").returncode == 0
    gone.unlink()
    store_unchecked("a" * 300, good)
    with sqlite3.connect(PlanStore().path) as conn:  # all added long ago: every plan is due
        conn.execute("UPDATE plans SET created = ?", (T0.isoformat(),))

    done = kernelflow_cli("scheduler", "--once", cwd=tmp_path)

    assert done.returncode == 1, done.stderr  # some plans failed
    assert "Traceback" not in done.stderr
    lines = done.stdout.splitlines()
    assert any(" good: succeeded -> runs/good/" in line for line in lines), done.stdout
    assert any(" gone: failed" in line for line in lines)
    assert "FileNotFoundError" in done.stdout
    assert "bad plan name" in done.stdout and "300 characters" in done.stdout
    assert all(plan.running_since is None for plan in PlanStore().plans())


SCRIPT_PLAN = """
from kernelflow import CronSchedule, LaunchPlan, task, workflow


@task
def one() -> int:
    return 1


@workflow
def wf() -> int:
    return one()


nightly = LaunchPlan.create("nightly", wf, schedule=CronSchedule(schedule="0 6 * * *"))
"""


def test_a_plan_runs_in_the_domain_it_was_added_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kernelflow import api

    (tmp_path / "staged_plans.py").write_text(SCRIPT_PLAN)
    monkeypatch.delenv("KERNELFLOW_PROJECT", raising=False)
    monkeypatch.setenv("KERNELFLOW_DOMAIN", "staging")
    parser = argparse.ArgumentParser()
    add_schedule_commands(parser.add_subparsers())
    args = parser.parse_args(["schedule", "add", f"{tmp_path / 'staged_plans.py'}:nightly"])
    assert args.handler(args) == 0
    monkeypatch.setenv("KERNELFLOW_DOMAIN", "development")  # the scheduler's own: no matter

    tick = (datetime.now(UTC) + timedelta(days=1)).replace(hour=6, minute=0, second=0)
    scheduler = Scheduler(runs_dir=tmp_path / "runs", clock=Clock(tick + timedelta(minutes=1)))
    [(plan, _, status)] = scheduler.run_pending()

    assert status == "succeeded", plan.last_error
    assert list(api.runs(domain="staging")["workflow"]) == ["nightly"]
    assert api.runs(domain="development").empty
