"""What a task needs from its machine (Flyte's ``Resources``, ``Secret``, ``ImageSpec``).

Locally there is one machine and no containers, so the requirements mean this:
a request larger than the machine (more CPUs than ``os.cpu_count()``, more
memory than it has) is refused before the run starts, naming the task; limits
and images are accepted and recorded with the run; secrets are read when the
task asks for them (:mod:`kernelflow.engine.secrets`) and never stored.
"""

from __future__ import annotations

import enum
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from kernelflow._core.errors import DefinitionError, ResourceError

__all__ = [
    "ImageSpec",
    "Requirements",
    "Resources",
    "Secret",
    "check_fits",
    "parse_cpu",
    "parse_memory",
]

Quantity = str | int | float | None

_UNITS = {
    "": 1,
    "k": 1000,
    "m": 1000**2,
    "g": 1000**3,
    "t": 1000**4,
    "ki": 1024,
    "mi": 1024**2,
    "gi": 1024**3,
    "ti": 1024**4,
}
_MEMORY = re.compile(r"\s*([0-9]*\.?[0-9]+)\s*([kmgtKMGT]i?)?[bB]?\s*")


@dataclass(frozen=True)
class Resources:
    """CPU, memory, GPUs and scratch disk, in Kubernetes notation (``"2"``, ``"500m"``,
    ``"4Gi"``), as Flyte's ``Resources``; used for ``requests=`` and ``limits=``."""

    cpu: Quantity = None
    mem: Quantity = None
    gpu: Quantity = None
    ephemeral_storage: Quantity = None

    def __post_init__(self) -> None:
        if self.cpu is not None:
            parse_cpu(self.cpu)
        for name in ("mem", "ephemeral_storage"):
            if getattr(self, name) is not None:
                parse_memory(getattr(self, name))

    def as_dict(self) -> dict[str, str]:
        return {
            name: str(value)
            for name in ("cpu", "mem", "gpu", "ephemeral_storage")
            if (value := getattr(self, name)) is not None
        }


class SecretMountType(enum.Enum):
    """Flyte's ``Secret.MountType``: how a cluster hands a secret over; locally both are read."""

    ANY = 0
    ENV_VAR = 1
    FILE = 2


@dataclass(frozen=True)
class Secret:
    """A secret a task reads with ``current_context().secrets.get(group, key)``."""

    MountType: ClassVar[type[SecretMountType]] = SecretMountType

    group: str | None = None
    key: str | None = None
    group_version: str | None = None
    env_var: str | None = None
    mount_requirement: Any = None


@dataclass(frozen=True)
class ImageSpec:
    """A container image description. Locally no image is built: it is recorded with the run."""

    name: str = "kernelflow"
    python_version: str | None = None
    packages: Sequence[str] = ()
    apt_packages: Sequence[str] = ()
    base_image: str | None = None
    registry: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    requirements: str | None = None
    platform: str | None = None
    tag_format: str | None = None

    def is_container(self) -> bool:
        """Whether this runs inside the image (Flyte's check): never, locally."""
        return False

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "python_version": self.python_version,
            "packages": list(self.packages),
            "apt_packages": list(self.apt_packages),
            "base_image": self.base_image,
            "registry": self.registry,
        }


@dataclass(frozen=True)
class Requirements:
    """Everything a task declared about where it runs (read by the engine, duck-typed)."""

    requests: Resources | None = None
    limits: Resources | None = None
    container_image: str | ImageSpec | None = None
    secret_requests: tuple[Secret, ...] = ()
    enable_deck: bool = False

    def __post_init__(self) -> None:
        for name in ("requests", "limits"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Resources):
                raise DefinitionError(
                    f"{name}= takes a Resources(...), got {type(value).__name__}",
                    fix=f"write {name}=Resources(cpu='1', mem='1Gi')",
                )
        for secret in self.secret_requests:
            if not isinstance(secret, Secret):
                raise DefinitionError(
                    f"secret_requests= takes Secret(...) items, got {type(secret).__name__}",
                    fix="write secret_requests=[Secret(group='my-group', key='token')]",
                )

    def override(self, **changes: Any) -> Requirements:
        known = {name: value for name, value in changes.items() if value is not None}
        if "secret_requests" in known:
            known["secret_requests"] = tuple(known["secret_requests"])
        return Requirements(**{**self.__dict__, **known})

    def image_record(self) -> object:
        """What the run records of the image: its name, or an ImageSpec's fields."""
        image = self.container_image
        return image.as_dict() if isinstance(image, ImageSpec) else image

    def record(self) -> dict[str, object]:
        """The requirements as JSON for the run's environment record; never secret values."""
        record: dict[str, object] = {}
        if self.requests is not None:
            record["requests"] = self.requests.as_dict()
        if self.limits is not None:
            record["limits"] = self.limits.as_dict()
        if self.container_image is not None:
            record["container_image"] = self.image_record()
        if self.secret_requests:
            record["secrets"] = [f"{s.group}/{s.key}" for s in self.secret_requests]
        return record


def parse_cpu(value: Quantity) -> float:
    """CPUs as a number: ``"2"`` -> 2.0, ``"500m"`` -> 0.5."""
    text = str(value).strip()
    try:
        return float(text[:-1]) / 1000 if text.endswith("m") else float(text)
    except ValueError:
        raise DefinitionError(
            f"cpu={value!r} is not a CPU quantity", fix="write cpu='2' or cpu='500m'"
        ) from None


def parse_memory(value: Quantity) -> int:
    """Bytes: ``"4Gi"`` -> 4 * 2**30, ``"500M"`` -> 500 * 10**6, ``1024`` -> 1024."""
    match = _MEMORY.fullmatch(str(value))
    if match is None:
        raise DefinitionError(
            f"memory quantity {value!r} is not understood", fix="write mem='4Gi' or mem='500Mi'"
        )
    number, unit = match.groups()
    return int(float(number) * _UNITS[(unit or "").lower()])


def machine_memory() -> int | None:
    """Total physical memory in bytes, or None where it cannot be read."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def check_fits(task: str, requests: Resources | None) -> None:
    """Refuse a request this machine cannot meet, naming the task, before anything runs."""
    if requests is None:
        return
    cpus = os.cpu_count() or 1
    if requests.cpu is not None and parse_cpu(requests.cpu) > cpus:
        raise ResourceError(
            f"task {task!r} requests cpu={requests.cpu}, but this machine has {cpus} CPUs; "
            "the run was not started",
            task=task,
            resource="cpu",
            requested=str(requests.cpu),
            available=str(cpus),
            fix=f"lower the request of {task!r} (requests=Resources(cpu=...)), or run it "
            "on a larger machine",
        )
    total = machine_memory()
    if requests.mem is not None and total is not None and parse_memory(requests.mem) > total:
        raise ResourceError(
            f"task {task!r} requests mem={requests.mem}, but this machine has "
            f"{total / 2**30:.1f} GiB of memory; the run was not started",
            task=task,
            resource="mem",
            requested=str(requests.mem),
            available=str(total),
            fix=f"lower the request of {task!r} (requests=Resources(mem=...)), or run it "
            "on a larger machine",
        )


def requirements_of(task: object) -> Requirements | None:
    """The requirements a task declared (``task.requirements``), if any."""
    found = getattr(task, "requirements", None)
    return found if isinstance(found, Requirements) else None
