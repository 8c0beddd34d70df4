"""Workflow files the tests write into a scratch directory and run as scripts."""

# A cached task whose outputs are files (larger than an inline ref), and an uncached
# one whose output is a file that only its run refers to.
SIZED = """
from kernelflow import task, workflow


@task(cache=True)
def fill(n: int) -> bytes:
    return bytes([n]) * 8192


@task
def tail(data: bytes, n: int) -> bytes:
    return data[:4096] + bytes([n + 1]) * 4096


@workflow
def sized(n: int = 1) -> bytes:
    return tail(data=fill(n=n), n=n)
"""
