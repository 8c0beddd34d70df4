"""Flyte's ``flytekitplugins.pandera``: ``pandera.typing.DataFrame[Schema]`` frames, validated.

Importing this module enables it, as in Flyte::

    import kernelflow.plugins.pandera  # noqa: F401  (flytekitplugins.pandera)
    import pandera.pandas as pa
    from pandera.typing import DataFrame, Series

    class Orders(pa.DataFrameModel):
        amount: Series[float] = pa.Field(ge=0)

    @task
    def clean(raw: pd.DataFrame) -> DataFrame[Orders]: ...

A frame declared ``DataFrame[Schema]`` is validated on its way into a task and
on its way out, lazily: every failed check of every column is listed, in an
error that names the task and the variable; the task fails and nothing
downstream runs. ``Annotated[DataFrame[Schema], ValidationConfig(on_error="warn")]``
turns a failure into a warning. A schema with ``coerce=True`` (on itself or
on a field) hands on the frame it coerced: the task receives it, and its
callers get it back, with the columns converted to their declared types.

The core never imports pandera: this module registers its check with
:mod:`kernelflow._core.validators`, which the type check consults.
"""

from __future__ import annotations

from typing import NoReturn

from kernelflow.exceptions.unsupported import refuse
from kernelflow.plugins.pandera.validation import ValidationConfig, enable

__all__ = ["ValidationConfig"]

enable()


def __getattr__(name: str) -> NoReturn:  # Flyte's transformer classes, its renderer
    refuse(__name__, name)
