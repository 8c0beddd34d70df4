"""Issue 14, point 8: signals that survive a restart, and values refused when they are sent.

The workflow is ``examples/flyte_lifecycle/signals.py``: it waits for ``extra``
(an int) and for the approval ``proposal-ok``, then returns ``base * 10 + extra``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from test_cli import kernelflow_cli
from test_flyte_lifecycle import SIGNALS, _wait_until

from kernelflow import api
from kernelflow.errors import ParameterError
from kernelflow.store.home import open_store

RUN_REVIEW = [sys.executable, "-m", "kernelflow", "run", f"{SIGNALS}:review"]


def _start(*extra: str) -> subprocess.Popen[str]:
    """``kernelflow run signals.py:review ...`` in the background, waiting for minutes."""
    return subprocess.Popen(
        [*RUN_REVIEW, *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "SIGNALS_TIMEOUT": "120"},
    )


def _waiting_for(name: str) -> dict:
    """The node (of a live run) waiting for signal ``name``, once there is one."""
    return _wait_until(
        lambda: [w for w in api.waiting_nodes() if w["name"] == name], f"a node to wait for {name}"
    )[0]


def _finish(process: subprocess.Popen[str]) -> tuple[str, str]:
    try:
        return process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def _kill_waiting_run() -> str:
    """Start a run, let it wait for ``extra``, kill its process; the run's id."""
    first = _start("-p", "base", "2")
    run_id = str(_waiting_for("extra")["run_id"])
    first.kill()
    first.communicate()
    return run_id


def test_a_killed_waiting_run_resumes_with_the_signals_sent_to_its_old_id() -> None:
    old = _kill_waiting_run()
    sent = kernelflow_cli("signal", old, "extra", "5")  # while no process runs it
    assert sent.returncode == 0, sent.stderr
    assert f"the value is taken when it is resumed: kernelflow run TARGET --resume {old}" in (
        sent.stdout
    )

    resumed = _start("--resume", old)
    waiting = _waiting_for("proposal-ok")  # extra is not waited for again
    assert waiting["run_id"] != old
    approved = kernelflow_cli("approve", old, "proposal-ok")  # after the resume, the old id
    assert approved.returncode == 0, approved.stderr
    out, err = _finish(resumed)

    assert resumed.returncode == 0, err
    assert "o0 = 25" in out  # 2 * 10 + 5
    assert api.runs()["status"].tolist() == ["succeeded", "died"]
    [resumer] = open_store().runs.resumed_by(old)
    assert resumer["run_id"] == waiting["run_id"] and resumer["status"] == "succeeded"


def test_a_resumed_run_takes_signals_sent_to_its_new_id() -> None:
    old = _kill_waiting_run()
    resumed = _start("--resume", old)
    new = str(_waiting_for("extra")["run_id"])
    assert new != old
    assert kernelflow_cli("signal", new, "extra", "7").returncode == 0
    assert kernelflow_cli("approve", new, "proposal-ok").returncode == 0
    out, err = _finish(resumed)
    assert resumed.returncode == 0, err
    assert "o0 = 27" in out
    finished = kernelflow_cli("signal", old, "extra", "1")  # the chain is done now
    assert finished.returncode == 2
    assert f"was resumed by run {new}, which succeeded" in finished.stderr


def test_a_value_of_the_wrong_type_is_refused_when_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIGNALS_TIMEOUT", "120")
    results = []
    runner = threading.Thread(target=lambda: results.append(api.run(f"{SIGNALS}:review")))
    runner.start()
    try:
        run_id = str(_waiting_for("extra")["run_id"])
        refused = kernelflow_cli("signal", run_id, "extra", "five")
        assert refused.returncode == 2
        message = refused.stderr
        assert f"run {run_id!r} waits for signal 'extra' as int, got 'five'" in message
        assert "nothing was sent" in message
        assert f"kernelflow signal {run_id} extra VALUE" in message  # the fix
        assert api.waiting_nodes()[0]["name"] == "extra"  # still waiting, nothing stored
        api.send_signal(run_id, "extra", "3")
        _waiting_for("proposal-ok")
        with pytest.raises(ParameterError, match="'proposal-ok' as bool, got 'maybe'"):
            api.send_signal(run_id, "proposal-ok", "maybe")
        api.send_signal(run_id, "proposal-ok", "true")
    finally:
        runner.join(timeout=120)
    assert results[0].status == "succeeded"
    assert results[0].outputs == {"o0": 13}  # base 1 * 10 + 3


def test_signals_to_an_older_store_file_still_work(tmp_path: Path) -> None:
    """A signal file written before waits recorded their type gets the new columns."""
    import sqlite3

    from kernelflow.store.signals import SignalStore

    old = sqlite3.connect(tmp_path / "signals.sqlite")
    old.execute(
        "CREATE TABLE waits (run_id TEXT NOT NULL, name TEXT NOT NULL, node TEXT NOT NULL,"
        " type TEXT NOT NULL, since_ts REAL NOT NULL, deadline_ts REAL, state TEXT NOT NULL,"
        " PRIMARY KEY (run_id, name))"
    )
    old.execute("INSERT INTO waits VALUES ('r1', 'extra', 'extra', 'int', 1.0, NULL, 'waiting')")
    old.commit()
    old.close()
    store = SignalStore(tmp_path)
    assert store.expected("r1", "extra") == ("int", None)  # no spec: the node checks
    store.start_wait(
        "r2", "extra", node="extra", type_name="int", deadline=None, spec='{"t": "int"}'
    )
    assert store.expected("r2", "extra") == ("int", '{"t": "int"}')


def test_a_signal_from_another_machine_reaches_the_waiting_node_through_a_shared_database(
    tmp_path: Path, runs_env: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Machine b (another home, the same $KERNELFLOW_RUNS) signals a run waiting on a."""
    monkeypatch.setenv("SIGNALS_TIMEOUT", "120")
    results = []
    runner = threading.Thread(target=lambda: results.append(api.run(f"{SIGNALS}:review")))
    runner.start()

    def on_b(*args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "KERNELFLOW_HOME": str(tmp_path / "machine-b")}
        command = [sys.executable, "-m", "kernelflow", *args]
        return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)

    try:
        run_id = str(_waiting_for("extra")["run_id"])
        if runs_env is None:  # SQLite: machine b has a store of its own, without that run
            unknown = on_b("signal", run_id, "extra", "3")
            assert unknown.returncode == 2 and f"no run {run_id!r}" in unknown.stderr
            api.send_signal(run_id, "extra", "3")
            _waiting_for("proposal-ok")
            api.send_signal(run_id, "proposal-ok", "true")
        else:
            refused = on_b("signal", run_id, "extra", "five")  # checked against a's waiting node
            assert refused.returncode == 2
            assert "waits for signal 'extra' as int, got 'five'" in refused.stderr
            sent = on_b("signal", run_id, "extra", "3")
            assert sent.returncode == 0, sent.stderr
            _waiting_for("proposal-ok")
            approved = on_b("approve", run_id, "proposal-ok")
            assert approved.returncode == 0, approved.stderr
    finally:
        runner.join(timeout=120)
    assert results[0].status == "succeeded"
    assert results[0].outputs == {"o0": 13}  # base 1 * 10 + 3
    assert not (tmp_path / "machine-b" / "signals.sqlite").exists()  # b stored nothing locally
