"""Worker processes die with the process that owns them.

A loky pool outlives a run on purpose (the next run starts without spawning),
so its workers cannot be tied to a run; they are tied to the process that owns
the pool. When that process is killed (SIGKILL, the OOM killer), none of its
cleanup code runs, and a worker busy with a task of the killed run would go on
as long as the task does, writing its checkpoints while the resume of that run
runs (issue 16, finding 4). So each worker watches its parent and exits when the
parent is gone; loky's resource tracker then sees its pipe close (the parent and
the workers held it) and exits too.

Why polling ``os.getppid()`` and not ``prctl(PR_SET_PDEATHSIG)``: Linux sends the
parent-death signal when the *thread* that spawned the child ends, not the
process, and loky spawns workers from whichever thread submits (a run in a
background thread, a kernel's executor thread), so a pool reused by a later run
would lose its workers in the middle of that live run. A process's parent id
changes only when its parent has died (the orphan is reparented to init or a
subreaper), so the check cannot misfire, and it works on macOS too. It costs one
system call every :data:`POLL_SECONDS` in a sleeping thread.

Dask needs nothing of this: the nanny and the scheduler of a ``LocalCluster``
live in the run's own process, and ``distributed`` ends each worker process
whose parent is gone (a pipe only the parent holds, ``distributed/process.py``).
"""

from __future__ import annotations

import os
import threading
import time

POLL_SECONDS = 0.25
"""How often a worker checks its parent: the bound on how long an orphan lives on."""

ORPHANED_EXIT_CODE = 86
"""A worker's exit status when it ends because its parent died (nobody is left to read it)."""


def exit_with_parent(parent: int) -> None:
    """Make this process exit soon after ``parent`` (its parent process) dies.

    Call it first thing in a worker process (a pool initializer). ``parent`` is
    passed in, not read here, so a worker whose parent died before this call
    still sees it.
    """
    if os.getppid() != parent:
        os._exit(ORPHANED_EXIT_CODE)
    threading.Thread(
        target=_watch, args=(parent,), name="kernelflow-parent-watch", daemon=True
    ).start()


def _watch(parent: int) -> None:
    """Sleep until the parent is gone, then end the process at once.

    ``os._exit``: ``sys.exit`` would end only this thread, and the task running in
    the main thread belongs to a run that is over.
    """
    while os.getppid() == parent:
        time.sleep(POLL_SECONDS)
    os._exit(ORPHANED_EXIT_CODE)
