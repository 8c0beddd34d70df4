"""``StructuredDataset``: a table in Parquet, opened as a pandas DataFrame or an Arrow table.

``Annotated[StructuredDataset, kwtypes(a=int, b=str)]`` declares the columns a
task uses: it sees only those when it opens the dataset. A task declared
``-> StructuredDataset`` may return a DataFrame or an Arrow table, and a task
declared ``(df: pd.DataFrame)`` may receive a StructuredDataset. Underneath the
table is Parquet: that is how it is pickled into the store, and a ``uri`` (a
local path or any fsspec URL to a Parquet file, or a local directory of them)
is read only when opened. pandas and pyarrow are imported when a dataset is
used, not before.

Flyte's extension points are here too: a ``StructuredDatasetEncoder`` registered
for another frame type (``np.ndarray``) with
``StructuredDatasetTransformerEngine.register`` turns such a frame into Parquet
(``StructuredDataset(dataframe=array)`` is stored through it), and a decoder
gives ``.open(np.ndarray).all()``. They are called as Flyte calls them, with a
local ``FlyteContext`` (:mod:`kernelflow.core.context_manager`) and the literal
models of :mod:`kernelflow.models.literals`. The storage protocol and format of
a handler are recorded, not used: locally one handler serves a type.
"""

from __future__ import annotations

import collections
import io
import sys
from collections.abc import Iterator
from typing import Annotated, Any, get_args, get_origin

from kernelflow._core.hashing import content_hash
from kernelflow._core.typecheck import unwrap
from kernelflow.exceptions.unsupported import refuse, refuse_attribute
from kernelflow.types._paths import fsspec_for, is_url, local_of
from kernelflow.types._pydantic import PydanticField

__all__ = [
    "CSV",
    "PARQUET",
    "StructuredDataset",
    "StructuredDatasetDecoder",
    "StructuredDatasetEncoder",
    "StructuredDatasetTransformerEngine",
    "kwtypes",
]

PARQUET = "parquet"
CSV = "csv"
GENERIC_FORMAT = ""


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


class StructuredDataset(PydanticField):
    """A table: a DataFrame or Arrow table in memory, or Parquet at ``uri``."""

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

        encoder = _ENCODERS.get(type(self.dataframe)) if self.dataframe is not None else None
        if encoder is not None:  # a frame type of the program's own (np.ndarray)
            table = _read_table(_encode(encoder, self).uri, None)
        elif self.dataframe is None:
            table = _read_table(self.uri or "", self.columns)
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
        decoder = _DECODERS.get(self._open_as)
        if decoder is not None:
            return _decode(decoder, table)
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


def _read_table(uri: str, columns: list[str] | None) -> Any:
    """The Parquet file (or local directory of files) at ``uri``."""
    import pyarrow.parquet as pq

    if is_url(uri):
        fs, path = fsspec_for(uri)
        with fs.open(path, "rb") as file:
            return pq.read_table(file, columns=columns)
    return pq.read_table(local_of(uri), columns=columns)


# --- Flyte's encoders and decoders -------------------------------------------------------


class _Handler:
    """What encoders and decoders share: the frame type, the protocol and the format."""

    def __init__(
        self, python_type: type, protocol: str | None = None, supported_format: str | None = None
    ) -> None:
        self._python_type = python_type
        self._protocol = protocol
        self._supported_format = supported_format or GENERIC_FORMAT

    @property
    def python_type(self) -> type:
        return self._python_type

    @property
    def protocol(self) -> str | None:
        return self._protocol

    @property
    def supported_format(self) -> str:
        return self._supported_format


class StructuredDatasetEncoder(_Handler):
    """Turns a frame of ``python_type`` into Parquet at a uri (Flyte's encoder base class)."""

    def encode(
        self, ctx: Any, structured_dataset: StructuredDataset, structured_dataset_type: Any
    ) -> Any:
        raise NotImplementedError(f"{type(self).__name__} has no encode")


class StructuredDatasetDecoder(_Handler):
    """Reads Parquet at a uri as a frame of ``python_type`` (Flyte's decoder base class)."""

    def decode(self, ctx: Any, flyte_value: Any, current_task_metadata: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} has no decode")


_ENCODERS: dict[type, StructuredDatasetEncoder] = {}
_DECODERS: dict[type, StructuredDatasetDecoder] = {}
_RENDERERS: dict[type, Any] = {}
_ENGINE_NAMES = frozenset(["get_decoder", "get_encoder", "iter_as", "open_as", "to_html"])


class _EngineClass(type):
    def __getattr__(cls, name: str) -> Any:
        owner = "kernelflow.types.structured.structured_dataset.StructuredDatasetTransformerEngine"
        return refuse_attribute(owner, name, _ENGINE_NAMES)


class StructuredDatasetTransformerEngine(metaclass=_EngineClass):
    """Flyte's registry of dataset handlers: ``register(handler)``, ``register_renderer``."""

    @classmethod
    def register(
        cls, h: _Handler, default_for_type: bool = False, override: bool = False, **_: Any
    ) -> None:
        if isinstance(h, StructuredDatasetEncoder):
            _ENCODERS[h.python_type] = h
        elif isinstance(h, StructuredDatasetDecoder):
            _DECODERS[h.python_type] = h
        else:
            raise TypeError(f"a StructuredDatasetEncoder or Decoder, got {type(h).__name__}")

    @classmethod
    def register_renderer(cls, python_type: type, renderer: Any) -> None:
        """Kept: Flyte shows a dataset of that type in a deck with it."""
        _RENDERERS[python_type] = renderer


def _metadata(file_format: str) -> Any:
    from kernelflow.models.literals import StructuredDatasetMetadata
    from kernelflow.models.types import StructuredDatasetType

    return StructuredDatasetMetadata(
        structured_dataset_type=StructuredDatasetType(format=file_format)
    )


def _encode(encoder: StructuredDatasetEncoder, dataset: StructuredDataset) -> Any:
    from kernelflow.core.context_manager import FlyteContextManager

    ctx = FlyteContextManager.current_context()
    sd_type = _metadata(encoder.supported_format or PARQUET).structured_dataset_type
    return encoder.encode(ctx, dataset, sd_type)


def _decode(decoder: StructuredDatasetDecoder, table: Any) -> Any:
    """The table written as Parquet to a "remote" directory, read by the decoder."""
    import os

    import pyarrow.parquet as pq

    from kernelflow.core.context_manager import FlyteContextManager
    from kernelflow.models.literals import StructuredDataset as DatasetLiteral

    ctx = FlyteContextManager.current_context()
    folder = ctx.file_access.get_random_remote_directory()
    pq.write_table(table, os.path.join(folder, "00000"))
    literal = DatasetLiteral(uri=folder, metadata=_metadata(PARQUET))
    return decoder.decode(ctx, literal, literal.metadata)


def __getattr__(name: str) -> Any:  # Flyte's names kernelflow lacks: the one message
    return refuse(__name__, name)
