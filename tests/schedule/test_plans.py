"""Launch plans: ``kernelflow schedule add/ls/rm``, validation, persistence and the run lock."""

from __future__ import annotations

import argparse
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from kernelflow.errors import KernelflowError, ParameterError
from kernelflow.schedule.cli import add_schedule_commands
from kernelflow.schedule.plans import PlanStore, make_plan
from kernelflow.schedule.scheduler import due_tick

T0 = datetime(2024, 1, 10, 12, 0, tzinfo=UTC)


def exported(path: Path, inputs: dict[str, Any] | None = None) -> Path:
    """A small notebook shaped like an export: a parameters cell, kernelflow metadata."""
    metadata: dict[str, Any] = {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
    }
    if inputs is not None:
        metadata["kernelflow"] = {"workflow": path.stem, "version": "abc", "inputs": inputs}
    notebook = new_notebook(
        cells=[
            new_code_cell("n = 1", metadata={"tags": ["parameters"]}),
            new_code_cell("print(n * 2)"),
        ],
        metadata=metadata,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, path)
    return path


def cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="kernelflow")
    add_schedule_commands(parser.add_subparsers())
    args = parser.parse_args(argv)
    return int(args.handler(args))


def test_add_ls_rm_round_trip(
    tmp_path: Path, store_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    notebook = exported(tmp_path / "exports" / "daily.ipynb", {"n": "int"})
    assert cli("schedule", "add", str(notebook), "--cron", "0 6 * * *", "-p", "n", "5") == 0
    assert cli("schedule", "add", str(notebook), "--cron", "*/15 * * * *", "--name", "often") == 0
    assert (store_home / "schedules.sqlite").is_file()

    plans = {plan.name: plan for plan in PlanStore().plans()}
    assert set(plans) == {"daily", "often"}
    assert plans["daily"].params == {"n": 5}  # parsed by the declared type
    assert plans["daily"].notebook == str(notebook.absolute())
    assert plans["often"].timezone == "UTC"

    capsys.readouterr()
    assert cli("schedule", "ls") == 0
    listing = capsys.readouterr().out.splitlines()
    header = ["NAME", "CRON", "TIMEZONE", "DOMAIN", "NEXT", "RUN", "LAST", "STATUS", "NOTEBOOK"]
    assert listing[0].split() == header
    daily = next(line for line in listing if line.startswith("daily"))
    assert "0 6 * * *" in daily and "UTC" in daily and "06:00 UTC" in daily
    assert "never run" in daily and "daily.ipynb" in daily

    assert cli("schedule", "rm", "daily") == 0
    assert [plan.name for plan in PlanStore().plans()] == ["often"]
    with pytest.raises(ParameterError, match="no plan named 'daily'"):
        cli("schedule", "rm", "daily")


def test_plans_of_two_domains_are_listed_apart(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    notebook = exported(tmp_path / "report.ipynb")
    monkeypatch.delenv("KERNELFLOW_PROJECT", raising=False)
    monkeypatch.setenv("KERNELFLOW_DOMAIN", "production")
    cli("schedule", "add", str(notebook), "--cron", "0 6 * * *", "--name", "nightly")
    monkeypatch.setenv("KERNELFLOW_DOMAIN", "development")
    cli("schedule", "add", str(notebook), "--cron", "0 7 * * *", "--name", "trial")
    capsys.readouterr()

    def listed(*options: str) -> list[tuple[str, str]]:
        cli("schedule", "ls", *options)
        rows = capsys.readouterr().out.splitlines()[1:]
        return [(row.split()[0], row.split()[7]) for row in rows]  # name, domain

    assert listed() == [("trial", "development")]
    monkeypatch.setenv("KERNELFLOW_DOMAIN", "production")
    assert listed() == [("nightly", "production")]
    assert listed("--all-domains") == [("nightly", "production"), ("trial", "development")]


def test_plans_of_a_file_from_before_domains_are_in_default_development(
    tmp_path: Path, store_home: Path
) -> None:
    store_home.mkdir(parents=True)
    with sqlite3.connect(store_home / "schedules.sqlite") as raw:  # as kernelflow 0.1 wrote it
        raw.execute(
            "CREATE TABLE plans (name TEXT PRIMARY KEY, notebook TEXT NOT NULL, cron TEXT NOT"
            " NULL, params TEXT NOT NULL, timezone TEXT NOT NULL, created TEXT NOT NULL,"
            " last_tick TEXT, last_status TEXT, last_error TEXT, last_run_file TEXT,"
            " last_run_at TEXT, running_since TEXT, running_since_ts REAL, pid INTEGER,"
            " lock_token TEXT)"
        )
        raw.execute(
            "INSERT INTO plans (name, notebook, cron, params, timezone, created) VALUES"
            " ('old', '/nb.ipynb', '0 6 * * *', '{}', 'UTC', '2024-01-01T00:00:00+00:00')"
        )
    [plan] = PlanStore().plans(project="default", domain="development")
    assert (plan.name, plan.cron, plan.project, plan.domain) == (
        "old", "0 6 * * *", "default", "development"
    )  # fmt: skip
    assert PlanStore().plans(domain="production") == []


def test_ls_shows_the_next_run_in_the_plans_time_zone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    notebook = exported(tmp_path / "report.ipynb")
    cli("schedule", "add", str(notebook), "--cron", "0 6 * * *", "--tz", "Europe/Paris")
    capsys.readouterr()
    cli("schedule", "ls")
    row = capsys.readouterr().out.splitlines()[1]
    assert "Europe/Paris" in row
    assert "06:00 CE" in row  # CET or CEST, whichever the next 06:00 falls in


@pytest.mark.parametrize(
    ("expression", "reason"),
    [("* * * *", "columns"), ("61 * * * *", "out of range"), ("0 0 30 2 *", "next date")],
)
def test_a_bad_cron_expression_is_refused_naming_it(
    tmp_path: Path, expression: str, reason: str
) -> None:
    notebook = exported(tmp_path / "flow.ipynb")
    with pytest.raises(ParameterError) as caught:
        cli("schedule", "add", str(notebook), "--cron", expression)
    assert repr(expression) in str(caught.value)
    assert reason in str(caught.value)  # croniter's own reason
    assert "Fix:" in str(caught.value)
    assert PlanStore().plans() == []


def test_a_duplicate_name_is_refused(tmp_path: Path) -> None:
    notebook = exported(tmp_path / "flow.ipynb")
    cli("schedule", "add", str(notebook), "--cron", "0 6 * * *")
    with pytest.raises(ParameterError, match="a plan named 'flow' exists already") as caught:
        cli("schedule", "add", str(notebook), "--cron", "0 7 * * *")
    assert "--name" in str(caught.value)
    assert [plan.cron for plan in PlanStore().plans()] == ["0 6 * * *"]


def test_add_checks_the_notebook(tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match="does not exist"):
        make_plan(tmp_path / "missing.ipynb", "0 6 * * *")
    junk = tmp_path / "junk.ipynb"
    junk.write_text("this is not json")
    with pytest.raises(ParameterError, match="is not a notebook"):
        make_plan(junk, "0 6 * * *")


def test_an_unknown_time_zone_is_refused(tmp_path: Path) -> None:
    notebook = exported(tmp_path / "flow.ipynb")
    with pytest.raises(ParameterError, match="unknown time zone 'Mars/Olympus'"):
        make_plan(notebook, "0 6 * * *", timezone="Mars/Olympus")


def test_parameters_are_checked_against_the_declared_inputs(tmp_path: Path) -> None:
    notebook = exported(tmp_path / "flow.ipynb", {"n": "int", "xs": "list[float]", "label": "str"})
    plan = make_plan(notebook, "0 6 * * *", {"n": "3", "xs": "[1, 2.5]", "label": "07"})
    assert plan.params == {"n": 3, "xs": [1.0, 2.5], "label": "07"}
    with pytest.raises(ParameterError, match="unknown parameter m"):
        make_plan(notebook, "0 6 * * *", {"m": "3"})
    with pytest.raises(ParameterError, match="parameter 'n' expects int"):
        make_plan(notebook, "0 6 * * *", {"n": "three"})


def test_without_declared_inputs_values_stay_strings(tmp_path: Path) -> None:
    notebook = exported(tmp_path / "flow.ipynb", inputs=None)
    plan = make_plan(notebook, "0 6 * * *", {"n": "3", "anything": "x"})
    assert plan.params == {"n": "3", "anything": "x"}


def test_a_type_text_is_never_executed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    notebook = exported(tmp_path / "flow.ipynb", {"n": f"open({str(marker)!r}, 'w')"})
    plan = make_plan(notebook, "0 6 * * *", {"n": "3"})
    assert plan.params == {"n": "3"}
    assert not marker.exists()


def test_a_new_plan_is_first_due_at_its_first_tick_after_creation(tmp_path: Path) -> None:
    plan = make_plan(exported(tmp_path / "flow.ipynb"), "0 6 * * *", now=T0)
    assert due_tick(plan, datetime(2024, 1, 11, 5, 59, tzinfo=UTC)) is None
    assert due_tick(plan, datetime(2024, 1, 11, 6, 0, tzinfo=UTC)) == datetime(
        2024, 1, 11, 6, 0, tzinfo=UTC
    )


def test_the_lock_is_exclusive_across_store_instances(tmp_path: Path) -> None:
    PlanStore().add(make_plan(exported(tmp_path / "flow.ipynb"), "0 6 * * *", now=T0))
    first, second = PlanStore(), PlanStore()  # as two processes would open it
    token = first.try_lock("flow")
    assert token is not None
    assert second.try_lock("flow") is None
    assert second.get("flow").running_since is not None
    first.release("flow", token, status="succeeded")
    assert second.get("flow").running_since is None
    assert second.try_lock("flow") is not None


def test_a_lock_held_by_a_dead_process_is_taken_over(tmp_path: Path) -> None:
    store = PlanStore()
    store.add(make_plan(exported(tmp_path / "flow.ipynb"), "0 6 * * *", now=T0))
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    dead_pid = int(child.stdout)
    assert store.try_lock("flow", pid=dead_pid) is not None
    assert store.get("flow").pid == dead_pid
    assert store.try_lock("flow") is not None  # stale: its owner is gone
    assert store.get("flow").pid != dead_pid


def test_release_with_a_stale_token_does_not_free_someone_elses_lock(tmp_path: Path) -> None:
    store = PlanStore()
    store.add(make_plan(exported(tmp_path / "flow.ipynb"), "0 6 * * *", now=T0))
    token = store.try_lock("flow")
    assert token is not None
    store.release("flow", "not-the-token", status="failed")
    assert store.get("flow").running_since is not None
    with pytest.raises(KernelflowError, match="no plan named 'other'"):
        store.try_lock("other")


def test_a_tick_another_scheduler_ran_meanwhile_is_not_run_again(tmp_path: Path) -> None:
    # Two schedulers both saw 06:00 as due; the second asks for the lock after the first
    # has finished and released it: it must not run the same tick a second time.
    store = PlanStore()
    store.add(make_plan(exported(tmp_path / "flow.ipynb"), "0 6 * * *", now=T0))
    tick = datetime(2024, 1, 11, 6, 0, tzinfo=UTC)
    token = store.try_lock("flow", before=tick)
    assert token is not None
    store.release("flow", token, status="succeeded", tick=tick)
    assert PlanStore().try_lock("flow", before=tick) is None
    assert PlanStore().try_lock("flow", before=tick + timedelta(days=1)) is not None


def test_a_plan_for_an_export_is_named_after_its_workflow(tmp_path: Path) -> None:
    from kernelflow.schedule.plans import make_plan

    path = tmp_path / "exports" / "pipeline" / "3f9a2c1b0d4e.ipynb"
    path.parent.mkdir(parents=True)
    notebook = exported(tmp_path / "pipeline.ipynb", {"n": "int"})
    path.write_text(notebook.read_text())
    assert make_plan(path, "0 6 * * *").name == "pipeline"
