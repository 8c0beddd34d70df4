"""Flyte's first example, with kernelflow's import line."""

from kernelflow import task, workflow


@task
def say_hello() -> str:
    return "Hello, World!"


@workflow
def my_wf() -> str:
    greeting = say_hello()
    return greeting


if __name__ == "__main__":
    print(f"Running my_wf() {my_wf()}")
