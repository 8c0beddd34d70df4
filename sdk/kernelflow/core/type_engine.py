"""``flytekit.core.type_engine`` at Flyte's path: ``BatchSize``; the rest is refused by name.

Flyte's ``Annotated[list[T], BatchSize(n)]`` pickles a list in batches of ``n``
for its blob store; locally a list is one artifact, so ``BatchSize`` is accepted
and recorded in the type's name, with no other effect. Flyte's type engine
(``TypeEngine``, ``TypeTransformer``) is not here: see README "Flyte compatibility".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kernelflow.exceptions.unsupported import refuse


@dataclass(frozen=True)
class BatchSize:
    """How many items Flyte pickles per file; accepted, with no local effect."""

    val: int


def __getattr__(name: str) -> Any:
    return refuse(__name__, name)
