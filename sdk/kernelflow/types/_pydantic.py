"""Flyte's types as fields of pydantic models (``flytekit`` supports ``BaseModel`` with
``FlyteFile``, ``FlyteDirectory`` and ``StructuredDataset`` fields). pydantic is
imported only when a model with such a field is defined."""

from __future__ import annotations

from typing import Any


class PydanticField:
    """Makes a type usable as a field of a pydantic model (Flyte's ``BaseModel`` with
    ``FlyteFile``, ``FlyteDirectory`` and ``StructuredDataset`` fields): the field takes
    what the type's adapter takes (a path for a file), as a task input does."""

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
        from pydantic_core import core_schema

        def validate(value: object) -> object:
            if not cls.__kernelflow_accepts__(value):  # type: ignore[attr-defined]
                raise ValueError(f"expected a {cls.__name__}, got {type(value).__name__}")
            return cls.__kernelflow_adapt__(value, cls)  # type: ignore[attr-defined]

        return core_schema.no_info_plain_validator_function(validate)
