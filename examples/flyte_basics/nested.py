"""A workflow used as a step of another workflow (Flyte's subworkflows)."""

from kernelflow import task, workflow


@task
def add(a: int, b: int) -> int:
    return a + b


@task
def double(n: int) -> int:
    return 2 * n


@workflow
def add_then_double(a: int, b: int) -> int:
    return double(n=add(a=a, b=b))


@workflow
def parent_wf(a: int = 1, b: int = 2) -> int:
    first = add_then_double(a=a, b=b)
    return add_then_double(a=first, b=10)
