"""A type of one's own: a matrix class with a Flyte ``TypeTransformer`` that writes it as text.

Written as a Flyte program, with its imports rewritten by the rule of README
"Flyte compatibility" (``flytekit`` -> ``kernelflow``) and nothing else.
``Matrix`` holds a lock and a scratch id, so pickle cannot store it and two
equal matrices would not pickle alike; its transformer writes only the numbers,
to a file in Flyte's "remote" area. Registered with ``TypeEngine``, it is what
the store keeps, what a cache hit reads back, and what cache keys hash.
"""

from __future__ import annotations

import threading
import uuid

from kernelflow import (
    Blob,
    BlobMetadata,
    BlobType,
    FlyteContext,
    Literal,
    LiteralType,
    Scalar,
    task,
    workflow,
)
from kernelflow.extend import TypeEngine, TypeTransformer

READS: list[str] = []  # what to_python_value read back, in this process
CALLS: list[str] = []  # which task bodies ran, in this process


class Matrix:
    """Rows of floats, with state that is no part of its value."""

    def __init__(self, rows: list[list[float]]) -> None:
        self.rows = [[float(x) for x in row] for row in rows]
        self._lock = threading.Lock()  # pickle refuses a lock
        self.scratch = uuid.uuid4().hex  # differs between equal matrices

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Matrix) and other.rows == self.rows

    def __repr__(self) -> str:
        return f"Matrix({self.rows})"


class MatrixTransformer(TypeTransformer[Matrix]):
    _TYPE = BlobType(format="matrix-text", dimensionality=BlobType.BlobDimensionality.SINGLE)

    def __init__(self) -> None:
        super().__init__(name="matrix-as-text", t=Matrix)

    def get_literal_type(self, t: type[Matrix]) -> LiteralType:
        return LiteralType(blob=self._TYPE)

    def to_literal(
        self,
        ctx: FlyteContext,
        python_val: Matrix,
        python_type: type[Matrix],
        expected: LiteralType,
    ) -> Literal:
        path = ctx.file_access.get_random_remote_path("matrix.txt")
        with open(path, "w") as file:
            for row in python_val.rows:
                file.write(" ".join(repr(x) for x in row) + "\n")
        return Literal(scalar=Scalar(blob=Blob(metadata=BlobMetadata(type=self._TYPE), uri=path)))

    def to_python_value(
        self, ctx: FlyteContext, lv: Literal, expected_python_type: type[Matrix]
    ) -> Matrix:
        with open(lv.scalar.blob.uri) as file:
            rows = [[float(x) for x in line.split()] for line in file if line.strip()]
        READS.append(lv.scalar.blob.uri)
        return Matrix(rows)


TypeEngine.register(MatrixTransformer())


@task(cache=True, cache_version="1")
def identity(n: int) -> Matrix:
    CALLS.append("identity")
    return Matrix([[1.0 if i == j else 0.0 for j in range(n)] for i in range(n)])


@task(cache=True, cache_version="1")
def trace(m: Matrix) -> float:
    CALLS.append("trace")
    return sum(m.rows[i][i] for i in range(len(m.rows)))


@task
def scale(m: Matrix, by: float) -> Matrix:
    return Matrix([[x * by for x in row] for row in m.rows])


@workflow
def trace_wf(n: int = 3, by: float = 2.0) -> float:
    return trace(m=scale(m=identity(n=n), by=by))


class Fragile:
    """A type whose transformer cannot write it."""

    def __init__(self, size: int) -> None:
        self.size = size


class FragileTransformer(TypeTransformer[Fragile]):
    def __init__(self) -> None:
        super().__init__(name="fragile", t=Fragile)

    def get_literal_type(self, t: type[Fragile]) -> LiteralType:
        return LiteralType(blob=BlobType(format="fragile"))

    def to_literal(
        self,
        ctx: FlyteContext,
        python_val: Fragile,
        python_type: type[Fragile],
        expected: LiteralType,
    ) -> Literal:
        raise ValueError(f"cannot write a Fragile of size {python_val.size}")

    def to_python_value(
        self, ctx: FlyteContext, lv: Literal, expected_python_type: type[Fragile]
    ) -> Fragile:
        raise AssertionError("never written, never read")


TypeEngine.register(FragileTransformer())


@task
def make_fragile(size: int) -> Fragile:
    CALLS.append("make_fragile")
    return Fragile(size)


@task
def size_of(f: Fragile) -> int:
    CALLS.append("size_of")
    return f.size


@workflow
def fragile_wf(size: int = 2) -> int:
    return size_of(f=make_fragile(size=size))


if __name__ == "__main__":
    print(f"trace: {trace_wf(n=4, by=3.0)}")
