"""Launch plans: an exported notebook, a cron expression and fixed parameters, persisted.

A plan is what ``kernelflow schedule add`` records and what the scheduler runs. Plans
are kept where the run history is: in their own SQLite file,
``<store home>/schedules.sqlite``, apart from ``runs.sqlite`` (a scheduler process
polls them all day while runs write to ``runs.sqlite``; separate files keep the two
from contending for one write lock); or, when ``$KERNELFLOW_RUNS`` names a
PostgreSQL server, in the run database, so that every machine using it sees the
same plans and one lock per plan (``kernelflow.store.small_db``).

Every question about time (is the expression valid here; which tick is due and when
is the next one, in :mod:`kernelflow.schedule.scheduler`) is answered by ``croniter``
in the plan's time zone, never by our own cron arithmetic: daylight saving,
``@daily``, ranges and step values are its job.

The ``running_since`` / ``pid`` / ``host`` / ``lease_until_ts`` / ``lock_token``
columns are a lock, so that one plan never runs twice at once even with several
schedulers, on one machine or on several: it is taken by a single atomic
``UPDATE ... WHERE running_since IS NULL`` and released by the token holder. A
lock whose holder is gone is stale and may be taken over (see
:meth:`PlanStore.try_lock`).

A plan belongs to the project and domain it was added in (``--project``,
``--domain``), and its runs are recorded there; ``schedule ls`` lists those of the
current project and domain. A plan's name is unique in the file, whatever its domain:
``schedule rm NAME`` never has to ask which one.
"""

from __future__ import annotations

import ast
import json
import os
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from kernelflow.api import PLANS, FileTables, SmallTables, default_home, open_tables
from kernelflow.errors import KernelflowError, ParameterError

TICK_FORMAT = "%Y-%m-%dT%H:%M:%SZ"  # UTC; sorts as text in the same order as in time
# How long a lock taken on one machine keeps schedulers on other machines away: they
# cannot see its process, so only its lease says it is gone. The scheduler running
# the plan renews it every LEASE_RENEW_SECONDS while the run goes on (renew_lease), so
# a run may take hours; a scheduler killed midway frees the plan for the others once
# its last lease runs out. The machines' clocks must agree well within it.
LOCK_LEASE_SECONDS = 600.0
LEASE_RENEW_SECONDS = 60.0


@dataclass(frozen=True)
class Plan:
    """One launch plan as stored; times are aware datetimes in UTC."""

    name: str
    notebook: str
    cron: str
    params: dict[str, Any] = field(default_factory=dict)
    timezone: str = "UTC"
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    last_tick: datetime | None = None
    last_status: str | None = None
    last_error: str | None = None
    last_run_file: str | None = None
    last_run_at: datetime | None = None
    running_since: datetime | None = None
    pid: int | None = None
    project: str = "default"
    domain: str = "development"
    host: str | None = None  # of the process that holds the lock, if one does

    @property
    def holder(self) -> str:
        """Who holds the lock, for messages: ``pid 123 on HOST``."""
        return f"pid {self.pid}" + (f" on {self.host}" if self.host else "")

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def is_script(self) -> bool:
        """A script launch plan (``/abs/flow.py:PLAN``), run by ``kernelflow run``."""
        return is_script_target(self.notebook)


# A parameter value that the scheduler replaces with the tick's time (ISO, UTC): how a
# launch plan's ``kickoff_time_input_arg`` receives it.
KICKOFF = "{kickoff_time}"


def is_script_target(text: str | os.PathLike[str]) -> bool:
    path, _, attribute = os.fspath(text).rpartition(":")
    return path.endswith(".py") and bool(attribute)


# --- cron, through croniter ---------------------------------------------------------


def check_cron(expression: str, timezone: str = "UTC", *, name: str = "") -> None:
    """Refuse an expression croniter cannot iterate, with croniter's own reason.

    An expression may parse and still never fire (``0 0 30 2 *``), so a next tick is
    computed too: a plan that can never run is a mistake better caught at ``add``.
    """
    zone = check_timezone(timezone)
    from croniter import CroniterError, croniter

    try:
        croniter(expression, datetime.now(zone), hash_id=name or None).get_next(datetime)
    except (CroniterError, ValueError, KeyError, TypeError) as error:
        raise ParameterError(
            f"bad cron expression {expression!r}: {error}",
            fix='write five fields "MINUTE HOUR DAY MONTH WEEKDAY", e.g. --cron "0 6 * * *"'
            " (daily at 06:00), or @hourly/@daily/@weekly",
            parameter="cron",
            actual=expression,
        ) from error


def check_timezone(timezone: str) -> ZoneInfo:
    """The IANA zone ``timezone`` names, or a :class:`ParameterError`."""
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ParameterError(
            f"unknown time zone {timezone!r}",
            fix="use an IANA name such as UTC, Europe/Paris or America/New_York",
            parameter="tz",
            actual=timezone,
        ) from error


def format_tick(tick: datetime) -> str:
    return tick.astimezone(UTC).strftime(TICK_FORMAT)


# --- building a plan from what the user typed -----------------------------------------


def make_plan(
    notebook: str | os.PathLike[str],
    cron: str | None,
    params: Mapping[str, str] | None = None,
    *,
    name: str | None = None,
    timezone: str = "UTC",
    now: datetime | None = None,
) -> Plan:
    """Check everything ``schedule add`` was given and build the plan it describes.

    Parameters are parsed now, against the types the exported notebook declares in
    its ``kernelflow.inputs`` metadata, so that a typo fails at ``add`` and not at
    06:00 the next morning. ``SCRIPT.py:PLAN`` names a launch plan in a script
    (see :func:`make_script_plan`).
    """
    if is_script_target(notebook):
        return make_script_plan(
            os.fspath(notebook), cron, params, name=name, timezone=timezone, now=now
        )
    if cron is None:
        raise ParameterError(
            "a notebook plan needs a cron expression",
            fix='give --cron EXPR, e.g. --cron "0 6 * * *"',
            parameter="cron",
        )
    path = Path(notebook).expanduser().absolute()
    metadata = _read_metadata(path)
    plan_name = _plan_name(name, metadata.get("workflow"), path)
    check_cron(cron, timezone, name=plan_name)
    values = parse_plan_params(dict(params or {}), metadata.get("inputs"))
    created = (now or datetime.now(UTC)).astimezone(UTC)
    return Plan(plan_name, str(path), cron, values, timezone, created)


def make_script_plan(
    target: str,
    cron: str | None,
    params: Mapping[str, str] | None = None,
    *,
    name: str | None = None,
    timezone: str = "UTC",
    now: datetime | None = None,
) -> Plan:
    """A plan that runs ``kernelflow run SCRIPT.py:PLAN`` with ``params`` (kept as text).

    The launch plan is loaded now, so that a missing script, an unknown or fixed
    input, or a rate with no local meaning fails at ``add``. Its cron is used when
    ``cron`` is not given; its ``kickoff_time_input_arg`` receives each tick's time.
    """
    from kernelflow.api import load_target, parse_params, plan_schedule, validate_name

    path_text, _, attribute = target.rpartition(":")
    spec = f"{Path(path_text).expanduser().absolute()}:{attribute}"
    loaded = load_target(spec)
    texts = dict(params or {})
    parse_params(loaded, texts)  # parsed again by the run; here only to fail early
    own_cron, kickoff = plan_schedule(loaded)
    cron = cron or own_cron
    if cron is None:
        raise ParameterError(
            f"{target!r} has no schedule",
            fix='give --cron EXPR, or a schedule=CronSchedule(schedule="...") to the launch plan',
            parameter="cron",
        )
    if kickoff is not None and kickoff not in texts:
        texts[kickoff] = KICKOFF
    plan_name = validate_name("plan name", name or loaded.name, where="--name")
    check_cron(cron, timezone, name=plan_name)
    created = (now or datetime.now(UTC)).astimezone(UTC)
    return Plan(plan_name, spec, cron, texts, timezone, created)


def _read_metadata(path: Path) -> dict[str, Any]:
    import nbformat

    if not path.is_file():
        raise ParameterError(
            f"notebook {str(path)!r} does not exist",
            fix="give the path of a notebook written by `kernelflow export`",
            actual=str(path),
        )
    try:
        notebook = nbformat.read(path, as_version=4)
    except Exception as error:
        raise ParameterError(
            f"{str(path)!r} is not a notebook: {type(error).__name__}: {error}",
            fix="give the path of a notebook written by `kernelflow export`",
            actual=str(path),
        ) from error
    metadata = notebook.metadata.get("kernelflow")
    return dict(metadata) if isinstance(metadata, Mapping) else {}


def _plan_name(name: str | None, workflow: object, path: Path) -> str:
    """``--name``, else the workflow's name (an export is named ``<version>.ipynb``),
    else the file's; checked now, since it becomes the directory ``runs/<plan>/``."""
    from kernelflow.api import name_from_stem, validate_name

    if name is not None:
        return validate_name("plan name", name, where="--name")
    if workflow is None or workflow == "":
        return name_from_stem(path.stem)
    return validate_name(
        "workflow name",
        workflow,
        where=f"the notebook metadata of {path.name}",
        fix="name the plan yourself with --name NAME",
    )


def parse_plan_params(texts: dict[str, str], inputs: object) -> dict[str, Any]:
    """Values for papermill, typed by the notebook's declared inputs where it has them.

    Without declarations the raw strings are kept (papermill injects them as strings).
    A value whose parsed form JSON cannot hold (a date, a set) is kept as its text.
    """
    from kernelflow.api import parse_parameter

    declared = _declared_types(inputs)
    if declared is None:
        return dict(texts)
    unknown = sorted(set(texts) - set(declared))
    if unknown:
        known = ", ".join(sorted(declared)) or "(none)"
        raise ParameterError(
            f"unknown parameter{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
            f"the notebook declares: {known}",
            fix="check the spelling against the notebook's parameters cell",
            parameter=unknown[0],
        )
    values: dict[str, Any] = {}
    for key, text in texts.items():
        tp = _resolve_type(declared[key])
        value = text if tp is None else parse_parameter(key, text, tp)
        values[key] = value if _json_native(value) else text
    return values


def _declared_types(inputs: object) -> dict[str, str | None] | None:
    """``{name: type text}`` from ``kernelflow.inputs``; ``None`` when it is absent."""
    if isinstance(inputs, Mapping):
        result: dict[str, str | None] = {}
        for key, spec in inputs.items():
            text = spec.get("type") if isinstance(spec, Mapping) else spec
            result[str(key)] = text if isinstance(text, str) else None
        return result
    if isinstance(inputs, list) and all(isinstance(item, str) for item in inputs):
        return dict.fromkeys(inputs)
    return None


def _type_namespace() -> dict[str, Any]:
    import datetime as dt
    import pathlib
    import typing

    names: dict[str, Any] = {
        "__builtins__": {},
        "None": None,
        "datetime": dt,
        "pathlib": pathlib,
        "typing": typing,
        "date": dt.date,
        "time": dt.time,
        "Path": pathlib.Path,
    }
    names.update({t.__name__: t for t in (int, float, str, bool, list, dict, tuple, set, bytes)})
    for key in ("Any", "Optional", "Union", "Literal", "List", "Dict", "Tuple", "Set"):
        names[key] = getattr(typing, key)
    return names


_TYPE_NODES = (
    ast.Expression,
    ast.Name,
    ast.Attribute,
    ast.Subscript,
    ast.Tuple,
    ast.List,
    ast.Constant,
    ast.BinOp,
    ast.BitOr,
    ast.Load,
)


def _resolve_type(text: str | None) -> object | None:
    """The type a type text names, or ``None`` if it is not a plain typing expression.

    Only names, attributes, subscripts, literals and ``|`` are evaluated, against a
    fixed namespace: the text comes from a file, and must not be able to run code.
    """
    if not text:
        return None
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        return None
    if not all(isinstance(node, _TYPE_NODES) for node in ast.walk(tree)):
        return None
    try:
        return eval(compile(tree, "<type>", "eval"), _type_namespace())
    except Exception:
        return None


def _json_native(value: object) -> bool:
    try:
        return json.loads(json.dumps(value)) == value
    except (TypeError, ValueError):
        return False


# --- the store ------------------------------------------------------------------------


class PlanStore:
    """Plans in ``schedules.sqlite``, or in a shared run database; safe to share between
    processes, and between machines.

    Each call is one short statement of its own (a fresh connection to the file, or
    the store's connection to the server), so one instance can be used from any
    thread and many schedulers can poll the same plans. ``path`` names a plan file
    to use instead of the configured place.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.tables: SmallTables
        if path is None:
            self.home = default_home()  # the store the plans belong to (runs record there)
            self.tables = open_tables(PLANS, self.home)
        else:
            self.tables = FileTables(path, PLANS)
            self.home = self.tables.path.parent
        self.path: Path | None = getattr(self.tables, "path", None)  # the file, if in one

    def add(self, plan: Plan) -> Plan:
        """Store a new plan; a name already taken, or not fit for a path, is refused."""
        from kernelflow.api import validate_name

        validate_name("plan name", plan.name, where="the plan to store")
        row = (
            plan.name,
            plan.notebook,
            plan.cron,
            json.dumps(plan.params),
            plan.timezone,
            _iso(plan.created),
            plan.project,
            plan.domain,
        )
        added = self.tables.write(
            "INSERT OR IGNORE INTO plans (name, notebook, cron, params, timezone, created,"
            " project, domain) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            row,
        )
        if not added:
            raise ParameterError(
                f"a plan named {plan.name!r} exists already",
                fix=f"choose another with --name, or `kernelflow schedule rm {plan.name}`",
                parameter="name",
                actual=plan.name,
            )
        return plan

    def get(self, name: str) -> Plan:
        row = self.tables.row("SELECT * FROM plans WHERE name = ?", (name,))
        if row is None:
            raise _unknown(name)
        return _plan(row)

    def plans(self, *, project: str | None = None, domain: str | None = None) -> list[Plan]:
        """Every plan (of ``project`` and ``domain``, where given), by name; the
        scheduler runs them all, each in its own project and domain."""
        pairs = (("project", project), ("domain", domain))
        given = [(column, value) for column, value in pairs if value is not None]
        where = " AND ".join(f"{column} = ?" for column, _ in given)
        sql = "SELECT * FROM plans" + (f" WHERE {where}" if where else "") + " ORDER BY name"
        return [_plan(row) for row in self.tables.rows(sql, tuple(value for _, value in given))]

    def remove(self, name: str) -> None:
        if self.tables.write("DELETE FROM plans WHERE name = ?", (name,)) == 0:
            raise _unknown(name)

    def try_lock(
        self,
        name: str,
        *,
        before: datetime | None = None,
        pid: int | None = None,
        host: str | None = None,
        lease: float | None = None,
    ) -> str | None:
        """Take the plan's run lock; a token to release it with, or ``None`` if held.

        ``before``: take it only if the plan's last tick is older, so that two
        schedulers that both saw a tick as due do not both run it, one after the other.
        The lock records its holder (``pid``, default this process, on ``host``,
        default this machine) and a lease, ``lease`` seconds from now. It is stale,
        and taken over, when its holder is gone: a holder on this host when its
        process has ended (its pid is dead, or was reused); a holder on another host,
        whose processes this one cannot see, only when its lease has run out (the
        holder renews it while it runs: :meth:`renew_lease`; the clocks of the
        machines are trusted to agree within :data:`LOCK_LEASE_SECONDS`). A
        take-over is again one conditional UPDATE, so two takers cannot both win.
        """
        token, here = uuid.uuid4().hex, _this_host()
        now = time.time()  # real time: checked against pids and leases
        lock = (
            _iso(datetime.fromtimestamp(now, UTC)),
            now,
            os.getpid() if pid is None else pid,
            host or here,
            now + (LOCK_LEASE_SECONDS if lease is None else lease),
            token,
        )
        tick_clause, tick_args = _tick_condition(before)
        set_lock = (
            "UPDATE plans SET running_since = ?, running_since_ts = ?, pid = ?, host = ?,"
            " lease_until_ts = ?, lock_token = ?"
        )
        taken = self.tables.write(
            f"{set_lock} WHERE name = ? AND running_since IS NULL{tick_clause}",
            (*lock, name, *tick_args),
        )
        if taken:
            return token
        row = self.tables.row("SELECT * FROM plans WHERE name = ?", (name,))
        if row is None:
            raise _unknown(name)
        if row["lock_token"] is None or not _holder_gone(row, here, now):
            return None
        taken = self.tables.write(
            f"{set_lock} WHERE name = ? AND lock_token = ?{tick_clause}",
            (*lock, name, row["lock_token"], *tick_args),
        )
        return token if taken else None

    def renew_lease(self, name: str, token: str, lease: float | None = None) -> bool:
        """Extend the lease of the lock ``token`` holds to ``lease`` seconds from now;
        False when the token no longer holds it (it was taken over)."""
        until = time.time() + (LOCK_LEASE_SECONDS if lease is None else lease)
        return bool(
            self.tables.write(
                "UPDATE plans SET lease_until_ts = ? WHERE name = ? AND lock_token = ?",
                (until, name, token),
            )
        )

    def release(
        self,
        name: str,
        token: str,
        *,
        status: str,
        error: str | None = None,
        run_file: str | None = None,
        tick: datetime | None = None,
    ) -> None:
        """Record a run's result and free the lock (only if ``token`` still holds it)."""
        self.tables.write(
            "UPDATE plans SET running_since = NULL, running_since_ts = NULL, pid = NULL,"
            " host = NULL, lease_until_ts = NULL, lock_token = NULL, last_status = ?,"
            " last_error = ?, last_run_file = ?, last_run_at = ?,"
            " last_tick = COALESCE(?, last_tick) WHERE name = ? AND lock_token = ?",
            (
                status,
                error,
                run_file,
                _iso(datetime.now(UTC)),
                format_tick(tick) if tick else None,
                name,
                token,
            ),
        )


def _tick_condition(before: datetime | None) -> tuple[str, tuple[str, ...]]:
    if before is None:
        return "", ()
    return " AND (last_tick IS NULL OR last_tick < ?)", (format_tick(before),)


def _this_host() -> str:
    import socket

    return socket.gethostname()


def _holder_gone(row: Mapping[str, Any], here: str, now: float) -> bool:
    """Whether the lock in ``row`` is stale, seen from host ``here`` at ``now``: see
    :meth:`PlanStore.try_lock`. A lock from before hosts were recorded is this host's."""
    if row["host"] not in (None, here):
        lease = row["lease_until_ts"]
        return lease is None or float(lease) < now
    from kernelflow.api import pid_alive

    if row["pid"] is None or row["running_since_ts"] is None:
        return True
    return not pid_alive(int(row["pid"]), float(row["running_since_ts"]))


def _unknown(name: str) -> KernelflowError:
    return ParameterError(
        f"no plan named {name!r}",
        fix="`kernelflow schedule ls` lists the plans",
        parameter="name",
        actual=name,
    )


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _when(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _plan(row: Mapping[str, Any]) -> Plan:
    return Plan(
        name=row["name"],
        notebook=row["notebook"],
        cron=row["cron"],
        params=json.loads(row["params"]),
        timezone=row["timezone"],
        created=_when(row["created"]) or datetime.now(UTC),
        last_tick=_when(row["last_tick"]),
        last_status=row["last_status"],
        last_error=row["last_error"],
        last_run_file=row["last_run_file"],
        last_run_at=_when(row["last_run_at"]),
        running_since=_when(row["running_since"]),
        pid=row["pid"],
        project=row["project"],
        domain=row["domain"],
        host=row["host"],
    )
