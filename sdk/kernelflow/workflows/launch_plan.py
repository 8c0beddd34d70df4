"""Launch plans (Flyte's ``LaunchPlan``): a workflow with some inputs fixed, some defaulted,
and maybe a schedule.

A plan is a run target of its own: its graph is the workflow's graph with each
fixed input bound to its constant (so no caller can change it) and each default
input given its new default (so a caller still can). ``kernelflow run
script.py:PLAN`` and ``kernelflow schedule add script.py:PLAN`` run that graph;
calling the plan runs it as calling the workflow would.

Schedules are Flyte's ``CronSchedule`` and ``FixedRate``. The local scheduler
runs on cron ticks, so a fixed rate has a local meaning only when it is one
(see :meth:`FixedRate.cron`): every N minutes with N dividing 60, every N hours
with N dividing 24, or one day.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from kernelflow._core.errors import DefinitionError, ParameterError
from kernelflow._core.graph import Binding, Const, Graph, Param, ParamSpec
from kernelflow._core.interface import check_value, type_name
from kernelflow._core.version import graph_version
from kernelflow.workflows.workflow import Workflow, current_builder


@dataclasses.dataclass(frozen=True)
class CronSchedule:
    """Run on a cron expression (``CronSchedule(schedule="0 6 * * *")``).

    ``kickoff_time_input_arg`` names a ``datetime`` input that receives the tick's time.
    """

    schedule: str
    kickoff_time_input_arg: str | None = None

    def cron(self) -> str:
        return self.schedule


@dataclasses.dataclass(frozen=True)
class FixedRate:
    """Run every ``duration`` (``FixedRate(duration=timedelta(minutes=10))``)."""

    duration: timedelta
    kickoff_time_input_arg: str | None = None

    def cron(self) -> str:
        """The cron expression with the same ticks, aligned on the clock.

        Locally a rate is run by the cron scheduler, so only rates that are cron
        steps have a meaning here; any other is refused with the nearest fix.
        """
        seconds = int(self.duration.total_seconds())
        minutes, hours = seconds // 60, seconds // 3600
        if seconds > 0 and seconds % 60 == 0 and minutes < 60 and 60 % minutes == 0:
            return "* * * * *" if minutes == 1 else f"*/{minutes} * * * *"
        if seconds > 0 and seconds % 3600 == 0 and hours < 24 and 24 % hours == 0:
            return "0 * * * *" if hours == 1 else f"0 */{hours} * * *"
        if seconds == 86400:
            return "0 0 * * *"
        raise ParameterError(
            f"FixedRate(duration={self.duration!r}) has no local meaning: the local scheduler "
            "runs on clock-aligned cron ticks",
            parameter="schedule",
            actual=str(self.duration),
            fix="use a rate of N minutes (N divides 60), N hours (N divides 24) or one day, "
            'or a CronSchedule(schedule="...")',
        )


Schedule = CronSchedule | FixedRate


class LaunchPlan:
    """A workflow bound to fixed and default inputs, and an optional schedule.

    Make one with :meth:`create` or :meth:`get_or_create`; call it with keyword
    arguments (fixed inputs cannot be passed), or run it with ``kernelflow run
    script.py:PLAN``.
    """

    CACHE: dict[str, LaunchPlan] = {}

    def __init__(
        self,
        name: str,
        workflow: Workflow,
        *,
        default_inputs: Mapping[str, Any] | None = None,
        fixed_inputs: Mapping[str, Any] | None = None,
        schedule: Schedule | None = None,
    ) -> None:
        if not isinstance(workflow, Workflow):
            raise DefinitionError(
                f"launch plan {name!r} needs a @workflow, got {type(workflow).__name__}",
                fix="pass the workflow object: LaunchPlan.create(name, my_workflow, ...)",
            )
        if schedule is not None and not isinstance(schedule, (CronSchedule, FixedRate)):
            raise DefinitionError(
                f"the schedule of launch plan {name!r} is a {type(schedule).__name__}",
                fix="pass CronSchedule(schedule=...) or FixedRate(duration=...)",
            )
        self.name = name
        self.workflow = workflow
        self.default_inputs = dict(default_inputs or {})
        self.fixed_inputs = dict(fixed_inputs or {})
        self.schedule = schedule
        self.graph: Graph = _plan_graph(self)
        self.interface = workflow.interface

    @classmethod
    def create(
        cls,
        name: str,
        workflow: Workflow,
        default_inputs: Mapping[str, Any] | None = None,
        fixed_inputs: Mapping[str, Any] | None = None,
        schedule: Schedule | None = None,
        **options: Any,
    ) -> LaunchPlan:
        """A new plan named ``name``; it replaces a plan of that name made before.

        Flyte's other options (notifications, labels, ...) are accepted and ignored.
        """
        plan = cls(
            name,
            workflow,
            default_inputs=default_inputs,
            fixed_inputs=fixed_inputs,
            schedule=schedule,
        )
        cls.CACHE[name] = plan
        return plan

    @classmethod
    def get_or_create(
        cls,
        workflow: Workflow,
        name: str | None = None,
        default_inputs: Mapping[str, Any] | None = None,
        fixed_inputs: Mapping[str, Any] | None = None,
        schedule: Schedule | None = None,
        **options: Any,
    ) -> LaunchPlan:
        """The plan named ``name`` (without a name: the workflow's default plan).

        Asking again for a name with other inputs or another schedule is an error,
        as in Flyte: one name, one plan.
        """
        if name is None:
            if default_inputs or fixed_inputs or schedule:
                raise DefinitionError(
                    "the default launch plan takes no inputs or schedule",
                    workflow=workflow.name,
                    fix="give the plan a name: LaunchPlan.get_or_create(wf, name='...', ...)",
                )
            name = workflow.name
        existing = cls.CACHE.get(name)
        if existing is not None and existing.workflow is workflow:
            same = (
                existing.default_inputs == dict(default_inputs or {})
                and existing.fixed_inputs == dict(fixed_inputs or {})
                and existing.schedule == schedule
            )
            if same or not (default_inputs or fixed_inputs or schedule):
                return existing
        if existing is not None and existing.workflow.name != workflow.name:
            raise DefinitionError(
                f"a launch plan named {name!r} exists already, for workflow "
                f"{existing.workflow.name!r}",
                plan=name,
                fix="choose another name for this workflow's plan",
            )
        if existing is not None and existing.workflow is workflow:
            raise DefinitionError(
                f"a launch plan named {name!r} exists already, with other settings",
                plan=name,
                fix="choose another name, or ask with the same inputs and schedule",
            )
        # A new plan, or the same workflow defined again (its module was imported anew).
        return cls.create(name, workflow, default_inputs, fixed_inputs, schedule)

    @classmethod
    def get_default_launch_plan(cls, ctx: Any, workflow: Workflow) -> LaunchPlan:
        """The workflow's default plan (no inputs fixed, no schedule), as Flyte names it;
        ``ctx`` (Flyte's ``current_context()``) is not needed locally."""
        return cls.get_or_create(workflow)

    @functools.cached_property
    def version(self) -> str:
        return graph_version(self.graph)

    @property
    def cron(self) -> str | None:
        """The schedule as a cron expression, or None; a rate with no local meaning raises."""
        return None if self.schedule is None else self.schedule.cron()

    def check_inputs(self, names: Mapping[str, Any]) -> None:
        """Refuse a value for a fixed input, by name: that is what fixing it means."""
        for key in names:
            if key in self.fixed_inputs:
                raise ParameterError(
                    f"input {key!r} is fixed by launch plan {self.name!r} "
                    f"(to {self.fixed_inputs[key]!r}) and cannot be overridden",
                    parameter=key,
                    workflow=self.workflow.name,
                    fix=f"drop {key}, or make another launch plan with it as a default input",
                )

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.check_inputs(kwargs)
        if args or current_builder() is not None:
            merged = {**self.default_inputs, **kwargs, **self.fixed_inputs}
            return self.workflow(*args, **merged)
        from kernelflow.engine.launch import run_target

        result = run_target(self, kwargs)
        result.raise_for_status()
        return self.interface.pack(result.outputs)

    def __repr__(self) -> str:
        return f"<LaunchPlan {self.name} of {self.workflow.name}>"


def _plan_graph(plan: LaunchPlan) -> Graph:
    """The workflow's graph, fixed inputs bound to constants, defaults replaced."""
    graph = plan.workflow.graph
    for kind, values in (("default", plan.default_inputs), ("fixed", plan.fixed_inputs)):
        for key, value in values.items():
            spec = graph.params.get(key)
            if spec is None:
                raise DefinitionError(
                    f"launch plan {plan.name!r} has a {kind} input {key!r}, but workflow "
                    f"{plan.workflow.name!r} has no such input; its inputs are: "
                    f"{', '.join(graph.params) or '(none)'}",
                    workflow=plan.workflow.name,
                    variable=key,
                    fix="check the spelling of the input",
                )
            problem = check_value(value, spec.type)
            if problem is not None:
                raise DefinitionError(
                    f"{kind} input {key!r} of launch plan {plan.name!r} expects "
                    f"{type_name(spec.type)}, got {problem}",
                    expected=type_name(spec.type),
                    actual=problem,
                    fix="pass a value of the declared type",
                )
    both = set(plan.default_inputs) & set(plan.fixed_inputs)
    if both:
        raise DefinitionError(
            f"input {sorted(both)[0]!r} of launch plan {plan.name!r} is both fixed and a default",
            fix="give it in one of default_inputs or fixed_inputs",
        )
    fixed = {key: Const(value) for key, value in plan.fixed_inputs.items()}

    def bind(binding: Binding) -> Binding:
        return fixed.get(binding.name, binding) if isinstance(binding, Param) else binding

    nodes = {
        node_id: dataclasses.replace(node, bindings={k: bind(b) for k, b in node.bindings.items()})
        for node_id, node in graph.nodes.items()
    }
    params = {
        key: ParamSpec(key, spec.type, plan.default_inputs.get(key, spec.default))
        for key, spec in graph.params.items()
        if key not in fixed
    }
    outputs = {key: bind(binding) for key, binding in graph.outputs.items()}
    return Graph(nodes, params, outputs, graph.order)


__all__ = ["CronSchedule", "FixedRate", "LaunchPlan", "Schedule"]
