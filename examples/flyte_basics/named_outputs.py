"""Tasks and workflows with NamedTuple outputs, read by attribute (Flyte basics)."""

from typing import NamedTuple

from kernelflow import task, workflow


class SlopeOut(NamedTuple):
    slope: float


class InterceptOut(NamedTuple):
    intercept: float


class LineOut(NamedTuple):
    slope: float
    intercept: float


@task
def slope(x: list[int], y: list[int]) -> SlopeOut:
    n = len(x)
    sum_xy = sum(a * b for a, b in zip(x, y))
    sum_xx = sum(a * a for a in x)
    return (n * sum_xy - sum(x) * sum(y)) / (n * sum_xx - sum(x) ** 2)


@task
def intercept(x: list[int], y: list[int], slope: float) -> InterceptOut:
    return sum(y) / len(y) - slope * sum(x) / len(x)


@task
def stats(values: list[int]) -> tuple[int, float]:
    return max(values), sum(values) / len(values)


@workflow
def named_wf(x: list[int] = [-3, 0, 3], y: list[int] = [7, 4, -2]) -> LineOut:  # noqa: B006
    s = slope(x=x, y=y)
    i = intercept(x=x, y=y, slope=s.slope)
    return LineOut(slope=s.slope, intercept=i.intercept)


@workflow
def tuple_wf(values: list[int] = [1, 2, 3, 6]) -> tuple[int, float]:  # noqa: B006
    largest, mean = stats(values=values)
    return largest, mean
