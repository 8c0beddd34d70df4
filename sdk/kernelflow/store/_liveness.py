"""Is the process that started a run still running it? (POSIX, best on Linux.)

A run whose process was killed stays ``running`` in the store forever unless a
reader notices; the run store asks this module, for runs started on this host,
so that ``kernelflow runs`` can report them as ``died`` and ``resume`` can pick
them up. A pid alone is not proof: pids are reused, so the process's start time
and the machine's boot are compared too.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

_PID_REUSE_SLACK = 10.0  # a process started this long after its run cannot be its owner


@functools.cache
def boot_id() -> str | None:
    """This boot of this machine (Linux); a run from an earlier boot is certainly dead."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None


@functools.cache
def _boot_time() -> float | None:
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("btime "):
                return float(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def _proc_status(pid: int) -> tuple[str, float] | None:
    """(state letter, start time in epoch seconds) from Linux's /proc, else ``None``."""
    boot = _boot_time()
    if boot is None:
        return None
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
        fields = data[data.rindex(b")") + 2 :].split()  # the name may hold spaces
        return fields[0].decode(), boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def pid_alive(pid: int, since: float) -> bool:
    """Whether the process that started a run at ``since`` still runs (POSIX only).

    A zombie is dead, and so is a process that started well after the run: its
    pid was reused. ``os.kill(pid, 0)`` is the fallback off Linux.
    """
    status = _proc_status(pid)
    if status is not None:
        state, start = status
        return state != "Z" and start <= since + _PID_REUSE_SLACK
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists but belongs to someone else
        return True
    return True
