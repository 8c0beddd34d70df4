"""A workflow and its launch plans: fixed and default inputs, a cron and a fixed rate."""

from __future__ import annotations

from datetime import datetime, timedelta

from kernelflow import CronSchedule, FixedRate, LaunchPlan, task, workflow


@task
def scale(values: list[float], factor: float) -> list[float]:
    return [value * factor for value in values]


@task
def total(values: list[float], offset: float) -> float:
    return sum(values) + offset


@workflow
def report(values: list[float], factor: float = 1.0, offset: float = 0.0) -> float:
    return total(values=scale(values=values, factor=factor), offset=offset)


# The factor is fixed: every run of this plan doubles. The values have a default
# that a caller may override.
doubled = LaunchPlan.create(
    "doubled",
    report,
    default_inputs={"values": [1.0, 2.0, 3.0]},
    fixed_inputs={"factor": 2.0},
    schedule=CronSchedule(schedule="0 6 * * *"),
)

# The workflow's default plan: no inputs of its own.
report_default = LaunchPlan.get_or_create(report)

every_ten_minutes = LaunchPlan.get_or_create(
    report,
    name="every_ten_minutes",
    default_inputs={"values": [10.0]},
    schedule=FixedRate(duration=timedelta(minutes=10)),
)


@task
def stamp(when: datetime, values: list[float]) -> str:
    return f"{when:%Y-%m-%d %H:%M}: {sum(values)}"


@workflow
def stamped(values: list[float], when: datetime = datetime(2000, 1, 1)) -> str:
    return stamp(when=when, values=values)


morning = LaunchPlan.create(
    "morning",
    stamped,
    fixed_inputs={"values": [1.0, 1.0]},
    schedule=CronSchedule(schedule="0 6 * * *", kickoff_time_input_arg="when"),
)
