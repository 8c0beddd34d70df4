"""Run history on a real PostgreSQL server, as a team uses it: ``kernelflow run`` with
``KERNELFLOW_RUNS=postgresql://...``, two machines (processes with separate homes)
writing at once, resume, and the one-paragraph errors of a bad URL or password.

The RunStore's own tests run on PostgreSQL too (tests/store/test_runs.py).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from postgres_server import PASSWORD, Server

FLOW = """
import os

from kernelflow import task, workflow


def note(message):
    with open(os.environ["FLOW_LOG"], "a") as handle:
        print(message, file=handle)


@task(cache=True)
def load(n: int) -> list[int]:
    note("load")
    return list(range(n + 1))


@task
def total(values: list[int]) -> int:
    note("total")
    if os.environ.get("FLOW_FAIL"):
        raise RuntimeError("total fails this time")
    return sum(values) * 10


@workflow
def wf(n: int = 1) -> int:
    return total(values=load(n=n))


@task
def step(i: int) -> int:
    return i + 1


@workflow
def chain(count: int = 100) -> int:
    value = 0
    for _ in range(100):
        value = step(i=value)
    return value
"""


def _cli(
    cwd: Path, home: Path, *args: str, url: str | None, wait: bool = True, **env: str
) -> subprocess.CompletedProcess[str] | subprocess.Popen[str]:
    environment = dict(os.environ, KERNELFLOW_HOME=str(home), FLOW_LOG=str(cwd / "log.txt"), **env)
    environment.pop("KERNELFLOW_RUNS", None)
    if url is not None:
        environment["KERNELFLOW_RUNS"] = url
    command = [sys.executable, "-m", "kernelflow", *args]
    if not wait:
        return subprocess.Popen(
            command, cwd=cwd, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
    return subprocess.run(
        command, cwd=cwd, env=environment, capture_output=True, text=True, timeout=180
    )


def _log(cwd: Path) -> list[str]:
    log = cwd / "log.txt"
    lines = log.read_text().splitlines() if log.exists() else []
    log.unlink(missing_ok=True)
    return lines


def _rows(url: str, sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(sql).fetchall()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "flow.py").write_text(FLOW)
    return tmp_path


def test_a_run_is_recorded_on_the_server_and_every_machine_lists_it(
    project: Path, postgres_url: str
) -> None:
    home = project / "machine-a"
    done = _cli(project, home, "run", "flow.py:wf", "-p", "n", "2", url=postgres_url)
    assert done.returncode == 0, done.stderr
    assert "o0 = 30" in done.stdout
    assert not (home / "runs.sqlite").exists()  # the history is on the server only
    [(run_id, status)] = _rows(postgres_url, "SELECT run_id, status FROM runs")
    assert status == "succeeded" and str(run_id) in done.stdout
    assert _rows(postgres_url, "SELECT node, status FROM node_executions ORDER BY id") == [
        ("load", "succeeded"),
        ("total", "succeeded"),
    ]

    for machine in ("machine-a", "machine-b"):  # b shares the server, not the directory
        listed = _cli(project, project / machine, "runs", url=postgres_url)
        assert listed.returncode == 0, listed.stderr
        assert run_id in listed.stdout and "succeeded" in listed.stdout
    lineage = _cli(project, home, "lineage", str(run_id), "total", url=postgres_url)
    assert lineage.returncode == 0, lineage.stderr
    assert "load" in lineage.stdout


def test_a_failed_run_resumes_from_the_server_without_redoing_finished_tasks(
    project: Path, postgres_url: str
) -> None:
    home = project / "home"
    failed = _cli(project, home, "run", "flow.py:wf", url=postgres_url, FLOW_FAIL="1")
    assert failed.returncode == 1, failed.stderr
    assert _log(project) == ["load", "total"]

    resumed = _cli(project, home, "run", "flow.py:wf", "--resume", "last", url=postgres_url)
    assert resumed.returncode == 0, resumed.stderr
    assert "o0 = 10" in resumed.stdout
    assert _log(project) == ["total"]
    statuses = _rows(postgres_url, "SELECT status, resumed_from IS NULL FROM runs ORDER BY rowid")
    assert statuses == [("failed", True), ("succeeded", False)]


def test_two_machines_running_at_once_lose_no_record(project: Path, postgres_url: str) -> None:
    """100 quick tasks each: their records are deferred, batched and committed while the
    other process commits its own batches to the same tables."""
    runs = [
        _cli(project, project / name, "run", "flow.py:chain", url=postgres_url, wait=False)
        for name in ("machine-a", "machine-b")
    ]
    for process in runs:
        stdout, stderr = process.communicate(timeout=300)  # type: ignore[union-attr]
        assert process.returncode == 0, stderr
        assert "o0 = 100" in stdout
    counts = _rows(
        postgres_url,
        "SELECT r.status, COUNT(n.id) FROM runs r JOIN node_executions n USING (run_id)"
        " GROUP BY r.run_id, r.status",
    )
    assert counts == [("succeeded", 100), ("succeeded", 100)]


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # nothing listens there once it is closed


def _bad_urls(server: Server) -> dict[str, tuple[str, str]]:
    """Each bad URL, and what the error says about it."""
    port = _closed_port()
    return {
        "unreachable": (
            f"postgresql://kernelflow:{PASSWORD}@127.0.0.1:{port}/postgres",
            "check that the server runs",
        ),
        "wrong password": (server.url(password="not-the-password"), "user name and password"),
        "no such database": (server.url("no_such_db"), "create the database"),
    }


@pytest.mark.parametrize("case", ["unreachable", "wrong password", "no such database"])
def test_a_database_that_cannot_be_opened_is_one_paragraph_exit_2_and_nothing_written(
    project: Path, postgres: Server, case: str
) -> None:
    url, fix = _bad_urls(postgres)[case]
    home = project / "home"
    # signals and plans are on the server too: their commands fail the same way
    commands = (["run", "flow.py:wf"], ["runs"], ["schedule", "ls"], ["signal", "r1", "x", "1"])
    for command in commands:
        done = _cli(project, home, *command, url=url)
        assert done.returncode == 2, done.stderr
        masked = url.replace(url.split(":")[2].split("@")[0], "***")
        assert done.stderr.startswith(f"error: cannot open the run database {masked}: ")
        assert fix in done.stderr and "KERNELFLOW_RUNS" in done.stderr
        assert "not-the-password" not in done.stderr and PASSWORD not in done.stderr
        assert "Traceback" not in done.stderr and "\n\n" not in done.stderr.strip()
        assert done.stdout == ""
    assert _log(project) == []  # no task ran
    assert not home.exists() or not any(home.rglob("*.*"))  # no artifact, run or journal
    tables = _rows(postgres.url(), "SELECT to_regclass('runs') IS NULL")
    assert tables == [(True,)]  # nothing was created on the server either


@pytest.mark.parametrize("command", [["runs"], ["schedule", "ls"]])
def test_a_url_of_another_kind_is_refused_with_its_password_masked(
    project: Path, command: list[str]
) -> None:
    done = _cli(project, project / "home", *command, url="mysql://me:hunter2@db.example/runs")
    assert done.returncode == 2, done.stderr
    assert "KERNELFLOW_RUNS=mysql://me:***@db.example/runs names no run database" in done.stderr
    assert "hunter2" not in done.stderr and "postgresql://" in done.stderr


def test_task_cells_in_a_kernel_record_on_the_server_and_hit_its_cache(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shell_runner import kernel_shell, run

    from kernelflow.store.runs import RunStore

    monkeypatch.setenv("KERNELFLOW_RUNS", postgres_url)
    cell = "%%task make --cache\nxs = list(range(n))"
    with kernel_shell(tmp_path, monkeypatch) as shell:
        shell.user_ns["n"] = 3
        run(shell, cell)
        del shell.user_ns["xs"]
        run(shell, cell)
        assert shell.user_ns["xs"] == [0, 1, 2]
        history = run(shell, "%workflow runs")
    assert len(history) == 2 and set(history["status"]) == {"succeeded"}
    with RunStore(postgres_url, home=tmp_path / "elsewhere") as server:
        statuses = [
            [node["status"] for node in server.node_executions(str(run_id))]
            for run_id in history["run_id"]
        ]
    assert sorted(statuses) == [["cached"], ["succeeded"]]
