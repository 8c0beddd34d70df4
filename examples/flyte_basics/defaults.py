"""Several tasks, workflow inputs with defaults, and a task default (Flyte basics)."""

from kernelflow import task, workflow


@task
def slope(x: list[int], y: list[int]) -> float:
    n = len(x)
    sum_xy = sum(a * b for a, b in zip(x, y))
    sum_xx = sum(a * a for a in x)
    return (n * sum_xy - sum(x) * sum(y)) / (n * sum_xx - sum(x) ** 2)


@task
def intercept(x: list[int], y: list[int], slope: float, scale: float = 1.0) -> float:
    return scale * (sum(y) / len(y) - slope * sum(x) / len(x))


@workflow
def line_wf(x: list[int] = [-3, 0, 3], y: list[int] = [7, 4, -2]) -> float:  # noqa: B006
    fitted = slope(x=x, y=y)
    return intercept(x=x, y=y, slope=fitted)
