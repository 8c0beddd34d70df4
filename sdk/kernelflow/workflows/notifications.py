"""Flyte's launch-plan notifications (``Email``, ``Slack``, ``PagerDuty``), accepted and kept.

A notification needs Flyte's admin service to send it; locally nothing is sent.
The objects are accepted where Flyte takes them (``LaunchPlan(notifications=...)``)
so a Flyte program runs, and they keep what was asked for (phases, recipients),
which a plan can show; README "Flyte compatibility" says so.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass


class WorkflowExecutionPhase(enum.IntEnum):
    """The phases of a run Flyte can notify about (its names and numbers)."""

    UNDEFINED = 0
    QUEUED = 1
    RUNNING = 2
    SUCCEEDING = 3
    SUCCEEDED = 4
    FAILING = 5
    FAILED = 6
    ABORTED = 7
    TIMED_OUT = 8
    ABORTING = 9


@dataclass(frozen=True)
class Notification:
    """Who would be told, and when; locally a record only."""

    phases: Sequence[WorkflowExecutionPhase]
    recipients_email: Sequence[str]

    @property
    def channel(self) -> str:
        return type(self).__name__.lower()


class Email(Notification):
    """Flyte's ``Email`` notification."""


class Slack(Notification):
    """Flyte's ``Slack`` notification."""


class PagerDuty(Notification):
    """Flyte's ``PagerDuty`` notification."""


__all__ = ["Email", "Notification", "PagerDuty", "Slack", "WorkflowExecutionPhase"]
