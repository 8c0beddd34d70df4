"""One attempt of one task, in whatever process or thread runs it.

This is the only code that calls a task's body. It sets ``current_context()``,
checks the produced values against the declared output types, and turns a
failure into a picklable :class:`~kernelflow._core.errors.TaskFailedError` whose
traceback text starts in the user's code, not in the engine.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import shutil
import socket
import traceback
import types
from collections.abc import Mapping
from typing import Any

from kernelflow._core.adapt import adapt_all, keep
from kernelflow._core.errors import (
    KernelflowError,
    OutputTypeError,
    RecoverableError,
    StoreError,
    TaskFailedError,
)
from kernelflow._core.interface import check_value, type_name
from kernelflow._core.resources import requirements_of
from kernelflow._core.task import Task
from kernelflow._core.validators import is_validated, load_validators
from kernelflow.engine.compute import store_output
from kernelflow.engine.context import ExecutionContext, reset_context, set_context
from kernelflow.engine.decks import DeckCollector, render_outputs
from kernelflow.engine.stored import Stored, materialize_inputs

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def execute_task(task: Task, inputs: Mapping[str, Any], context: ExecutionContext) -> dict:
    """Run ``task`` on ``inputs`` once; return its outputs, checked, by name.

    The attempt's scratch directory (``working_directory``) goes when it ends.
    """
    try:
        outputs = _attempt(task, inputs, context)
    except BaseException:
        _remove_scratch(context.release_working_directory())
        raise
    return _outlive_scratch(task, context, outputs)


def execute_and_store(task: Task, inputs: Mapping[str, Any], context: ExecutionContext) -> dict:
    """:func:`execute_task`, then each output written to the store here, in the worker:
    what goes back is a :class:`~kernelflow.engine.stored.Stored` reference per output.

    An output that cannot be written here goes back as the value itself (the
    scheduling process tries, and warns if it cannot store it either).
    """
    check_worker_key(context)
    return store_outputs(task, execute_task(task, inputs, context), context)


def check_worker_key(context: ExecutionContext) -> None:
    """Refuse to run where the store's key is not the run's: this worker could not
    read the values it is given, and what it wrote could not be read back."""
    if context.key_id is None:
        return
    here = context.artifacts().key_id()
    if here == context.key_id:
        return
    raise TaskFailedError(
        f"task {context.node!r} cannot run in worker process {os.getpid()} on "
        f"{socket.gethostname()}: its store key is "
        f"{'missing' if here is None else 'not the one'} the run's values are signed with",
        task=context.node,
        error_type="ConfigurationError",
        fix="give every worker the environment of the machine that runs the workflow: the "
        "same $KERNELFLOW_STORE_KEY (and $KERNELFLOW_STORE, with its credentials); "
        "see 'What a second machine needs' in the README",
    )


def store_outputs(task: Task, outputs: Mapping[str, Any], context: ExecutionContext) -> dict:
    """Each output as a reference to where it was written; a value that could not be, as is."""
    artifacts = context.artifacts()
    stored: dict[str, Any] = {}
    for name, value in outputs.items():
        try:
            meta = store_output(artifacts, context.store_root, task, name, value)
        except TaskFailedError:  # its transformer raised: the task fails, as it would there
            raise
        except Exception:
            stored[name] = value
        else:
            stored[name] = Stored(meta)
    return stored


def _attempt(task: Task, inputs: Mapping[str, Any], context: ExecutionContext) -> dict:
    """Run ``task`` on ``inputs`` once; return its outputs, checked, by name."""
    load_validators(context.plugins)  # in a fresh worker: the plugins the run uses
    # Inputs that stayed in the store (kernelflow.engine.stored) are read here.
    inputs = materialize_inputs(inputs, context.artifacts, task.name)
    token = set_context(context)
    decks = _decks(task, context)
    try:
        with decks:
            # A path where a FlyteFile is declared becomes one (kernelflow._core.adapt).
            inputs = adapt_all(inputs, task.interface.inputs)
            check_inputs(task, inputs)
            outputs = adapt_all(task.run(inputs), task.interface.outputs)
            if isinstance(decks, DeckCollector):  # Annotated[T, TopFrameRenderer()] outputs
                render_outputs(task.interface.outputs, outputs)
    except StoreError as error:  # a checkpoint that could not be saved: the disk is full...
        raise _store_failed(task, context, error) from error
    except RecoverableError as error:  # the user asks for another attempt
        raise _task_failed(task, context, error, recoverable=True) from error
    except KernelflowError:
        raise
    except Exception as error:
        raise _task_failed(task, context, error) from error
    finally:
        reset_context(token)
    check_outputs(task, outputs)
    return outputs


def _outlive_scratch(task: Task, context: ExecutionContext, outputs: dict) -> dict:
    """The outputs, safe from the removal of the attempt's scratch directory, which goes.

    A task often writes a file there and returns it (Flyte's examples do): its
    files are copied into the store first, as they would be after the task, and
    the outputs name the copies. The directory stays when that fails, or when an
    output still names something in it (a file in a container the store does not
    walk), so that the outputs still hold.
    """
    scratch = context.release_working_directory()
    if scratch is None:
        return outputs
    declared = task.interface.outputs
    try:
        kept = {
            name: keep(value, declared.get(name), context.store_root)
            for name, value in outputs.items()
        }
    except Exception:  # a full disk...: the outputs stay where they are
        return outputs
    if not _names(kept, os.path.basename(scratch)):
        _remove_scratch(scratch)
    return kept


def _names(outputs: dict, directory_name: str) -> bool:
    """Whether ``outputs`` may name something in the directory (its unique name is in
    their pickle, as a path's text or part); unpicklable outputs may."""
    try:
        return directory_name.encode() in pickle.dumps(outputs)
    except Exception:
        return True


def _remove_scratch(path: str | None) -> None:
    if path is not None:
        shutil.rmtree(path, ignore_errors=True)


def _decks(task: Task, context: ExecutionContext) -> contextlib.AbstractContextManager[Any]:
    """What collects the attempt's deck pages; nothing for a task without a deck."""
    requirements = requirements_of(task)
    if requirements is None or not requirements.enable_deck:
        return contextlib.nullcontext()
    slot = context.node if context.item is None else f"{context.node}[{context.item}]"
    return DeckCollector(
        enabled=True, store_root=context.store_root, run_id=context.run_id, slot=slot
    )


def check_inputs(task: Task, inputs: Mapping[str, Any]) -> None:
    """Validate the inputs whose declared type a plugin validates (a pandera
    ``DataFrame[Schema]``): a frame that breaks its schema fails the task before it runs.

    Other inputs are not checked again: they were checked where they were produced.
    """
    for name, expected in task.interface.inputs.items():
        if name not in inputs or not is_validated(expected):
            continue
        problem = check_value(inputs[name], expected)
        if problem is not None:
            raise TaskFailedError(
                f"task {task.name!r} received {name!r} that does not validate: "
                f"expected {type_name(expected)}, got {problem}",
                task=task.name,
                variable=name,
                expected=type_name(expected),
                actual=problem,
                fix=f"pass {name!r} a value that conforms to {type_name(expected)}, or "
                "change the schema",
            )


def check_outputs(task: Task, outputs: Mapping[str, Any]) -> None:
    """Raise :class:`OutputTypeError` when a value does not match its declared type."""
    for name, expected in task.interface.outputs.items():
        if name not in outputs:
            raise OutputTypeError(
                f"task {task.name!r} did not produce its output {name!r}",
                task=task.name,
                variable=name,
                fix=f"make the task bind {name!r}",
            )
        problem = check_value(outputs[name], expected)
        if problem is not None:
            what = "that does not validate" if is_validated(expected) else "of the wrong type"
            raise OutputTypeError(
                f"task {task.name!r} produced {name!r} {what}: "
                f"expected {type_name(expected)}, got {problem}",
                task=task.name,
                variable=name,
                expected=type_name(expected),
                actual=problem,
                fix=f"return a {type_name(expected)} or change the declared type of {name!r}",
            )


def _store_failed(task: Task, context: ExecutionContext, error: StoreError) -> TaskFailedError:
    """A store write inside the task (a checkpoint) failed: a failure of this task, named."""
    return TaskFailedError(
        f"task {task.name!r} failed (attempt {context.attempt}): {error.message}",
        task=task.name,
        node=context.node,
        error_type=type(error).__name__,
        path=getattr(error, "path", None),
        recoverable=True,  # a system failure: another attempt may find room
        fix=error.fix or "free space in the store, or point $KERNELFLOW_HOME elsewhere",
    )


def _task_failed(
    task: Task, context: ExecutionContext, error: Exception, *, recoverable: bool = False
) -> TaskFailedError:
    """The user's exception as a picklable error; ``recoverable`` lets the loop retry it."""
    error.__traceback__ = user_traceback(error.__traceback__)
    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    return TaskFailedError(
        f"task {task.name!r} failed (attempt {context.attempt}): {type(error).__name__}: {error}",
        task=task.name,
        node=context.node,
        error_type=type(error).__name__,
        traceback=text,
        recoverable=recoverable,
        fix="fix the task and run again: the traceback starts at your line (shown in a "
        "notebook; `kernelflow run --debug` prints it); finished tasks are not lost: resume "
        "the run, or rely on the cache",
    )


def user_traceback(tb: types.TracebackType | None) -> types.TracebackType | None:
    """Drop the engine's leading frames so a traceback starts in the user's code."""
    while tb is not None and tb.tb_frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        tb = tb.tb_next
    return tb
