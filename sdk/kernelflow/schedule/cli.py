"""``kernelflow schedule add|ls|rm|run`` and ``kernelflow scheduler [--once]``.

The main CLI (:mod:`kernelflow.cli`) owns the parser and the error rendering; this
module only adds the subcommands. Handlers return an exit code and print plain
text; bad input raises :class:`~kernelflow._core.errors.ParameterError` (exit 2).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from datetime import UTC, datetime
from typing import Any

from kernelflow.api import PARAM_OPTION
from kernelflow.errors import KernelflowError

EXIT_OK, EXIT_FAILED = 0, 1


def add_schedule_commands(subparsers: Any) -> None:
    """Add ``schedule`` (add/ls/rm/run) and ``scheduler`` to an argparse subparsers object."""
    schedule = subparsers.add_parser(
        "schedule", help="launch plans: run exported notebooks on cron"
    )
    schedule.set_defaults(handler=_usage(schedule))
    actions = schedule.add_subparsers(title="actions", metavar="ACTION")

    add = actions.add_parser("add", help="schedule an exported notebook or a script's launch plan")
    add.add_argument("notebook", metavar="EXPORTED.ipynb|SCRIPT.py:LAUNCH_PLAN")
    add.add_argument(
        "--cron",
        metavar="EXPR",
        help='e.g. "0 6 * * *" (required for a notebook; a launch plan has its own schedule)',
    )
    add.add_argument("-p", "--param", help="a parameter for every run (repeatable)", **PARAM_OPTION)
    add.add_argument("--name", help="plan name (default: the workflow's or the launch plan's name)")
    add.add_argument("--tz", default="UTC", metavar="ZONE", help="time zone of EXPR (UTC)")
    add.set_defaults(handler=_add)

    ls = actions.add_parser("ls", help="list the plans of the current project and domain")
    ls.add_argument(
        "--all-domains",
        action="store_true",
        help="list the plans of every domain of the project, not only the current one",
    )
    ls.set_defaults(handler=_ls)

    rm = actions.add_parser("rm", help="delete a plan")
    rm.add_argument("name")
    rm.set_defaults(handler=_rm)

    run = actions.add_parser("run", help="run a plan now")
    run.add_argument("name")
    _runs_dir_option(run)
    run.set_defaults(handler=_run)

    scheduler = subparsers.add_parser("scheduler", help="run the plans that are due")
    scheduler.add_argument("--once", action="store_true", help="one pass, then exit")
    _runs_dir_option(scheduler)
    scheduler.set_defaults(handler=_scheduler)


def _usage(parser: argparse.ArgumentParser) -> Any:
    """A handler for a bare ``kernelflow schedule``: its usage, exit 2."""

    def show(args: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    return show


def _runs_dir_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--runs-dir",
        default="runs",
        metavar="DIR",
        help="where executed notebooks go: DIR/<plan>/<tick>.ipynb (default: runs)",
    )


def _add(args: argparse.Namespace) -> int:
    from kernelflow.api import check_schedulable, current_scope
    from kernelflow.schedule.plans import PlanStore, make_plan
    from kernelflow.schedule.scheduler import upcoming_tick

    params = _param_dict(args.param)
    scope = current_scope()  # the plan runs in the project and domain it is added in
    plan = make_plan(args.notebook, args.cron, params, name=args.name, timezone=args.tz)
    if not plan.is_script:  # an export runs only in a domain it was promoted to
        check_schedulable(plan.notebook)
    plan = PlanStore().add(dataclasses.replace(plan, project=scope.project, domain=scope.domain))
    print(f"added plan {plan.name}: {plan.cron} ({plan.timezone}) in {plan.domain}")
    print(f"  {'script' if plan.is_script else 'notebook'}: {plan.notebook}")
    if plan.params:
        print(f"  params:   {', '.join(f'{k}={v!r}' for k, v in plan.params.items())}")
    print(f"  next run: {_local(upcoming_tick(plan), plan.timezone)}")
    return EXIT_OK


def _param_dict(pairs: list[list[str]]) -> dict[str, str]:
    from kernelflow.errors import ParameterError

    params: dict[str, str] = {}
    for name, value in pairs:
        if name in params:
            raise ParameterError(
                f"parameter {name!r} is given twice", fix="give each -p NAME once", parameter=name
            )
        params[name] = value
    return params


def _ls(args: argparse.Namespace) -> int:
    from kernelflow.api import current_scope
    from kernelflow.schedule.plans import PlanStore

    scope = current_scope()
    domain = None if args.all_domains else scope.domain
    plans = PlanStore().plans(project=scope.project, domain=domain)
    if not plans:
        print("no plans; add one with `kernelflow schedule add EXPORTED.ipynb --cron EXPR`")
        return EXIT_OK
    now = datetime.now(UTC)
    header = ("NAME", "CRON", "TIMEZONE", "DOMAIN", "NEXT RUN", "LAST STATUS", "NOTEBOOK")
    rows = [header, *(_row(plan, now) for plan in plans)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths)]
        print("  ".join([*cells, row[-1]]))
    return EXIT_OK


def _row(plan: Any, now: datetime) -> tuple[str, ...]:
    from kernelflow.schedule.scheduler import upcoming_tick

    tick = upcoming_tick(plan)
    when = _local(tick, plan.timezone) + (" (due)" if tick <= now else "")
    status = plan.last_status or "never run"
    if plan.running_since is not None:
        status = f"running ({plan.holder})"
    cells = (plan.name, plan.cron, plan.timezone, plan.domain, when, status)
    return (*cells, _short_path(plan.notebook))


def _short_path(path: str) -> str:
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive
        return path
    return relative if not relative.startswith("..") else path


def _local(moment: datetime, timezone: str) -> str:
    from zoneinfo import ZoneInfo

    return moment.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M %Z")


def _rm(args: argparse.Namespace) -> int:
    from kernelflow.schedule.plans import PlanStore

    PlanStore().remove(args.name)
    print(f"removed plan {args.name}")
    return EXIT_OK


def _run(args: argparse.Namespace) -> int:
    from kernelflow.schedule.scheduler import Scheduler

    outcome = Scheduler(runs_dir=args.runs_dir).run_now(args.name)
    if outcome.status == "skipped":
        plan = outcome.plan
        raise KernelflowError(
            f"plan {plan.name!r} is running already ({plan.holder}, since {plan.running_since})",
            fix="wait for that run to finish; a lock left by a dead process is taken over"
            " (one held on another machine, once its lease has run out)",
            plan=plan.name,
        )
    _print_outcome(outcome)
    return EXIT_OK if outcome.status == "succeeded" else EXIT_FAILED


def _scheduler(args: argparse.Namespace) -> int:
    from kernelflow.schedule.scheduler import Scheduler

    scheduler = Scheduler(runs_dir=args.runs_dir)
    if args.once:
        outcomes = scheduler.run_pending()
        for outcome in outcomes:
            _print_outcome(outcome)
        if not outcomes:
            print("no plans due")
        return EXIT_FAILED if any(o.status == "failed" for o in outcomes) else EXIT_OK
    count = len(scheduler.plans.plans())
    print(f"scheduler: {count} plan{'s' if count != 1 else ''}; press Ctrl-C to stop", flush=True)
    scheduler.serve(on_outcome=_print_outcome)
    return EXIT_OK


def _print_outcome(outcome: Any) -> None:
    from kernelflow.schedule.scheduler import skip_reason

    plan, tick, status = outcome
    line = f"{tick.astimezone(UTC):%Y-%m-%d %H:%M:%S}Z {plan.name}: {status}"
    if status == "skipped":
        line += f" ({skip_reason(plan, tick)})"
    elif plan.last_run_file:
        line += f" -> {_short_path(plan.last_run_file)}"
    if status == "failed" and plan.last_error:
        line += f"\n  {plan.last_error}"
    print(line, flush=True)
