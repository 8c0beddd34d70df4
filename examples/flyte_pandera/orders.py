"""Validated frames: a pandera schema on a task's output and on the next task's input.

Flyte's ``flytekitplugins.pandera`` example, imports rewritten by the rule of
README "Flyte compatibility"; importing the plugin is what turns validation on.
"""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from pandera.typing import DataFrame, Series

import kernelflow.plugins.pandera  # noqa: F401  (flytekitplugins.pandera)
from kernelflow import task, workflow

CALLS: list[str] = []


class Orders(pa.DataFrameModel):
    item: Series[str]
    quantity: Series[int] = pa.Field(ge=1)
    price: Series[float] = pa.Field(gt=0)


class Priced(Orders):
    total: Series[float]


@task
def load(quantities: list[int], prices: list[float]) -> DataFrame[Orders]:
    CALLS.append("load")
    return pd.DataFrame(
        {
            "item": [f"i{k}" for k in range(len(quantities))],
            "quantity": quantities,
            "price": prices,
        }
    )


@task
def add_totals(orders: DataFrame[Orders]) -> DataFrame[Priced]:
    CALLS.append("add_totals")
    return orders.assign(total=orders.quantity * orders.price)


@task
def revenue(priced: DataFrame[Priced]) -> float:
    CALLS.append("revenue")
    return float(priced.total.sum())


@workflow
def revenue_wf(quantities: list[int], prices: list[float]) -> float:
    return revenue(priced=add_totals(orders=load(quantities=quantities, prices=prices)))


@task
def raw_orders(quantities: list[int]) -> pd.DataFrame:
    """An unvalidated frame: checked where it enters a task that declares the schema."""
    CALLS.append("raw_orders")
    return pd.DataFrame({"item": ["a"] * len(quantities), "quantity": quantities})


@workflow
def raw_wf(quantities: list[int]) -> float:
    return revenue(priced=add_totals(orders=raw_orders(quantities=quantities)))


class Counts(pa.DataFrameModel):
    """A schema that coerces: a column of numbers written as text becomes integers."""

    count: Series[int] = pa.Field(ge=0, coerce=True)


@task
def read_counts(texts: list[str]) -> DataFrame[Counts]:
    """Returns the counts as text, the way a CSV reader without dtypes gives them."""
    CALLS.append("read_counts")
    return pd.DataFrame({"count": texts})


@task
def count_dtype(counts: DataFrame[Counts]) -> str:
    CALLS.append("count_dtype")
    return str(counts["count"].dtype)


@task
def doubled(counts: DataFrame[Counts]) -> int:
    """Arithmetic that only works on integers: "2" * 2 would be "22"."""
    return int((counts["count"] * 2).sum())


@workflow
def counts_wf(texts: list[str]) -> str:
    return count_dtype(counts=read_counts(texts=texts))
