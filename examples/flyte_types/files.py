"""Files and directories: a task counts the rows of a CSV; another writes a report."""

from __future__ import annotations

import os
import tempfile
import typing
from dataclasses import dataclass

from kernelflow import task, workflow
from kernelflow.types.directory import FlyteDirectory
from kernelflow.types.file import FlyteFile

CSVFile = FlyteFile[typing.TypeVar("csv")]

CALLS: list[str] = []  # which task bodies ran, in this process


@task(cache=True)
def count_rows(data: CSVFile) -> int:
    CALLS.append("count_rows")
    with data.open("r") as file:
        return sum(1 for line in file if line.strip())


@task(cache=True)
def write_report(rows: int) -> FlyteFile:
    folder = tempfile.mkdtemp()
    path = os.path.join(folder, "report.txt")
    with open(path, "w") as file:
        file.write(f"rows: {rows}\n")
    return path  # a plain path where a FlyteFile is declared


@workflow
def report_wf(data: CSVFile) -> FlyteFile:
    return write_report(rows=count_rows(data=data))


@task(cache=True)
def total_size(folder: FlyteDirectory) -> int:
    CALLS.append("total_size")
    return sum(os.path.getsize(os.path.join(base, name)) for base, name in folder.crawl())


@task
def make_folder(n: int) -> FlyteDirectory:
    folder = tempfile.mkdtemp()
    for i in range(n):
        with open(os.path.join(folder, f"part-{i}.txt"), "w") as file:
            file.write("x" * (i + 1))
    return FlyteDirectory(folder)


@dataclass
class Parts:
    first: FlyteFile
    count: int


@task(cache=True)
def split(n: int) -> tuple[list[FlyteFile], Parts]:
    folder = tempfile.mkdtemp()
    paths = []
    for i in range(n):
        path = os.path.join(folder, f"chunk-{i}.txt")
        with open(path, "w") as file:
            file.write(f"chunk {i}\n")
        paths.append(FlyteFile(path))
    return paths, Parts(first=paths[0], count=n)
