"""``flytekit.core.type_engine``: ``TypeTransformer``, ``TypeEngine``, ``BatchSize``.

A Flyte program teaches Flyte a type of its own with a transformer::

    class MatrixTransformer(TypeTransformer[Matrix]):
        def __init__(self):
            super().__init__(name="matrix", t=Matrix)
        def get_literal_type(self, t): return LiteralType(blob=BlobType("npy", SINGLE))
        def to_literal(self, ctx, python_val, python_type, expected): ...  # -> Literal
        def to_python_value(self, ctx, lv, expected_python_type): ...     # -> Matrix

    TypeEngine.register(MatrixTransformer())

That class works here unchanged. :meth:`TypeEngine.register` registers a codec
for the type with the core (:mod:`kernelflow._core.custom_types`): from then
on, every copy of a ``Matrix`` the engine makes (the artifact it stores, what a
worker process receives, a cache hit read back) goes through ``to_literal`` and
``to_python_value``, and its content hash, which cache keys are made of, is
the hash of the literal (with the *content* of the files it names:
:mod:`kernelflow.core.literal_bytes`). ``ctx`` is a local
:class:`~kernelflow.core.context_manager.FlyteContext`: its ``file_access``
gives random local and "remote" paths on this machine.

What differs from Flyte: the literal models are local stand-ins with Flyte's
field names (:mod:`kernelflow.models`), not protobuf; the ``expected``
literal type passed to ``to_literal`` is the transformer's own
``get_literal_type``; only exact classes (and ``additional_types``) are looked
up, not subclasses, when values are stored; types kernelflow stores itself
(builtins, pandas, NumPy, pyarrow, its own) cannot be given a transformer.

Flyte's ``Annotated[list[T], BatchSize(n)]`` pickles a list in batches of ``n``
for its blob store; locally a list is one artifact, so ``BatchSize`` is accepted
and recorded in the type's name, with no other effect.
"""

from __future__ import annotations

import datetime
import shutil
import tempfile
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from kernelflow._core import custom_types
from kernelflow._core.errors import UnsupportedFeatureError
from kernelflow.core.context_manager import (
    FlyteContext,
    FlyteContextManager,
    scoped_file_access,
)
from kernelflow.core.data_persistence import FileAccessProvider, default_file_access
from kernelflow.core.literal_bytes import pack, unpack
from kernelflow.exceptions.unsupported import refuse, refuse_attribute
from kernelflow.models.literals import Literal, Primitive, Scalar, Void
from kernelflow.models.types import LiteralType, SimpleType

__all__ = [
    "BatchSize",
    "TypeEngine",
    "TypeTransformer",
    "TypeTransformerFailedError",
]

T = TypeVar("T")


@dataclass(frozen=True)
class BatchSize:
    """How many items Flyte pickles per file; accepted, with no local effect."""

    val: int


class TypeTransformerFailedError(TypeError, AssertionError, ValueError):
    """What a transformer raises for a value it cannot convert (Flyte's name)."""


class TypeTransformer(Generic[T]):
    """The base of a user's transformer: ``name``, ``python_type`` and four methods."""

    def __init__(self, name: str, t: type[T], enable_type_assertions: bool = True) -> None:
        self._name = name
        self._t = t
        self._type_assertions_enabled = enable_type_assertions

    @property
    def name(self) -> str:
        return self._name

    @property
    def python_type(self) -> type[T]:
        return self._t

    @property
    def type_assertions_enabled(self) -> bool:
        return self._type_assertions_enabled

    @property
    def is_async(self) -> bool:
        return False

    def assert_type(self, t: type[T], v: T) -> None:
        if self._type_assertions_enabled and isinstance(t, type) and not isinstance(v, t):
            raise TypeTransformerFailedError(
                f"expected a value of type {t.__name__}, got {type(v).__name__}: {v!r}"
            )

    def get_literal_type(self, t: type[T]) -> LiteralType:
        raise NotImplementedError(f"{type(self).__name__} does not say its literal type")

    def guess_python_type(self, literal_type: LiteralType) -> type[T]:
        raise ValueError(f"{type(self).__name__} cannot guess a Python type")

    def to_literal(
        self, ctx: FlyteContext, python_val: T, python_type: type[T], expected: LiteralType
    ) -> Literal:
        raise NotImplementedError(f"{type(self).__name__} has no to_literal")

    def to_python_value(
        self, ctx: FlyteContext, lv: Literal, expected_python_type: type[T]
    ) -> T | None:
        raise NotImplementedError(f"{type(self).__name__} has no to_python_value")

    def to_html(self, ctx: FlyteContext, python_val: T, expected_python_type: type[T]) -> str:
        return str(python_val)

    def isinstance_generic(self, obj: Any, generic_alias: Any) -> bool:
        return isinstance(obj, getattr(generic_alias, "__origin__", generic_alias))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self._name!r}, t={self._t!r})"


class TransformerCodec:
    """A transformer as the core's codec: a value to the bytes of its literal, and back.

    ``to_literal`` runs with a "remote" directory of its own, removed once the
    literal's content is packed; ``to_python_value`` reads files written to
    fresh directories of the process's sandbox, which outlive the call.
    """

    def __init__(self, transformer: TypeTransformer[Any], python_type: type) -> None:
        self.transformer = transformer
        self.python_type = python_type
        self.name = transformer.name

    def encode(self, value: Any) -> bytes:
        scratch = tempfile.mkdtemp(prefix="kernelflow-literal-")
        try:
            sandbox = default_file_access().local_sandbox_dir
            with scoped_file_access(FileAccessProvider(sandbox, scratch)) as ctx:
                expected = self.transformer.get_literal_type(self.python_type)
                literal = self.transformer.to_literal(ctx, value, self.python_type, expected)
                return pack(literal)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def decode(self, data: bytes) -> Any:
        ctx = FlyteContextManager.current_context()
        literal = unpack(data, ctx.file_access.get_random_local_directory)
        return self.transformer.to_python_value(ctx, literal, self.python_type)


# Classes kernelflow stores and hashes itself: a transformer for them is refused.
_OWN_ROOTS = frozenset(["builtins", "pandas", "numpy", "pyarrow", "kernelflow", "typing"])

_PRIMITIVES: dict[type, tuple[SimpleType, str]] = {
    bool: (SimpleType.BOOLEAN, "boolean"),
    int: (SimpleType.INTEGER, "integer"),
    float: (SimpleType.FLOAT, "float_value"),
    str: (SimpleType.STRING, "string_value"),
    datetime.datetime: (SimpleType.DATETIME, "datetime"),
    datetime.timedelta: (SimpleType.DURATION, "duration"),
}


# TypeEngine's class methods that kernelflow lacks: refused by name.
_ENGINE_NAMES = frozenset(
    [
        "async_to_literal",
        "async_to_python_value",
        "calculate_hash",
        "dict_to_literal_map",
        "get_available_transformers",
        "guess_python_types",
        "literal_map_to_kwargs",
        "named_tuple_to_variable_map",
        "to_html",
        "unwrap_offloaded_literal",
    ]
)


class _EngineClass(type):
    def __getattr__(cls, name: str) -> Any:
        return refuse_attribute("kernelflow.core.type_engine.TypeEngine", name, _ENGINE_NAMES)


class TypeEngine(metaclass=_EngineClass):
    """The registry of transformers (Flyte's ``TypeEngine``), and conversions through it."""

    _REGISTRY: dict[type, TypeTransformer[Any]] = {}

    @classmethod
    def register(
        cls,
        transformer: TypeTransformer[Any],
        additional_types: list[type] | None = None,
    ) -> None:
        """Use ``transformer`` for its type (and ``additional_types``) from now on."""
        for python_type in [transformer.python_type, *(additional_types or [])]:
            _refuse_own_type(python_type, transformer)
            cls._REGISTRY[python_type] = transformer
            custom_types.register(python_type, TransformerCodec(transformer, python_type))

    @classmethod
    def get_transformer(cls, python_type: type) -> TypeTransformer[Any]:
        """The transformer registered for ``python_type`` or its nearest base class."""
        for candidate in getattr(python_type, "__mro__", (python_type,)):
            found = cls._REGISTRY.get(candidate)
            if found is not None:
                return found
        raise ValueError(f"no transformer is registered for {python_type!r}")

    @classmethod
    def lazy_import_transformers(cls) -> None:
        """Flyte imports its optional transformers here; kernelflow has none to import."""

    @classmethod
    def to_literal_type(cls, python_type: type) -> LiteralType:
        if python_type in _PRIMITIVES:
            return LiteralType(simple=_PRIMITIVES[python_type][0])
        if python_type is type(None):
            return LiteralType(simple=SimpleType.NONE)
        return cls.get_transformer(python_type).get_literal_type(python_type)

    @classmethod
    def to_literal(
        cls, ctx: FlyteContext, python_val: Any, python_type: type, expected: LiteralType
    ) -> Literal:
        if python_val is None:
            return Literal(scalar=Scalar(none_type=Void()))
        if python_type in _PRIMITIVES:
            field = _PRIMITIVES[python_type][1]
            return Literal(scalar=Scalar(primitive=Primitive(**{field: python_val})))
        transformer = cls.get_transformer(python_type)
        transformer.assert_type(python_type, python_val)
        return transformer.to_literal(ctx, python_val, python_type, expected)

    @classmethod
    def to_python_value(cls, ctx: FlyteContext, lv: Literal, expected_python_type: type) -> Any:
        if expected_python_type in _PRIMITIVES:
            primitive = lv.scalar.primitive if lv.scalar else None
            return None if primitive is None else primitive.value
        if expected_python_type is type(None):
            return None
        transformer = cls.get_transformer(expected_python_type)
        return transformer.to_python_value(ctx, lv, expected_python_type)

    @classmethod
    def guess_python_type(cls, flyte_type: LiteralType) -> type:
        """The Python type of a literal type: a primitive's, or one a transformer claims."""
        for python_type, (simple, _) in _PRIMITIVES.items():
            if flyte_type.simple == simple:
                return python_type
        for transformer in cls._REGISTRY.values():
            try:
                return transformer.guess_python_type(flyte_type)
            except (ValueError, NotImplementedError):
                continue
        raise ValueError(f"no transformer knows the Python type of {flyte_type!r}")


def _refuse_own_type(python_type: Any, transformer: TypeTransformer[Any]) -> None:
    root = (getattr(python_type, "__module__", "") or "").partition(".")[0]
    if not isinstance(python_type, type) or root in _OWN_ROOTS:
        raise UnsupportedFeatureError(
            f"flytekit.TypeEngine.register of a transformer for {python_type!r}",
            why=f"{transformer.name!r}: kernelflow stores and hashes that type itself; "
            "a transformer is for a class of your own",
        )


def __getattr__(name: str) -> Any:
    return refuse(__name__, name)
