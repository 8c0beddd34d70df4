"""The check of a ``pandera.typing.DataFrame[Schema]`` value, registered with the core."""

from __future__ import annotations

import dataclasses
import sys
import warnings
from typing import Annotated, Any, Literal, get_args, get_origin

from kernelflow._core.errors import KernelflowWarning
from kernelflow._core.validators import register_validator

try:
    import pandera.errors
    import pandera.typing
except ImportError as error:  # the optional extra is not installed
    raise ImportError(
        "kernelflow.plugins.pandera needs pandera, an optional extra: "
        "pip install 'kernelflow[pandera]'"
    ) from error

__all__ = ["ValidationConfig", "coerced", "enable", "problems"]

_CASES_SHOWN = 5  # failure cases listed per failed check


@dataclasses.dataclass(frozen=True)
class ValidationConfig:
    """What a failed validation does (Flyte's ``ValidationConfig``).

    ``Annotated[DataFrame[Schema], ValidationConfig(on_error="warn")]``: ``"raise"``
    (the default) fails the task; ``"warn"`` warns and lets the frame through.
    """

    on_error: Literal["raise", "warn"] = "raise"

    def __post_init__(self) -> None:
        if self.on_error not in ("raise", "warn"):
            raise ValueError(f"on_error must be 'raise' or 'warn', got {self.on_error!r}")


def enable() -> None:
    """Validate ``pandera.typing.DataFrame[...]`` values from now on (done at import)."""
    register_validator(pandera.typing.DataFrame, problems, coercer=coerced)


def _schema_and_config(declared: Any) -> tuple[Any, ValidationConfig]:
    """The schema of ``DataFrame[Schema]`` (None if bare) and the ValidationConfig beside it."""
    config = ValidationConfig()
    if get_origin(declared) is Annotated:
        found = [meta for meta in declared.__metadata__ if isinstance(meta, ValidationConfig)]
        config = found[0] if found else config
        declared = declared.__origin__
    args = get_args(declared)
    return (args[0] if args else None), config


def coerced(value: Any, declared: Any) -> Any:
    """The frame a coercing schema makes of ``value`` (``"1"`` becomes ``1``); else ``value``.

    Only schemas that coerce (``coerce=True`` on the schema or on a field) are
    run here, so the others are validated once, by :func:`problems`. A frame the
    schema rejects is returned as it is: :func:`problems` then names what is wrong.
    """
    schema, _ = _schema_and_config(declared)
    pandas = sys.modules.get("pandas")
    if schema is None or pandas is None or not isinstance(value, pandas.DataFrame):
        return value
    if not _coerces(schema):
        return value
    try:
        return schema.validate(value, lazy=True)
    except (pandera.errors.SchemaErrors, pandera.errors.SchemaError):
        return value


_COERCES: dict[int, tuple[Any, bool]] = {}


def _coerces(schema: Any) -> bool:
    """Whether the schema (a DataFrameModel or a DataFrameSchema) changes what it validates."""
    entry = _COERCES.get(id(schema))
    if entry is not None and entry[0] is schema:
        return entry[1]
    built = schema.to_schema() if hasattr(schema, "to_schema") else schema
    columns = getattr(built, "columns", {}) or {}
    answer = bool(getattr(built, "coerce", False)) or any(
        getattr(column, "coerce", False) for column in columns.values()
    )
    _COERCES[id(schema)] = (schema, answer)
    return answer


def problems(value: Any, declared: Any) -> list[str]:
    """What is wrong with ``value`` as a ``DataFrame[Schema]``, one entry per column."""
    schema, config = _schema_and_config(declared)
    if schema is None:
        return []
    pandas = sys.modules.get("pandas")
    if pandas is None or not isinstance(value, pandas.DataFrame):
        return ["not a pandas DataFrame"]
    try:
        schema.validate(value, lazy=True)
        return []
    except pandera.errors.SchemaErrors as errors:
        found = _by_column(errors.failure_cases)
    except pandera.errors.SchemaError as error:
        found = [str(error)]
    name = getattr(schema, "__name__", None) or getattr(schema, "name", None) or "schema"
    found = [f"schema {name} is not met: {found[0]}", *found[1:]]
    if config.on_error == "warn":
        warnings.warn("; ".join(found), KernelflowWarning, stacklevel=2)
        return []
    return found


def _by_column(cases: Any) -> list[str]:
    """Pandera's failure cases, one entry per column: its failed checks and their cases,
    e.g. ``column 'x': greater_than_or_equal_to(0) failed for -1 (row 0), -3 (row 2)``."""
    columns: dict[str, dict[str, list[str]]] = {}
    for row in cases.itertuples(index=False):
        column, check = getattr(row, "column", None), str(getattr(row, "check", ""))
        case, index = getattr(row, "failure_case", None), getattr(row, "index", None)
        if check == "column_in_dataframe":
            columns.setdefault(f"column {case!r}", {}).setdefault("is missing", [])
            continue
        where = f"column {column!r}" if _present(column) else "the frame"
        failed = columns.setdefault(where, {}).setdefault(f"{check} failed", [])
        if _present(case):
            failed.append(f"{case!r} (row {index})" if _present(index) else repr(case))
    lines = []
    for where, checks in columns.items():
        parts = []
        for what, found in checks.items():
            shown = ", ".join(found[:_CASES_SHOWN])
            more = f" and {len(found) - _CASES_SHOWN} more" if len(found) > _CASES_SHOWN else ""
            parts.append(f"{what} for {shown}{more}" if found else what)
        missing = parts == ["is missing"]
        lines.append(f"{where} is missing" if missing else f"{where}: {', and '.join(parts)}")
    return lines


def _present(value: Any) -> bool:
    if value is None:
        return False
    try:
        return value == value  # NaN is absent
    except Exception:
        return True
