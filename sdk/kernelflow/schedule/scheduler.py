"""The scheduler: runs the launch plans that are due, through papermill.

Why one plain loop and not a daemon framework: a plan run is a papermill execution
of an exported notebook, minutes long, and the only shared state is the plan table.
So a pass is "for each plan, is a tick due? take its lock, run, record, release",
and ``serve()`` is passes separated by sleeps until the next tick. Everything that
varies in tests (the time, what "running a notebook" means, sleeping) is injected,
so the tests drive the scheduler through days of ticks without waiting.

Missed ticks do not pile up: a plan whose scheduler was down for three days runs
once, for its latest tick (see :func:`kernelflow.schedule.plans.due_tick`).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Literal, NamedTuple

from kernelflow.errors import KernelflowError
from kernelflow.schedule import plans as _plans
from kernelflow.schedule.plans import KICKOFF, Plan, PlanStore

Status = Literal["succeeded", "failed", "interrupted", "skipped"]
Clock = Callable[[], datetime]
Runner = Callable[[Plan, datetime, Path], object]

RUN_FILE_FORMAT = "%Y%m%dT%H%M%SZ"
MAX_SLEEP_SECONDS = 60.0
MIN_SLEEP_SECONDS = 1.0


class Outcome(NamedTuple):
    """What happened to one plan in a pass: the plan as recorded afterwards."""

    plan: Plan
    tick: datetime
    status: Status


# --- ticks, through croniter ------------------------------------------------------


def latest_tick(plan: Plan, now: datetime) -> datetime:
    """The latest tick of ``plan`` at or before ``now``, in UTC."""
    from croniter import croniter

    # croniter's get_prev is strictly before its start; one microsecond later makes
    # a tick that falls exactly on ``now`` count as due.
    start = now.astimezone(plan.zone) + timedelta(microseconds=1)
    tick = croniter(plan.cron, start, hash_id=plan.name).get_prev(datetime)
    return tick.astimezone(UTC)


def next_tick(plan: Plan, after: datetime) -> datetime:
    """The first tick of ``plan`` strictly after ``after``, in UTC."""
    from croniter import croniter

    tick = croniter(plan.cron, after.astimezone(plan.zone), hash_id=plan.name).get_next(datetime)
    return tick.astimezone(UTC)


def due_tick(plan: Plan, now: datetime) -> datetime | None:
    """The tick to run now, or ``None``.

    Only the latest tick counts: a plan that missed several ticks while no scheduler
    ran catches up once, not once per missed tick.
    """
    tick = latest_tick(plan, now)
    since = plan.last_tick or plan.created
    return tick if tick > since else None


def upcoming_tick(plan: Plan) -> datetime:
    """The first tick after the last one run (or after creation): what ``ls`` shows."""
    return next_tick(plan, plan.last_tick or plan.created)


def utc_now() -> datetime:
    """The default clock (a function of its own so tests can replace it)."""
    return datetime.now(UTC)


def run_with_papermill(
    plan: Plan, tick: datetime, out_path: Path, *, home: Path | None = None
) -> None:
    """Execute the plan's notebook with papermill into ``out_path``.

    The kernel runs in the notebook's directory (relative paths in the notebook
    mean what they meant when it was exported) and records its run in the same
    store as the plan: ``$KERNELFLOW_HOME`` is set to ``home`` for the kernel, since
    a relative or default home would otherwise resolve against the new directory;
    the run is recorded in the plan's project and domain.
    """
    import papermill

    from kernelflow.api import in_scope

    with _kernelflow_home(home), in_scope(plan.project, plan.domain):
        papermill.execute_notebook(
            plan.notebook,
            str(out_path),
            parameters=dict(plan.params),
            kernel_name="python3",
            progress_bar=False,
            cwd=str(Path(plan.notebook).parent),
        )


def run_plan(plan: Plan, tick: datetime, out_path: Path, *, home: Path | None = None) -> None:
    """The default runner: a script launch plan through ``kernelflow run``, a notebook
    through papermill."""
    if plan.is_script:
        run_script(plan, tick, out_path, home=home)
    else:
        run_with_papermill(plan, tick, out_path, home=home)


def run_script(plan: Plan, tick: datetime, out_path: Path, *, home: Path | None = None) -> None:
    """``kernelflow run SCRIPT.py:PLAN -p ...`` in a subprocess, its output into ``out_path``.

    A subprocess, as papermill's kernel is one: the user's script is imported there,
    never into the scheduler. The run records itself in the plan's store (its run id
    is in the log); a non-zero exit fails the plan with the error's last line.
    """
    from kernelflow.api import HOME_ENV

    scope = ["--project", plan.project, "--domain", plan.domain]
    command = [sys.executable, "-m", "kernelflow", *scope, "run", plan.notebook]
    when = tick.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    for key, text in plan.params.items():
        command += ["-p", key, when if text == KICKOFF else str(text)]
    env = dict(os.environ)
    if home is not None:
        env[HOME_ENV] = str(home)
    script = Path(plan.notebook.rpartition(":")[0])
    done = subprocess.run(
        command, cwd=script.parent, env=env, capture_output=True, text=True, check=False
    )
    out_path.write_text(
        f"$ {' '.join(command)}\n{done.stdout}{done.stderr}exit status {done.returncode}\n"
    )
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
        reason = lines[-1] if lines else (done.stderr.strip().splitlines() or ["?"])[-1]
        raise KernelflowError(
            f"kernelflow run exited with status {done.returncode}: {reason}",
            fix=f"see {out_path}",
        )


def _kernelflow_home(home: Path | None) -> AbstractContextManager[None]:
    from kernelflow.api import HOME_ENV, environment_variable

    return environment_variable(HOME_ENV, None if home is None else str(home))


def describe_failure(error: BaseException) -> str:
    """One line for ``last_error``: papermill's cell error, or the exception itself."""
    ename = getattr(error, "ename", None)
    if ename is not None:  # papermill.PapermillExecutionError
        cell = getattr(error, "exec_count", None) or getattr(error, "cell_index", "?")
        return f"{ename}: {getattr(error, 'evalue', '')} (cell {cell})"
    return f"{type(error).__name__}: {error}"


class Scheduler:
    """Runs due plans, one at a time, recording each result on the plan.

    Parameters
    ----------
    plans:
        The plan table; default ``<store home>/schedules.sqlite``, or the run
        database when ``$KERNELFLOW_RUNS`` names a server.
    runs_dir:
        Root of the executed notebooks, ``<runs_dir>/<plan>/<tick>.ipynb``; relative
        to the current directory at construction.
    clock:
        Returns the current time as an aware datetime; tests move it by hand.
    runner:
        ``runner(plan, tick, out_path)`` executes a plan; raising means failed.
        Default: :func:`run_plan` in this store's home (papermill for a notebook,
        ``kernelflow run`` for a script launch plan).
    sleep:
        Waits between passes of :meth:`serve`.
    """

    def __init__(
        self,
        plans: PlanStore | None = None,
        *,
        runs_dir: str | os.PathLike[str] = "runs",
        clock: Clock | None = None,
        runner: Runner | None = None,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        self.plans = plans or PlanStore()
        self.runs_dir = Path(runs_dir).absolute()
        self._clock = clock or utc_now
        self._runner = runner or partial(run_plan, home=self.plans.home)
        self._sleep = sleep

    def now(self) -> datetime:
        moment = self._clock()
        if moment.tzinfo is None:
            raise KernelflowError(
                "the scheduler's clock returned a naive datetime",
                fix="return an aware datetime, e.g. datetime.now(UTC)",
            )
        return moment.astimezone(UTC)

    def due(self) -> list[tuple[Plan, datetime]]:
        """The plans with a tick due now, each with the (latest) tick to run."""
        now = self.now()
        found = []
        for plan in self.plans.plans():
            tick = due_tick(plan, now)
            if tick is not None:
                found.append((plan, tick))
        return found

    def run_pending(self) -> list[Outcome]:
        """One pass: run every due plan once; a failure does not stop the others.

        A plan whose lock is held (running elsewhere) is reported as ``skipped``
        and keeps its tick due, for a later pass.
        """
        return [self._run(plan, tick, scheduled=True) for plan, tick in self.due()]

    def run_now(self, name: str) -> Outcome:
        """Run plan ``name`` at once, off schedule: its cron ticks are unaffected."""
        plan = self.plans.get(name)
        return self._run(plan, self.now().replace(microsecond=0), scheduled=False)

    def output_path(self, plan: Plan, tick: datetime) -> Path:
        """``<runs_dir>/<plan>/<tick>.ipynb``; a plan name unfit for a path is refused.

        Plans are checked when added, but one stored by an older kernelflow was not:
        here, where its name becomes a path, it fails that one run with a message
        instead of an ``OSError`` that would stop the pass.
        """
        from kernelflow.api import validate_name

        name = validate_name(
            "plan name",
            plan.name,
            where="the stored plans",
            fix="remove it with `kernelflow schedule rm NAME`, add it again with --name",
        )
        suffix = ".log" if plan.is_script else ".ipynb"
        return self.runs_dir / name / f"{tick.astimezone(UTC):{RUN_FILE_FORMAT}}{suffix}"

    def seconds_until_next(self) -> float:
        """How long :meth:`serve` may sleep: until the next tick of any plan, at most 60 s."""
        now = self.now()
        ticks = [next_tick(plan, now) for plan in self.plans.plans()]
        if not ticks:
            return MAX_SLEEP_SECONDS
        wait = (min(ticks) - now).total_seconds()
        return min(MAX_SLEEP_SECONDS, max(MIN_SLEEP_SECONDS, wait))

    def serve(
        self,
        *,
        on_outcome: Callable[[Outcome], object] | None = None,
        max_passes: int | None = None,
    ) -> None:
        """Pass, sleep until the next tick, repeat; until interrupted (or ``max_passes``)."""
        passes = 0
        while True:
            for outcome in self.run_pending():
                if on_outcome is not None:
                    on_outcome(outcome)
            passes += 1
            if max_passes is not None and passes >= max_passes:
                return
            self._sleep(self.seconds_until_next())

    def _run(self, plan: Plan, tick: datetime, *, scheduled: bool) -> Outcome:
        token = self.plans.try_lock(plan.name, before=tick if scheduled else None)
        if token is None:
            return Outcome(self._reread(plan), tick, "skipped")
        out_path: Path | None = None
        status: Status = "failed"
        error: str | None = None
        try:
            out_path = self.output_path(plan, tick)
            out_path.parent.mkdir(parents=True, exist_ok=True)
            with LeaseKeeper(self.plans, plan.name, token):  # others see it alive
                self._runner(plan, tick, out_path)
            status = "succeeded"
        except Exception as failure:
            error = describe_failure(failure)
        except BaseException:  # KeyboardInterrupt, SystemExit: record, then stop
            status, error = "interrupted", "interrupted"
            raise
        finally:
            # An interrupted tick stays due; a failed one counts as run (no retry storm).
            advance = scheduled and status != "interrupted"
            self.plans.release(
                plan.name,
                token,
                status=status,
                error=error,
                run_file=_written(out_path),
                tick=tick if advance else None,
            )
        return Outcome(self._reread(plan), tick, status)

    def _reread(self, plan: Plan) -> Plan:
        try:
            return self.plans.get(plan.name)
        except KernelflowError:  # removed while it ran
            return plan


def _written(out_path: Path | None) -> str | None:
    """The run file, if the run wrote one; never raises (this runs while releasing the lock)."""
    try:
        return str(out_path) if out_path is not None and out_path.is_file() else None
    except OSError:
        return None


def skip_reason(plan: Plan, tick: datetime) -> str:
    """Why a pass skipped ``plan`` at ``tick``, from the plan as recorded afterwards."""
    if plan.running_since is not None:
        return f"running in {plan.holder}"
    if plan.last_tick is not None and plan.last_tick >= tick:
        return "already ran for that tick"
    return "it was running; it stays due for the next pass"


class LeaseKeeper:
    """Renews a plan lock's lease every :data:`~kernelflow.schedule.plans.LEASE_RENEW_SECONDS`
    while a run goes on (a daemon thread), so schedulers on other machines leave the
    plan alone however long it runs, and take it over soon after this one dies."""

    def __init__(self, plans: PlanStore, name: str, token: str) -> None:
        self.plans, self.name, self.token = plans, name, token
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._renew, name=f"lease {name}", daemon=True)

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join(timeout=5.0)

    def _renew(self) -> None:
        while not self._done.wait(_plans.LEASE_RENEW_SECONDS):
            try:
                if not self.plans.renew_lease(self.name, self.token):
                    return  # taken over: nothing left to renew
            except Exception:  # the database is away for a moment: try at the next beat
                continue
