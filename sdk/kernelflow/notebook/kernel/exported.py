"""What an exported notebook calls when papermill runs it (``kernelflow.notebook.exported``).

Its second cell runs :func:`start_exported_run` right after papermill's
injected parameters: every parameter is checked against its declared type
before any task runs, and the task cells that follow are recorded as one run of
the workflow's exported version.
"""

from __future__ import annotations

import builtins
import typing
from collections.abc import Mapping, MutableMapping, Sequence
from typing import Any

from kernelflow._core.errors import ParameterError
from kernelflow._core.interface import check_value, type_name


def start_exported_run(
    workflow: str,
    version: str,
    declared: Mapping[str, str],
    tasks: Sequence[str],
    namespace: MutableMapping[str, Any],
) -> None:
    """Check the parameters in ``namespace``; open the run the task cells will join."""
    params = check_parameters(workflow, declared, namespace)
    from IPython import get_ipython

    from kernelflow.notebook.kernel.session import session_of

    session = session_of(get_ipython())
    session.begin_exported_run(workflow, version, params, tasks)


def check_parameters(
    workflow: str, declared: Mapping[str, str], namespace: MutableMapping[str, Any]
) -> dict[str, Any]:
    """Each declared parameter's value, checked (an int given for a float becomes a float)."""
    types: dict[str, Any] = {n: getattr(typing, n) for n in typing.__all__}
    types.update(vars(builtins))
    values = {}
    for name, text in declared.items():
        if name not in namespace:
            raise ParameterError(
                f"parameter {name!r} of {workflow!r} is not set",
                parameter=name,
                fix=f"pass -p {name} VALUE",
            )
        try:
            expected = eval(text, dict(types))  # a type the workflow's author declared
        except Exception:
            expected = Any  # a type from the notebook's own imports: checked by the tasks
        value = namespace[name]
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = namespace[name] = float(value)
        problem = check_value(value, expected)
        if problem is not None:
            raise ParameterError(
                f"parameter {name!r} of workflow {workflow!r} expects {type_name(expected)}, "
                f"got {problem}",
                parameter=name,
                expected=type_name(expected),
                actual=problem,
                fix=f"pass a value of type {type_name(expected)}: papermill ... -p {name} VALUE",
            )
        values[name] = value
    return values
