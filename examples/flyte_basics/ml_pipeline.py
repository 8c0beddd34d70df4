"""Make a dataset, train a linear regression, evaluate its mean squared error.

The seed pipeline of kernelflow's quickstart, written with the Flyte-style SDK.
"""

from typing import NamedTuple

import numpy as np
import pandas as pd
from sklearn.linear_model import LinearRegression
from sklearn.metrics import mean_squared_error

from kernelflow import task, workflow


class Split(NamedTuple):
    train: pd.DataFrame
    test: pd.DataFrame


@task(cache=True, cache_version="1")
def make_dataset(n_rows: int, noise: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.uniform(-5, 5, size=(n_rows, 3))
    y = x @ np.array([1.5, -2.0, 0.5]) + 3.0 + rng.normal(0, noise, size=n_rows)
    return pd.DataFrame({"x1": x[:, 0], "x2": x[:, 1], "x3": x[:, 2], "y": y})


@task(cache=True)
def split(df: pd.DataFrame, test_fraction: float) -> Split:
    n_test = int(len(df) * test_fraction)
    return Split(train=df.iloc[n_test:], test=df.iloc[:n_test])


@task(cache=True)
def train(df: pd.DataFrame) -> LinearRegression:
    model = LinearRegression()
    model.fit(df[["x1", "x2", "x3"]], df["y"])
    return model


@task
def evaluate(model: LinearRegression, df: pd.DataFrame) -> float:
    predictions = model.predict(df[["x1", "x2", "x3"]])
    return float(mean_squared_error(df["y"], predictions))


@workflow
def ml_pipeline(
    n_rows: int = 1000, noise: float = 0.5, seed: int = 0, test_fraction: float = 0.2
) -> float:
    df = make_dataset(n_rows=n_rows, noise=noise, seed=seed)
    parts = split(df=df, test_fraction=test_fraction)
    model = train(df=parts.train)
    return evaluate(model=model, df=parts.test)


if __name__ == "__main__":
    print(f"mean squared error: {ml_pipeline():.4f}")
