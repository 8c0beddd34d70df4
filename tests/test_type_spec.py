"""Declared types as JSON: what a signal's sender rebuilds to parse a value as the node will."""

from __future__ import annotations

import datetime
import enum
import pathlib
from typing import Annotated, Any, Literal, Optional

import pytest

from kernelflow._core.interface import parse_parameter
from kernelflow._core.type_spec import describe_type, rebuild_type
from kernelflow.errors import ParameterError


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Opaque:
    """A class text cannot be parsed to."""


@pytest.mark.parametrize(
    "tp,text,value",
    [
        (int, "5", 5),
        (float, "0.5", 0.5),
        (bool, "yes", True),
        (str, "five", "five"),
        (datetime.date, "2024-01-31", datetime.date(2024, 1, 31)),
        (pathlib.Path, "a/b", pathlib.Path("a/b")),
        (list[int], "[1, 2]", [1, 2]),
        (dict[str, float], '{"a": 1}', {"a": 1.0}),
        (tuple[int, ...], "[1, 2]", (1, 2)),
        (Optional[int], "none", None),  # noqa: UP045
        (Literal["a", "b"], "b", "b"),
        (Annotated[int, "meta"], "3", 3),
        (Any, "3", 3),
    ],
)
def test_a_rebuilt_type_parses_text_as_the_declared_one(tp: Any, text: str, value: Any) -> None:
    rebuilt = rebuild_type(describe_type(tp))
    assert parse_parameter("x", text, rebuilt) == parse_parameter("x", text, tp) == value


def test_an_enum_is_rebuilt_by_its_member_names_and_values() -> None:
    rebuilt = rebuild_type(describe_type(Color))
    assert parse_parameter("c", "BLUE", rebuilt).value == "blue"  # type: ignore[attr-defined]
    with pytest.raises(ParameterError):
        parse_parameter("c", "green", rebuilt)


@pytest.mark.parametrize("tp", [Opaque, list[Opaque], Optional[Opaque]])  # noqa: UP045
def test_a_type_text_cannot_be_parsed_to_has_no_description(tp: Any) -> None:
    assert describe_type(tp) is None
    assert rebuild_type(None) is None and rebuild_type("{not json") is None
