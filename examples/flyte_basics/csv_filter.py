"""Read a CSV into a DataFrame, filter it, summarize it: Flyte's DataFrame basics."""

import pandas as pd

from kernelflow import task, workflow


@task
def read_csv(path: str) -> pd.DataFrame:
    return pd.read_csv(path)


@task
def filter_rows(df: pd.DataFrame, column: str, minimum: float) -> pd.DataFrame:
    return df[df[column] >= minimum].reset_index(drop=True)


@task
def mean_of(df: pd.DataFrame, column: str) -> float:
    return float(df[column].mean())


@workflow
def filter_wf(path: str, column: str = "value", minimum: float = 0.0) -> float:
    frame = read_csv(path=path)
    kept = filter_rows(df=frame, column=column, minimum=minimum)
    return mean_of(df=kept, column=column)
