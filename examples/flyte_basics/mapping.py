"""``map_task``: one task over every element of a list, in order (Flyte's map tasks)."""

from kernelflow import map_task, task, workflow


@task
def square(x: int) -> int:
    return x * x


@task
def total(values: list[int]) -> int:
    return sum(values)


@workflow
def squares_wf(xs: list[int] = [1, 2, 3, 4]) -> int:  # noqa: B006
    squared = map_task(square)(x=xs)
    return total(values=squared)
