"""A pydantic model with a file and a dataset in it, passed between tasks."""

from __future__ import annotations

import os
import tempfile

import pandas as pd
from pydantic import BaseModel

from kernelflow import task, workflow
from kernelflow.types.file import FlyteFile
from kernelflow.types.structured import StructuredDataset

CALLS: list[str] = []


class Bundle(BaseModel):
    notes: FlyteFile
    table: StructuredDataset
    label: str


@task(cache=True)
def bundle(text: str) -> Bundle:
    CALLS.append("bundle")
    path = os.path.join(tempfile.mkdtemp(), "notes.txt")
    with open(path, "w") as file:
        file.write(text)
    frame = pd.DataFrame({"word": text.split()})
    return Bundle(notes=path, table=StructuredDataset(dataframe=frame), label="b")  # a plain path


@task(cache=True)
def words(b: Bundle) -> int:
    CALLS.append("words")
    with open(b.notes) as file:
        return len(file.read().split()) + len(b.table.open(pd.DataFrame).all())


@workflow
def bundle_wf(text: str) -> int:
    return words(b=bundle(text=text))
