"""User types with their own serialization: one registry, consulted by every copy of a value.

Flyte lets a program register a ``TypeTransformer`` for a class of its own: the
transformer, not pickle, decides what a value of that class is made of. Here a
registered type gets a :class:`Codec` (bytes out, value back) and the registry
plugs it in at the one place every copy of a value goes through, pickling:
:func:`register` installs a ``copyreg`` reducer for the class, so that

- the store (:mod:`kernelflow.store.artifacts` pickles outputs) keeps the
  codec's bytes and reads the value back through the codec (a cache hit, a
  resume, ``kernelflow lineage``);
- a worker process receives and returns such values through the codec too, and
  a value nested in a list or a dataclass is covered the same way;
- the content hash (:mod:`kernelflow._core.hashing`) asks :func:`codec_for`
  first and hashes the codec's bytes, so two values the transformer writes the
  same are one cache key, and a change it writes is a miss.

Nothing else in the engine knows about custom types; the common path pays one
dict look-up in the hash of a value that is not a builtin. The codec itself is
built above the core (``kernelflow.core.type_engine`` wraps a Flyte transformer).

A codec that raises is reported as :class:`TypeTransformerError`, naming the
type and the transformer; the engine adds the task and the variable.
"""

from __future__ import annotations

import copyreg
from typing import Any, Protocol

from kernelflow._core.errors import KernelflowError, TypeTransformerError

__all__ = ["Codec", "codec_for", "encode", "rebuild", "register"]


class Codec(Protocol):
    """How values of one registered type become bytes and come back."""

    name: str  # the transformer's name, shown in errors and lineage

    def encode(self, value: Any) -> bytes: ...

    def decode(self, data: bytes) -> Any: ...


_CODECS: dict[type, Codec] = {}


def register(python_type: type, codec: Codec) -> None:
    """Serialize and hash values of exactly ``python_type`` with ``codec`` from now on."""
    _CODECS[python_type] = codec
    copyreg.pickle(python_type, _reduce)


def codec_for(cls: type) -> Codec | None:
    """The codec registered for the class (not its subclasses), if any."""
    return _CODECS.get(cls)


def type_label(cls: type) -> str:
    """``Class`` (or ``module.Class`` outside ``__main__``), for messages."""
    module = getattr(cls, "__module__", "")
    name = getattr(cls, "__qualname__", repr(cls))
    return name if module in ("__main__", "builtins", "") else f"{module}.{name}"


def encode(value: Any) -> bytes:
    """The codec's bytes of ``value``; a failure is a TypeTransformerError naming both."""
    codec = _CODECS[type(value)]
    try:
        data = codec.encode(value)
    except KernelflowError:
        raise
    except Exception as error:
        raise _failed(codec, type(value), "to_literal", error) from error
    if not isinstance(data, bytes):
        raise _failed(codec, type(value), "to_literal", TypeError("it did not give bytes"))
    return data


def rebuild(codec: Codec, cls: type, data: bytes) -> Any:
    """The value of ``data`` as ``codec`` reads it back (the reducer's constructor)."""
    try:
        return codec.decode(data)
    except KernelflowError:
        raise
    except Exception as error:
        raise _failed(codec, cls, "to_python_value", error) from error


def _reduce(value: Any) -> tuple[Any, tuple[Any, ...]]:
    """Pickle's view of a registered value: the codec and its bytes, never the object."""
    cls = type(value)
    return rebuild, (_CODECS[cls], cls, encode(value))


def _failed(codec: Codec, cls: type, method: str, error: BaseException) -> TypeTransformerError:
    doing = "serialize" if method == "to_literal" else "read back"
    label, cause = type_label(cls), f"{method} raised {type(error).__name__}: {error}"
    return TypeTransformerError(
        f"the transformer {codec.name!r} for {label} could not {doing} a value ({cause})",
        fix=f"fix {method} of the transformer registered for {label} "
        "(TypeEngine.register), or return a type kernelflow stores itself",
        type_name=label,
        transformer=codec.name,
        method=method,
        cause=cause,
    )
