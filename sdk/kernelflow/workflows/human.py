"""Human in the loop (Flyte's gate nodes): ``sleep``, ``wait_for_input``, ``approve``.

Each call in a ``@workflow`` body adds an ordinary task node whose body waits:
``sleep`` for a duration, the other two for a signal that ``kernelflow signal RUN
NAME VALUE`` or ``kernelflow approve RUN NAME`` writes to the store
(:mod:`kernelflow.store.signals`). So the engine needs no gate of its own: while
the node waits, the run is ``running`` like any run with a long task. The node
records that it waits (``kernelflow runs`` lists it) and the engine tells
listeners with a ``task_waiting`` event, from the task's ``waiting_for``.

A value that does not come within the timeout fails the node, with the command
that would have given it.

The node waits for the signal of its resume chain (the first run's id): a run
that waited, died and was resumed under a new id takes a value sent to the old
id or the new one, before or after the resume. It records the type it expects
in a form another process can rebuild, so ``kernelflow signal`` refuses a value
of the wrong type when it is sent.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Literal

from kernelflow._core.errors import (
    DefinitionError,
    ParameterError,
    SignalRejectedError,
    SignalTimeoutError,
)
from kernelflow._core.interface import Interface, parse_parameter, type_name
from kernelflow._core.task import Task, TaskOptions
from kernelflow._core.type_spec import describe_type, rebuild_type
from kernelflow._core.typenames import short_repr
from kernelflow.engine.context import current_context
from kernelflow.engine.resume import finished_by
from kernelflow.store.home import Store, open_store
from kernelflow.workflows.workflow import Promise, add_call, current_builder

POLL_SECONDS = 0.1
GateKind = Literal["sleep", "wait_for_input", "approve"]


class GateTask(Task):
    """A node that waits: for a duration (``sleep``) or for a named signal."""

    def __init__(
        self,
        kind: GateKind,
        name: str,
        *,
        seconds: float,
        expected_type: Any = None,
        passthrough: Any = None,
    ) -> None:
        self.gate: GateKind = kind
        self.name = name
        self.signal = None if kind == "sleep" else name
        self.seconds = seconds
        self.expected_type = bool if kind == "approve" else expected_type
        self.options = TaskOptions()
        inputs = {} if passthrough is None else {"value": passthrough}
        if kind == "sleep":
            outputs, output_kind = {}, "none"
        else:
            outputs = {"o0": passthrough if kind == "approve" else expected_type}
            output_kind = "single"
        self.interface = Interface(inputs, outputs, {}, output_kind)  # type: ignore[arg-type]

    @property
    def waiting_for(self) -> str:
        """What the node waits for, as the ``task_waiting`` event says it."""
        if self.signal is None:
            return f"{self.seconds:g} s"
        return f"signal {self.signal!r} ({type_name(self.expected_type)})"

    @property
    def code_hash(self) -> str:
        text = f"{self.gate}:{self.name}:{type_name(self.expected_type)}:{self.seconds}"
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def run(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        if self.signal is None:
            time.sleep(self.seconds)
            return {}
        value = self._wait()
        if self.gate == "approve":
            if not value:
                raise SignalRejectedError(
                    f"approval {self.signal!r} was rejected",
                    task=self.name,
                    fix="run the workflow again; approve with `kernelflow approve RUN NAME`",
                )
            return {"o0": inputs["value"]}
        return {"o0": value}

    def _wait(self) -> Any:
        context = current_context()
        assert self.signal is not None
        opened = open_store(context.store_root)  # signals are where its run history is
        store = opened.signals
        root = opened.runs.chain_root(context.run_id)
        deadline = time.time() + self.seconds
        store.start_wait(
            context.run_id,
            self.signal,
            node=context.node,
            type_name=type_name(self.expected_type),
            deadline=deadline,
            root=root,
            spec=describe_type(self.expected_type),
        )
        while True:
            text = store.value(root, self.signal)
            if text is not None:
                try:
                    value = parse_parameter(self.signal, text, self.expected_type)
                except ParameterError:
                    store.end_wait(context.run_id, self.signal, "failed")
                    raise
                store.end_wait(context.run_id, self.signal, "received")
                return value
            if time.time() >= deadline:
                store.end_wait(context.run_id, self.signal, "timed_out")
                verb = "approve" if self.gate == "approve" else "signal"
                raise SignalTimeoutError(
                    f"{self.gate} {self.signal!r} got no value within {self.seconds:g} s",
                    task=self.name,
                    fix=f"send it in time: kernelflow {verb} {context.run_id} {self.signal}"
                    + ("" if self.gate == "approve" else " VALUE")
                    + ", or give a longer timeout",
                )
            time.sleep(POLL_SECONDS)


def send_signal(store: Store, run_id: str, name: str, value: str) -> str:
    """Store ``value`` (text) for signal ``name`` of run ``run_id``'s resume chain.

    Refused, with nothing stored: an unknown run; a run that is finished (it, or a
    run that resumed it, succeeded); a value that does not parse as the type the
    waiting node recorded. A run that died, failed or was interrupted takes the
    signal: its waiting node finds it when ``--resume`` runs it again. Returns the
    run's status, for the sender to say what happens next.
    """
    run = store.runs.get_run(run_id)
    if run is None:
        raise ParameterError(
            f"no run {run_id!r} in the store {store.home}",
            parameter="run_id",
            actual=run_id,
            fix="`kernelflow runs` lists the runs; check $KERNELFLOW_HOME",
        )
    _refuse_finished(store, run_id, str(run["status"]), name)
    root = store.runs.chain_root(run_id)
    signals = store.signals
    _check_value(signals.expected(root, name), run_id, name, value)
    signals.send(root, name, value)
    return str(run["status"])


def _refuse_finished(store: Store, run_id: str, status: str, name: str) -> None:
    finisher = run_id if status == "succeeded" else finished_by(store, run_id)
    if finisher is None:
        return
    how = "succeeded" if finisher == run_id else f"was resumed by run {finisher}, which succeeded"
    raise ParameterError(
        f"run {run_id!r} {how}: nothing waits for {name!r} any more",
        parameter="run_id",
        actual=run_id,
        fix="signal a run that is running or can be resumed (`kernelflow runs` shows "
        "the waiting ones)",
    )


def _check_value(
    expected: tuple[str, str | None] | None, run_id: str, name: str, text: str
) -> None:
    """Parse ``text`` as the waiting node will; a value it would refuse is refused now."""
    tp = rebuild_type(expected[1]) if expected is not None else None
    if expected is None or tp is None:
        return  # no node waited yet, or its type has no description: the node checks
    try:
        parse_parameter(name, text, tp)
    except ParameterError as error:
        problem = f" ({error.problem})" if getattr(error, "problem", None) else ""
        command = (
            f"kernelflow approve {run_id} {name} [--reject]"
            if tp is bool
            else f"kernelflow signal {run_id} {name} VALUE"
        )
        raise ParameterError(
            f"run {run_id!r} waits for signal {name!r} as {expected[0]}, "
            f"got {short_repr(text)}{problem}; nothing was sent",
            fix=f"send a value that reads as {expected[0]}: {command}",
            parameter=name,
            expected=expected[0],
            actual=text,
            run_id=run_id,
        ) from error


def sleep(duration: timedelta) -> Any:
    """A node that waits ``duration`` before the nodes chained after it run."""
    return _add(GateTask("sleep", "sleep", seconds=_seconds(duration, "sleep")), {})


def wait_for_input(name: str, timeout: timedelta, expected_type: Any) -> Any:
    """A node whose output is the value sent with ``kernelflow signal RUN_ID NAME VALUE``.

    VALUE is parsed as ``expected_type`` (as ``-p`` values are); none within
    ``timeout`` fails the node.
    """
    task = GateTask(
        "wait_for_input", name, seconds=_seconds(timeout, name), expected_type=expected_type
    )
    return _add(task, {})


def approve(upstream_item: Any, name: str, timeout: timedelta) -> Any:
    """``upstream_item``, passed on once ``kernelflow approve RUN_ID NAME`` approves it."""
    if not isinstance(upstream_item, Promise):
        raise DefinitionError(
            f"approve({name!r}) needs the output of a task, got {type(upstream_item).__name__}",
            fix="pass a task's output: approve(my_task(...), name, timeout)",
        )
    task = GateTask(
        "approve", name, seconds=_seconds(timeout, name), passthrough=upstream_item.type
    )
    return _add(task, {"value": upstream_item})


def _add(task: GateTask, kwargs: Mapping[str, Any]) -> Any:
    builder = current_builder()
    if builder is None:
        raise DefinitionError(
            f"{task.gate}() was called outside a @workflow",
            fix=f"call {task.gate}(...) in a workflow body; it adds a node that waits",
        )
    return add_call(builder, task, kwargs)


def _seconds(duration: timedelta | float, name: str) -> float:
    seconds = duration.total_seconds() if isinstance(duration, timedelta) else float(duration)
    if seconds < 0:
        raise DefinitionError(f"the duration of {name!r} is negative: {duration!r}")
    return seconds
