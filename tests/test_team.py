"""A team of two machines, end to end: what "Team set-up" in the README promises.

Machines A and B are two OS processes running the ``kernelflow`` CLI, each with
its own working directory and its own ``$KERNELFLOW_HOME``. They share only
what a team shares: an S3 bucket (moto's server) for artifacts, a PostgreSQL
server for run history, the team key ``$KERNELFLOW_STORE_KEY``, and a dask
cluster (``distributed.LocalCluster`` with worker processes, started here in a
third process with the same S3 environment). The test log (``log.txt``, beside
the machines) stands in for what a user sees a task do: a line each time a task
body runs, and where it ran.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nbformat
import psycopg
import pytest
from s3_server import S3

pytestmark = pytest.mark.slow

# A workflow with a map, a slow one to kill, and a launch plan. The same file on
# both machines (the same code, so the same cache keys); @LOG@ and @GO@ are paths
# beside the machines, as a network drive would be.
FLOW = """
import os
import time

from kernelflow import CronSchedule, LaunchPlan, map_task, task, workflow

LOG, GO = "@LOG@", "@GO@"


def note(what):
    with open(LOG, "a") as handle:
        print(what, os.environ.get("TEAM_WHERE", "client"), file=handle)


@task(cache=True)
def square(x: int) -> int:
    note(f"square {x}")
    return x * x


@task(cache=True)
def total(values: list[int]) -> int:
    note("total")
    return sum(values)


@workflow
def squares(xs: list[int] = [1, 2, 3, 4]) -> int:  # noqa: B006
    return total(values=map_task(square)(x=xs))


@task
def prepare(n: int) -> list[int]:
    note("prepare")
    return list(range(n))


@task
def slow(values: list[int]) -> int:
    note("slow")
    deadline = time.monotonic() + 60
    while not os.path.exists(GO) and time.monotonic() < deadline:
        time.sleep(0.05)
    return sum(values)


@workflow
def long(n: int = 5) -> int:
    return slow(values=prepare(n=n))


nightly = LaunchPlan.create("nightly", squares, schedule=CronSchedule(schedule="0 6 * * *"))
"""

# A notebook workflow: a DataFrame (Parquet in the bucket), a pickle over 4 KB (an
# object in the bucket, signed with the team key) and a JSON value (inline).
CELLS = [
    ("n: int = 1000", ["parameters"]),
    ("%load_ext kernelflow\nimport os\nimport pandas as pd\n\nLOG = '@LOG@'", []),
    (
        "%%task load --cache\n"
        "with open(LOG, 'a') as log:\n"
        "    print('load', os.environ.get('TEAM_WHERE', 'client'), file=log)\n"
        "frame: pd.DataFrame = pd.DataFrame({'x': range(n)})",
        [],
    ),
    ("%%task summarize --cache\nseen = {f'x{value}' for value in frame.x}", []),
    ("%%task report\ntotal: int = int(frame.x.sum()) + len(seen)", []),
]

CLUSTER = """
import sys

from distributed import LocalCluster

cluster = LocalCluster(
    n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None,
    host="127.0.0.1",
)
print(cluster.scheduler_address, flush=True)
sys.stdin.read()  # until the test closes it
cluster.close()
"""


@dataclass(frozen=True)
class Machine:
    """One machine of the team: its own directory and home, the team's environment."""

    name: str
    cwd: Path
    env: dict[str, str]

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "kernelflow", *args]

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``kernelflow ARGS`` here, which must succeed."""
        done = subprocess.run(
            self.command(*args), cwd=self.cwd, env=self.env, capture_output=True, text=True,
            timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, f"{self.name}: {args}\n{done.stdout}\n{done.stderr}"
        return done

    def start(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.command(*args), cwd=self.cwd, env=self.env, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip

    def python(self, code: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", code], cwd=self.cwd, env=self.env, capture_output=True,
            text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, f"{self.name}: {done.stdout}\n{done.stderr}"
        return done.stdout


@dataclass(frozen=True)
class Team:
    a: Machine
    b: Machine
    address: str  # the dask scheduler
    runs: str  # the PostgreSQL URL
    s3: S3
    log: Path
    go: Path

    def log_lines(self) -> list[str]:
        """What task bodies ran since the last call, and where (then forgotten)."""
        lines = self.log.read_text().splitlines() if self.log.exists() else []
        self.log.unlink(missing_ok=True)
        return lines


@pytest.fixture
def team_key() -> str:
    """The team's store key: every machine and every worker has it in its environment."""
    return secrets.token_hex(32)


@pytest.fixture
def dask_address(s3_env: S3, team_key: str, tmp_path: Path) -> Iterator[str]:
    """A dask cluster in a process of its own, with the S3 credentials and the team key
    (not the store's URL: a task brings it); stopped after."""
    where = tmp_path / "cluster"
    where.mkdir()
    env = dict(
        os.environ,
        TEAM_WHERE="dask",
        KERNELFLOW_HOME=str(where / "kf"),
        KERNELFLOW_STORE_KEY=team_key,
    )
    cluster = subprocess.Popen(
        [sys.executable, "-c", CLUSTER], cwd=where, env=env, stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        address = cluster.stdout.readline().strip()  # type: ignore[union-attr]
        assert address.startswith("tcp://"), f"the cluster did not start: {address!r}"
        yield address
    finally:
        cluster.stdin.close()  # type: ignore[union-attr]
        try:
            cluster.wait(timeout=30)
        except subprocess.TimeoutExpired:
            cluster.kill()
            cluster.wait()


@pytest.fixture
def team(
    s3_env: S3, postgres_url: str, dask_address: str, team_key: str, tmp_path: Path
) -> Iterator[Team]:
    log, go = tmp_path / "log.txt", tmp_path / "go"
    shared = {
        "KERNELFLOW_STORE": s3_env.url(),
        "KERNELFLOW_RUNS": postgres_url,
        "KERNELFLOW_STORE_KEY": team_key,
        "KERNELFLOW_PROJECT": "team",
        "KERNELFLOW_DOMAIN": "development",
    }
    machines = []
    for name in ("a", "b"):
        cwd = tmp_path / name
        cwd.mkdir()
        (cwd / "flow.py").write_text(FLOW.replace("@LOG@", str(log)).replace("@GO@", str(go)))
        notebook = nbformat.v4.new_notebook()
        for source, tags in CELLS:
            cell = nbformat.v4.new_code_cell(source.replace("@LOG@", str(log)))
            cell.metadata["tags"] = tags
            notebook.cells.append(cell)
        nbformat.write(notebook, cwd / "team.ipynb")
        env = dict(os.environ, **shared, KERNELFLOW_HOME=str(cwd / "kf"))
        machines.append(Machine(name.upper(), cwd, env))
    yield Team(*machines, dask_address, postgres_url, s3_env, log, go)
    go.touch()  # a slow task left on the cluster by a failed test ends before the cluster


def _progress(stderr: str) -> dict[str, str]:
    """``kernelflow run``'s progress lines: task -> ``ran`` or ``cached``."""
    statuses = {}
    for line in stderr.splitlines():
        if line.startswith("[") and "] " in line:
            task, status = line.split("] ", 1)[1].split(" ")[:2]
            statuses[task] = status.rstrip(",")
    return statuses


def _runs(machine: Machine, *options: str) -> list[dict[str, str]]:
    """``kernelflow runs`` as rows."""
    lines = machine.cli("runs", *options).stdout.splitlines()
    header = lines[0].split()
    return [dict(zip(header, line.split())) for line in lines[1:] if line.strip()]


def _run_id(stdout: str) -> str:
    return next(line.split()[1] for line in stdout.splitlines() if line.startswith("run_id:"))


def _wait_for(what: str, check: object, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_two_machines_share_runs_cache_resume_schedules_and_outputs(team: Team) -> None:
    a, b, dask = team.a, team.b, ("--backend", "dask", "--address", team.address)

    # 1. A runs the notebook and the mapped workflow on the dask cluster.
    notebook = a.cli("run", "team.ipynb", *dask, "--output", "executed.ipynb")
    assert _progress(notebook.stderr) == {"load": "ran", "summarize": "ran", "report": "ran"}
    assert "total = 500500" in notebook.stdout
    mapped = a.cli("run", "flow.py:squares", *dask)
    assert _progress(mapped.stderr) == {"map_square": "ran", "total": "ran"}
    assert "o0 = 30" in mapped.stdout
    ran = team.log_lines()
    assert sorted(ran) == sorted(
        ["load dask", *(f"square {x} dask" for x in (1, 2, 3, 4)), "total dask"]
    )  # every task body ran on a dask worker, none in A's process
    objects = team.s3.client().list_objects_v2(Bucket=team.s3.bucket)  # type: ignore[attr-defined]
    keys = [o["Key"] for o in objects.get("Contents", [])]
    assert all(key.startswith("team/artifacts/") for key in keys)
    assert {key.rsplit(".", 1)[1] for key in keys} == {"parquet", "pkl"}  # frame, seen
    assert not (a.cwd / "kf" / "artifacts").exists()  # A's home holds no artifact

    # 2. B lists A's runs, and running the same workflows is all cache hits.
    listed = _runs(b)
    assert {(r["run_id"], r["workflow"], r["status"], r["project"]) for r in listed} == {
        (_run_id(notebook.stdout), "team", "succeeded", "team"),
        (_run_id(mapped.stdout), "squares", "succeeded", "team"),
    }
    again = b.cli("run", "team.ipynb", *dask)
    hits = {"load": "cached", "summarize": "cached", "report": "ran"}  # report: no --cache
    assert _progress(again.stderr) == hits, again.stderr
    assert "total = 500500" in again.stdout
    mapped_again = b.cli("run", "flow.py:squares", *dask)
    assert _progress(mapped_again.stderr) == {"map_square": "cached", "total": "cached"}
    assert "o0 = 30" in mapped_again.stdout
    assert team.log_lines() == []  # nothing was computed again
    assert not (b.cwd / "kf" / "artifacts").exists()
    assert not (b.cwd / "kf" / "secret.key").exists()  # the team key came from the env

    # 3. A dies (SIGKILL) while a slow task runs, after an earlier task finished;
    # B resumes the run and the finished task is restored, not computed again.
    dying = a.start("run", "flow.py:long", *dask)

    def prepared() -> bool:
        assert dying.poll() is None, dying.communicate()
        with psycopg.connect(team.runs, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT r.run_id FROM runs r JOIN node_executions n ON n.run_id = r.run_id "
                "WHERE r.workflow = 'long' AND n.node = 'prepare' AND n.status = 'succeeded'"
            ).fetchall()
        return bool(rows) and "slow dask" in (team.log.read_text() if team.log.exists() else "")

    # prepare's record must be on the server: one still in A's journal (up to 50 ms)
    # would reach it only when A's machine runs kernelflow again (README, PostgreSQL).
    try:
        _wait_for("A's prepare to be recorded and slow to start", prepared)
    finally:
        dying.send_signal(signal.SIGKILL)
        dying.communicate()
    assert team.log_lines() == ["prepare dask", "slow dask"]
    [killed] = [r for r in _runs(b) if r["workflow"] == "long"]
    # The two machines share one host here, so B sees at once that A's process is gone;
    # on two hosts B would see it once A's heartbeat is 2 minutes old (store/_heartbeat.py),
    # and could resume it by id before that alike.
    assert killed["status"] == "died"
    team.go.touch()  # the slow task may finish now (the one A left on the cluster too)
    resumed = b.cli("run", "flow.py:long", *dask, "--resume", killed["run_id"])
    # prepare (not cached) is restored from A's run, which progress shows as "cached"
    assert _progress(resumed.stderr) == {"prepare": "cached", "slow": "ran"}, resumed.stderr
    assert "o0 = 10" in resumed.stdout
    assert team.log_lines() == ["slow dask"]  # prepare was restored, not computed again
    longs = [r for r in _runs(a) if r["workflow"] == "long"]
    assert [r["status"] for r in longs] == ["succeeded", "died"]  # A knows its process died

    # 4. B adds a schedule and runs it; A sees the run in the shared history.
    b.cli("schedule", "add", "flow.py:nightly")
    assert "nightly" in a.cli("schedule", "ls").stdout  # the plan is on the server too
    b.cli("schedule", "run", "nightly")
    assert team.log_lines() == []  # the plan's tasks were cache hits from A's run
    assert [r["status"] for r in _runs(a, "--workflow", "nightly")] == ["succeeded"]

    # 5. B reads the outputs of the notebook A executed, from the shared store.
    executed = a.cwd / "executed.ipynb"
    values = json.loads(
        b.python(
            "import json, kernelflow\n"
            f"out = kernelflow.read_outputs({str(executed)!r}, strict=True)\n"
            "print(json.dumps({'rows': len(out['frame']), 'seen': len(out['seen']),"
            " 'total': out['total']}))"
        )
    )
    assert values == {"rows": 1000, "seen": 1000, "total": 499500 + 1000}

    # A home holds only its journal: no artifact, no key, no run history, signals or plans.
    for machine in (a, b):
        held = {path.name for path in (machine.cwd / "kf").iterdir()}
        journals = {name for name in held if name.startswith("journal-pg-")}
        assert held == journals, held
