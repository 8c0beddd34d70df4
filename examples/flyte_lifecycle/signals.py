"""Human in the loop: a workflow that waits for a number and for an approval."""

from __future__ import annotations

import os
from datetime import timedelta

from kernelflow import approve, sleep, task, wait_for_input, workflow

# Short in the tests, through the environment; a person would get an hour.
TIMEOUT = timedelta(seconds=float(os.environ.get("SIGNALS_TIMEOUT", "3600")))


@task
def propose(base: int) -> int:
    return base * 10


@task
def combine(proposal: int, extra: int) -> int:
    return proposal + extra


@workflow
def review(base: int = 1) -> int:
    extra = wait_for_input("extra", timeout=TIMEOUT, expected_type=int)
    approved = approve(propose(base=base), "proposal-ok", timeout=TIMEOUT)
    return combine(proposal=approved, extra=extra)


@task
def done() -> str:
    return "done"


@workflow
def nap() -> str:
    sleep(timedelta(seconds=0.2))
    return done()
