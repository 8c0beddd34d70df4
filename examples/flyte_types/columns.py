"""A frame type of one's own for structured datasets: Flyte's encoder and decoder handlers.

Written as a Flyte program, imports rewritten by the rule. ``Columns`` (a dict
of equal-length lists) is not a DataFrame; a ``StructuredDatasetEncoder`` writes
it as Parquet files in a directory the context's ``file_access`` gives, and a
``StructuredDatasetDecoder`` reads such a directory back as ``Columns``.
"""

from __future__ import annotations

import os
from typing import Annotated

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from kernelflow import FlyteContext, StructuredDatasetType, task, workflow
from kernelflow.models import literals
from kernelflow.types.structured.structured_dataset import (
    PARQUET,
    StructuredDataset,
    StructuredDatasetDecoder,
    StructuredDatasetEncoder,
    StructuredDatasetTransformerEngine,
)


class Columns(dict):  # type: ignore[type-arg]
    """Column name -> list of values."""


class ColumnsToParquet(StructuredDatasetEncoder):
    def encode(
        self,
        ctx: FlyteContext,
        structured_dataset: StructuredDataset,
        structured_dataset_type: StructuredDatasetType,
    ) -> literals.StructuredDataset:
        folder = ctx.file_access.get_random_local_directory()
        pq.write_table(pa.table(dict(structured_dataset.dataframe)), os.path.join(folder, "part-0"))
        remote = ctx.file_access.get_random_remote_directory()
        ctx.file_access.upload_directory(folder, remote)
        return literals.StructuredDataset(
            uri=remote,
            metadata=literals.StructuredDatasetMetadata(StructuredDatasetType(format=PARQUET)),
        )


class ParquetToColumns(StructuredDatasetDecoder):
    def decode(
        self,
        ctx: FlyteContext,
        flyte_value: literals.StructuredDataset,
        current_task_metadata: literals.StructuredDatasetMetadata,
    ) -> Columns:
        local = ctx.file_access.get_random_local_directory()
        ctx.file_access.get_data(flyte_value.uri, local, is_multipart=True)
        return Columns(pq.read_table(local).to_pydict())


StructuredDatasetTransformerEngine.register(ColumnsToParquet(Columns, None, PARQUET))
StructuredDatasetTransformerEngine.register(ParquetToColumns(Columns, None, PARQUET))


@task
def measurements(n: int) -> Annotated[StructuredDataset, PARQUET]:
    return StructuredDataset(dataframe=Columns(x=list(range(n)), y=[v * v for v in range(n)]))


@task
def total_y(data: StructuredDataset) -> int:
    return sum(data.open(Columns).all()["y"])


@task
def as_frame(data: StructuredDataset) -> pd.DataFrame:
    return data.open(pd.DataFrame).all()


@workflow
def columns_wf(n: int = 4) -> tuple[int, pd.DataFrame]:
    data = measurements(n=n)
    return total_y(data=data), as_frame(data=data)
