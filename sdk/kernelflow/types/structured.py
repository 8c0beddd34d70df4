"""``StructuredDataset``: a table in Parquet, opened as a pandas DataFrame or an Arrow table.

``Annotated[StructuredDataset, kwtypes(a=int, b=str)]`` declares the columns a
task uses: it sees only those when it opens the dataset. A task declared
``-> StructuredDataset`` may return a DataFrame or an Arrow table, and a task
declared ``(df: pd.DataFrame)`` may receive a StructuredDataset. Underneath the
table is Parquet: that is how it is pickled into the store, and a ``uri`` (a
local path or any fsspec URL to a Parquet file) is read only when opened.
pandas and pyarrow are imported when a dataset is used, not before.
"""

from __future__ import annotations

import collections
import io
import sys
from collections.abc import Iterator
from typing import Annotated, Any, get_args, get_origin

from kernelflow._core.hashing import content_hash
from kernelflow._core.typecheck import unwrap
from kernelflow.types._paths import fsspec_for, is_url, local_of
from kernelflow.types._pydantic import instance_schema

__all__ = ["PARQUET", "StructuredDataset", "kwtypes"]

PARQUET = "parquet"


def kwtypes(**columns: type) -> collections.OrderedDict[str, type]:
    """The columns (name -> type) of ``Annotated[StructuredDataset, kwtypes(...)]``."""
    return collections.OrderedDict(columns)


def declared_columns(declared: object) -> list[str] | None:
    """The column subset an annotation names, or None for all columns."""
    if get_origin(declared) is not Annotated:
        return None
    for meta in get_args(declared)[1:]:
        if isinstance(meta, dict) and meta:
            return list(meta)
    return None


def _is_pandas(value: object) -> bool:
    return "pandas" in sys.modules and isinstance(value, sys.modules["pandas"].DataFrame)


def _is_arrow(value: object) -> bool:
    return "pyarrow" in sys.modules and isinstance(value, sys.modules["pyarrow"].Table)


class StructuredDataset:
    """A table: a DataFrame or Arrow table in memory, or Parquet at ``uri``."""

    __get_pydantic_core_schema__ = classmethod(instance_schema)  # a pydantic model field

    def __init__(
        self,
        dataframe: Any = None,
        uri: str | None = None,
        metadata: Any = None,
        file_format: str = PARQUET,
    ) -> None:
        if dataframe is None and uri is None:
            raise ValueError("a StructuredDataset needs a dataframe or a uri")
        self.dataframe = dataframe
        self.uri = uri if uri is None or is_url(uri) else local_of(uri)
        self.metadata = metadata
        self.file_format = file_format
        self.columns: list[str] | None = None
        self._open_as: Any = None

    # -- Flyte's surface --

    def open(self, dataframe_type: Any) -> StructuredDataset:
        """Say what :meth:`all` and :meth:`iter` return: ``pd.DataFrame`` or ``pa.Table``."""
        self._open_as = dataframe_type
        return self

    def all(self) -> Any:
        """The whole table, as the type given to :meth:`open` (a DataFrame by default)."""
        return self._convert(self._arrow())

    def iter(self, batch_size: int = 65536) -> Iterator[Any]:
        """The table in batches of rows, each as the type given to :meth:`open`."""
        import pyarrow as pa

        for batch in self._arrow().to_batches(max_chunksize=batch_size):
            yield self._convert(pa.Table.from_batches([batch]))

    def __repr__(self) -> str:
        where = f"uri={self.uri!r}" if self.dataframe is None else "in memory"
        return f"StructuredDataset({where}, columns={self.columns})"

    # -- reading and converting --

    def _arrow(self) -> Any:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self.dataframe is None:
            if is_url(self.uri or ""):
                fs, path = fsspec_for(self.uri or "")
                with fs.open(path, "rb") as file:
                    table = pq.read_table(file, columns=self.columns)
            else:
                table = pq.read_table(self.uri, columns=self.columns)
        elif _is_arrow(self.dataframe):
            table = self.dataframe
        else:
            table = pa.Table.from_pandas(self.dataframe, preserve_index=False)
        if self.columns is not None:
            table = table.select(self.columns)
        return table

    def _convert(self, table: Any) -> Any:
        import pyarrow as pa

        if self._open_as is pa.Table:
            return table
        return table.to_pandas()

    def _parquet(self) -> bytes:
        import pyarrow.parquet as pq

        buffer = io.BytesIO()
        pq.write_table(self._arrow(), buffer)
        return buffer.getvalue()

    # -- the protocol of kernelflow._core.adapt --

    @classmethod
    def __kernelflow_accepts__(cls, value: object) -> bool:
        return isinstance(value, StructuredDataset) or _is_pandas(value) or _is_arrow(value)

    @classmethod
    def __kernelflow_adapt__(cls, value: object, declared: object) -> object:
        if _is_pandas(value) or _is_arrow(value):
            value = StructuredDataset(dataframe=value)
        if not isinstance(value, StructuredDataset):
            return value
        columns = declared_columns(declared)
        if columns is None or columns == value.columns:
            return value
        subset = StructuredDataset.__new__(StructuredDataset)
        subset.__dict__.update(value.__dict__)
        subset.columns = columns
        return subset

    def __kernelflow_convert_to__(self, declared: object) -> object:
        """A DataFrame or an Arrow table where one of those is declared."""
        target = unwrap(declared)
        module = getattr(target, "__module__", "") or ""
        if module.startswith("pandas"):
            return self.open(target).all()
        if module.startswith("pyarrow"):
            import pyarrow as pa

            return self.open(pa.Table).all()
        return self

    def __kernelflow_hash__(self) -> str:
        return content_hash(self._arrow().to_pandas())

    # -- Parquet underneath --

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_open_as"] = None
        if self.dataframe is not None:
            state["kind"] = "arrow" if _is_arrow(self.dataframe) else "pandas"
            state["dataframe"] = self._parquet()
            state["columns"] = None  # already applied
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        kind = state.pop("kind", None)
        self.__dict__.update(state)
        if kind is not None:
            import pyarrow.parquet as pq

            table = pq.read_table(io.BytesIO(state["dataframe"]))
            self.dataframe = table if kind == "arrow" else table.to_pandas()
