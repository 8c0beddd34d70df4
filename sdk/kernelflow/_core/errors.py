"""Every error kernelflow raises, in one place.

Each error carries its facts as fields (task, cell, variable, expected, actual, ...)
so that front ends can render them, and a message that ends with how to fix the
problem. Errors survive pickling, because they cross process boundaries when a
task fails in a worker.

The classes are grouped by what the user did wrong, which is also what the CLI
maps to exit codes: a :class:`DefinitionError` (a bad workflow, exit 2), a
:class:`ParameterError` (bad input to a run, exit 2), a :class:`TaskError`
(a task failed while running, exit 1), and a :class:`StoreError` (the store is
damaged or cannot be written, exit 1; but a :class:`ConfigurationError`, a store
or run database that cannot be used as configured at all, exit 2).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "KernelflowError",
    "DefinitionError",
    "SignatureError",
    "TypeMismatchError",
    "CycleError",
    "DuplicateProducerError",
    "NotebookErrors",
    "UndefinedNameError",
    "CellParseError",
    "TargetError",
    "ResourceError",
    "ParameterError",
    "ResumeError",
    "ConfigurationError",
    "TaskError",
    "TaskFailedError",
    "OutputTypeError",
    "TaskTimeoutError",
    "RecoverableError",
    "UnsupportedFeatureError",
    "StoreError",
    "IntegrityError",
    "UnhashableValueError",
    "TypeTransformerError",
    "SecretError",
    "KernelflowWarning",
]


class KernelflowError(Exception):
    """Root of every kernelflow error.

    Parameters
    ----------
    message:
        What went wrong, naming the task/cell/variable involved.
    fix:
        What the user should do about it; rendered after the message.
    **fields:
        The facts behind the message, kept as attributes (``err.task``,
        ``err.variable``, ...) for programs that handle the error.
    """

    def __init__(self, message: str, *, fix: str | None = None, **fields: Any) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix
        self.fields = fields
        for name, value in fields.items():
            setattr(self, name, value)

    def __str__(self) -> str:
        if self.fix:
            return f"{self.message}\n  Fix: {self.fix}"
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        # Subclasses have their own __init__ signatures; rebuild from the
        # rendered state instead of re-running them.
        return (_rebuild, (type(self), self.message, self.fix, self.fields))


def _rebuild(
    cls: type[KernelflowError], message: str, fix: str | None, fields: dict[str, Any]
) -> KernelflowError:
    error = cls.__new__(cls)
    KernelflowError.__init__(error, message, fix=fix, **fields)
    return error


# --- a bad workflow: refused before any task runs (CLI exit 2) -------------------


class DefinitionError(KernelflowError):
    """The workflow or a task is malformed; nothing has run."""


class SignatureError(DefinitionError, TypeError):
    """A task or workflow function lacks annotations or is called the wrong way.

    Also a :class:`TypeError`, because that is what Python raises for a bad call.
    """


class TypeMismatchError(DefinitionError, TypeError):
    """An output feeds an input of an incompatible declared type."""


class CycleError(DefinitionError):
    """The dependencies between tasks form a cycle."""


class NotebookErrors(DefinitionError):
    """Several mistakes in one notebook, reported together so they are fixed in one round.

    ``errors`` holds each one; the message numbers them, one paragraph each.
    """

    def __init__(self, errors: list[DefinitionError]) -> None:
        paragraphs = [f"{i}. {error}".replace("\n", "\n   ") for i, error in enumerate(errors, 1)]
        super().__init__(
            f"{len(errors)} problems in the notebook:\n" + "\n".join(paragraphs),
            errors=list(errors),
        )


class DuplicateProducerError(DefinitionError):
    """Two tasks bind the same name; every name must have one producer."""


class UndefinedNameError(DefinitionError):
    """A task reads a name that no parameter, task or setup cell defines."""


class CellParseError(DefinitionError):
    """A notebook cell cannot be parsed or has bad ``%%task`` options."""


class TargetError(DefinitionError):
    """A run target (``script.py:workflow``, a notebook path) cannot be loaded."""


# --- bad input to a run (CLI exit 2) ---------------------------------------------


class ResourceError(DefinitionError):
    """A task asks for more than this machine has; refused before the run starts."""


class ParameterError(KernelflowError, ValueError):
    """A workflow parameter is unknown, missing, unparsable or of the wrong type."""


class ResumeError(KernelflowError):
    """A run cannot be resumed (unknown id, finished already, or code changed)."""


# --- a task failed while running (CLI exit 1) ------------------------------------


class TaskError(KernelflowError):
    """A task failed; ``task`` names it, ``cause`` holds the user's exception."""


class TaskFailedError(TaskError):
    """The task's body raised an exception (after all its retries)."""


class OutputTypeError(TaskError, TypeError):
    """A task produced a value that does not match its declared output type."""


class TaskTimeoutError(TaskError, TimeoutError):
    """A task ran longer than its ``timeout``."""


class RecoverableError(KernelflowError):
    """Raise it in a task for a failure worth another attempt (a flaky service).

    Retries follow Flyte: a task's ``retries`` are spent on this error (Flyte's
    ``FlyteRecoverableException``) and on system failures (a worker that died, a
    timeout); any other exception a task raises fails it at once, because running
    the same code on the same inputs again would fail the same way.
    """

    def __init__(self, message: str = "", *, fix: str | None = None, **fields: Any) -> None:
        super().__init__(message, fix=fix, **fields)


class SignalTimeoutError(TaskError, TimeoutError):
    """A ``wait_for_input`` or ``approve`` node was given no value within its timeout."""


class SignalRejectedError(TaskError):
    """An ``approve`` node was rejected (``kernelflow approve RUN NAME --reject``)."""


# --- the store on disk ------------------------------------------------------------


class StoreError(KernelflowError):
    """The store (``$KERNELFLOW_HOME``) cannot be read or written."""


class ConfigurationError(StoreError):
    """A store or run database the configuration names cannot be used: unreachable,
    refused credentials, no such bucket or database, a missing driver, a bad key.

    Raised before anything is written, so it is bad input (CLI exit 2), not a
    failed run: the fix is in the environment, ``--store`` or the credentials.
    ``url`` is the location with its secrets masked, ``reason`` what went wrong.
    """


class IntegrityError(StoreError):
    """An artifact is truncated, corrupted or tampered with; it is never loaded."""


class UnhashableValueError(KernelflowError):
    """A value has no content hash, so the task using it cannot be cached."""


class TypeTransformerError(KernelflowError, TypeError):
    """A user type's registered transformer (Flyte's ``TypeTransformer``) raised.

    ``type_name`` names the type, ``transformer`` the transformer, ``method`` what
    it was asked (``to_literal``: serialize, ``to_python_value``: read back).
    """


class UnsupportedFeatureError(KernelflowError, ImportError):
    """A Flyte name kernelflow does not provide, at the path Flyte has it.

    An ``ImportError`` (not an ``AttributeError``, which ``from x import y`` would
    turn into a bare "cannot import name"), so the message reaches the user whole.
    """

    def __init__(self, feature: str, *, why: str = "") -> None:
        reason = f" ({why})" if why else ""
        super().__init__(
            f"kernelflow does not support {feature}{reason}; see README 'Flyte compatibility'",
            feature=feature,
        )


class SecretError(KernelflowError, KeyError):
    """A secret a task asked for is in no environment variable and no secrets file."""

    def __str__(self) -> str:  # KeyError would quote the message
        return KernelflowError.__str__(self)


class KernelflowWarning(UserWarning):
    """Something was skipped or repaired (a cache disabled, an artifact recomputed)."""
