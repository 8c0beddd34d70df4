"""Structured datasets: a table in, a column subset, Arrow out, and a dataclass."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import pandas as pd
import pyarrow as pa

from kernelflow import task, workflow
from kernelflow.types.file import FlyteFile
from kernelflow.types.structured import StructuredDataset, kwtypes

Prices = Annotated[StructuredDataset, kwtypes(price=float)]


@dataclass
class Summary:
    rows: int
    total: float
    source: FlyteFile | None = None


@task
def load(n: int) -> StructuredDataset:
    return pd.DataFrame({"item": [f"i{k}" for k in range(n)], "price": [k * 1.5 for k in range(n)]})


@task
def prices_only(table: Prices) -> list[str]:
    return list(table.open(pd.DataFrame).all().columns)


@task
def to_arrow(table: StructuredDataset) -> pa.Table:
    return table.open(pa.Table).all()


@task
def in_batches(table: Prices) -> int:
    return sum(len(batch) for batch in table.open(pd.DataFrame).iter(batch_size=2))


@task
def summarize(frame: pd.DataFrame) -> Summary:  # a StructuredDataset arrives as a DataFrame
    return Summary(rows=len(frame), total=float(frame["price"].sum()))


@workflow
def tables_wf(n: int = 5) -> Summary:
    return summarize(frame=load(n=n))
