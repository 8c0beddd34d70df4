"""A full disk or a read-only store: one clear message, the run recorded as failed, exit 1.

Each test runs the real CLI with its store on a small tmpfs that the test
mounts (and unmounts). Mounting needs root, which CI has; elsewhere the tests
are skipped, saying so.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

FLOW = textwrap.dedent(
    """
    import os
    from kernelflow import current_context, task, workflow

    @task
    def fill(n: int) -> int:
        ballast = os.environ.get("BALLAST")
        if ballast:  # another program fills the disk while the run goes on
            with open(ballast, "wb") as handle:
                try:
                    while True:
                        handle.write(b"x" * 65536)
                except OSError:
                    pass
        return n + 1

    @task
    def train(x: int) -> int:
        size = int(os.environ.get("CHECKPOINT_BYTES", "10"))
        current_context().checkpoint.save(os.urandom(size))
        return x * 2

    @workflow
    def wf(n: int = 1) -> int:
        return train(x=fill(n=n))
    """
)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 3 MiB tmpfs, mounted for the test and unmounted after it."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root; CI runs as root): {done.stderr}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _cli(disk: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    flow = disk.parent / "flow.py"
    flow.write_text(FLOW)
    environment = {**os.environ, "KERNELFLOW_HOME": str(disk / "home"), **env}
    return subprocess.run(
        [sys.executable, "-m", "kernelflow", *[a.replace("FLOW", str(flow)) for a in args]],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
    )


def _free_bytes(path: Path) -> int:
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize


def test_a_checkpoint_too_big_for_the_disk_fails_its_task_by_name(small_disk: Path) -> None:
    before = _free_bytes(small_disk)
    done = _cli(small_disk, "run", "FLOW:wf", CHECKPOINT_BYTES=str(8 * 2**20))
    assert done.returncode == 1, done.stderr
    assert "task 'train' failed" in done.stderr and "No space left" in done.stderr
    assert "Traceback" not in done.stderr
    runs = _cli(small_disk, "runs")
    assert " failed " in runs.stdout  # recorded, not lost
    # the half-written artifact was removed: the disk has its space back
    assert _free_bytes(small_disk) > before - 256 * 1024


def test_a_disk_filled_during_the_run_is_one_message_and_a_failed_run(small_disk: Path) -> None:
    ballast = small_disk / "ballast"
    done = _cli(small_disk, "run", "FLOW:wf", BALLAST=str(ballast))
    ballast.unlink()
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    error = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1
    assert "No space left" in error[0] or "disk is full" in error[0]
    assert "Fix: free space" in done.stderr
    runs = _cli(small_disk, "runs")
    assert runs.returncode == 0 and " failed " in runs.stdout
    # with the space back, the next run works: nothing was left damaged (no empty key)
    again = _cli(small_disk, "run", "FLOW:wf")
    assert again.returncode == 0, again.stderr
    assert "o0 = 4" in again.stdout


def test_a_store_on_a_full_disk_leaves_no_empty_key_behind(small_disk: Path) -> None:
    ballast = small_disk / "ballast"
    with open(ballast, "wb") as handle:
        try:
            while True:
                handle.write(b"x" * 65536)
        except OSError:
            pass
    done = _cli(small_disk, "run", "FLOW:wf")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "error: " in done.stderr
    ballast.unlink()
    assert not (small_disk / "home" / "secret.key").exists() or (
        (small_disk / "home" / "secret.key").stat().st_size == 32
    )
    again = _cli(small_disk, "run", "FLOW:wf")
    assert again.returncode == 0, again.stderr


def test_a_read_only_store_is_one_message_and_exit_1(small_disk: Path) -> None:
    first = _cli(small_disk, "run", "FLOW:wf")
    assert first.returncode == 0, first.stderr
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    done = _cli(small_disk, "run", "FLOW:wf", "-p", "n", "7")
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert "read-only" in done.stderr and "runs.sqlite" in done.stderr
