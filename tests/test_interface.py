"""Typed interfaces: value checks, type compatibility, signatures and CLI parameters."""

# The old typing spellings (List, Optional, Union, ...) are what these tests are about.
# ruff: noqa: UP006, UP007, UP035, UP045

from __future__ import annotations

import collections
import dataclasses
import datetime
import enum
import inspect
import pathlib
import pickle
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import (
    Annotated,
    Any,
    Dict,
    List,
    Literal,
    NamedTuple,
    NewType,
    Optional,
    Set,
    Tuple,
    TypeVar,
    Union,
)

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kernelflow._core.interface import (
    Interface,
    Schema,
    check_value,
    describe_value,
    interface_from_function,
    is_compatible,
    parse_parameter,
    type_name,
)
from kernelflow.errors import DefinitionError, OutputTypeError, ParameterError, SignatureError

T = TypeVar("T")
UserId = NewType("UserId", int)


class Point(NamedTuple):
    x: int
    y: float


@dataclasses.dataclass
class Config:
    lr: float


class Animal:
    pass


class Dog(Animal):
    pass


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


XY = Annotated[pd.DataFrame, Schema(x=float, y="int64")]


def _frame(**columns: Any) -> pd.DataFrame:
    return pd.DataFrame(columns)


# --- check_value: every supported form, conforming and not ------------------------

CONFORMING = [
    ("anything", Any),
    (object(), object),
    ([1, "a"], inspect.Parameter.empty),
    ("x", T),
    (None, None),
    (None, type(None)),
    (3, int),
    (np.int64(3), int),
    (3, float),
    (2.5, float),
    (np.float32(1.5), float),
    (True, bool),
    (np.True_, bool),
    ("s", str),
    (b"b", bytes),
    ([1, 2], list[int]),
    ([1, 2], List[int]),
    ([], list[str]),
    ([1, 2.5], list[float]),
    ({"a": 1}, dict[str, int]),
    ({"a": [1]}, Dict[str, List[int]]),
    ((1, "a"), tuple[int, str]),
    ((1, "a"), Tuple[int, str]),
    ((1, 2, 3), tuple[int, ...]),
    ((), tuple[()]),
    ({1, 2}, set[int]),
    ({1, 2}, Set[int]),
    (frozenset({"a"}), frozenset[str]),
    (None, Optional[int]),
    (4, Optional[int]),
    ("a", Union[int, str]),
    (3, int | str),
    (None, int | None),
    ("a", Literal["a", "b"]),
    (3, Annotated[int, "some metadata"]),
    (_frame(x=[1.0], y=[1], z=["extra columns are fine"]), XY),
    (_frame(a=[1]), pd.DataFrame),
    (pd.Series([1.0]), pd.Series),
    (np.zeros(3), np.ndarray),
    (np.zeros(3), npt.NDArray[np.float64]),
    (np.zeros(3, dtype=np.int32), npt.NDArray[np.integer]),
    (Point(1, 2.0), Point),
    (Config(0.1), Config),
    (Dog(), Animal),
    (UserId(5), UserId),
    (Dog, type[Animal]),
    ([1, 2], Sequence[int]),
    ({"a": 1}, Mapping[str, int]),
    (collections.deque([1]), collections.deque[int]),
]


@pytest.mark.parametrize(("value", "tp"), CONFORMING, ids=lambda v: type_name(v)[:40])
def test_conforming_values_pass(value: Any, tp: Any) -> None:
    assert check_value(value, tp) is None


NONCONFORMING = [
    (3, None, "int 3"),
    ("3", int, "str '3'"),
    (True, int, "bool True"),
    (2.5, int, "float 2.5"),
    (True, float, "bool True"),
    ("1.5", float, "str '1.5'"),
    (1, bool, "int 1"),
    (b"s", str, "bytes b's'"),
    ("s", bytes, "str 's'"),
    ((1, 2), list[int], "tuple of 2 items"),
    ([1, 2, "x"], list[int], "list of 3 items whose item [2] is str 'x'"),
    ([1, "x"], List[int], "list of 2 items whose item [1] is str 'x'"),
    ({"a": "b"}, dict[str, int], "dict of 1 item whose item ['a'] is str 'b'"),
    ({1: 1}, Dict[str, int], "dict of 1 item with key int 1"),
    ({"a": [1, "x"]}, dict[str, list[int]], "dict of 1 item whose item ['a'][1] is str 'x'"),
    ((1, 2), tuple[int, str], "tuple of 2 items whose item [1] is int 2"),
    ((1, 2, 3), tuple[int, int], "tuple of 3 items, not 2"),
    ((1, "a"), tuple[int, ...], "tuple of 2 items whose item [1] is str 'a'"),
    ((1,), tuple[()], "tuple of 1 item"),
    ({1, "a"}, set[int], "set of 2 items containing str 'a'"),
    ("x", Optional[int], "str 'x'"),
    ([1, "x"], Optional[list[int]], "list of 2 items whose item [1] is str 'x'"),
    (2.5, Union[int, str], "float 2.5"),
    (2.5, int | str, "float 2.5"),
    ("c", Literal["a", "b"], "str 'c'"),
    (1, Literal["1"], "int 1"),
    ("3", Annotated[int, "meta"], "str '3'"),
    ({"x": [1.0]}, pd.DataFrame, "dict of 1 item"),
    (_frame(x=[1.0]), pd.Series, "pandas.DataFrame with columns ['x']"),
    ([1.0], np.ndarray, "list of 1 item"),
    (
        np.zeros(2, dtype=int),
        npt.NDArray[np.float64],
        "numpy.ndarray of dtype int64 and shape (2,)",
    ),
    ((1, 2.0), Point, "tuple of 2 items"),
    ({"lr": 0.1}, Config, "dict of 1 item"),
    (Animal(), Dog, "Animal object"),
    ("5", UserId, "str '5'"),
    (str, type[Animal], "class str"),
    (["a"], Sequence[int], "list of 1 item whose item [0] is str 'a'"),
]


@pytest.mark.parametrize(("value", "tp", "found"), NONCONFORMING, ids=lambda v: str(v)[:30])
def test_nonconforming_values_say_what_was_found(value: Any, tp: Any, found: str) -> None:
    assert check_value(value, tp) == found


def test_schema_mismatch_names_the_column_and_both_dtypes() -> None:
    problem = check_value(_frame(x=[1.0], y=[1.5]), XY)
    assert problem == (
        "pandas.DataFrame with columns ['x', 'y']: column 'y' has dtype float64, expected int64"
    )
    assert "column 'y' is missing" in check_value(_frame(x=[1.0]), XY)


def test_an_iterator_is_checked_by_class_only_and_not_consumed() -> None:
    values = iter([1, 2])
    from collections.abc import Iterable

    assert check_value(values, Iterable[str]) is None
    assert list(values) == [1, 2]
    assert check_value(values, Iterator[int]) is None


def test_checks_of_builtins_are_fast() -> None:
    optional = Optional[str]
    start = time.perf_counter()
    for _ in range(100_000):
        check_value(3, float)
        check_value("s", optional)
    elapsed = time.perf_counter() - start
    # a few hundred ns each; the bound is loose so that a busy machine does not fail it
    assert elapsed < 2.0


def test_checking_builtins_does_not_import_pandas_or_numpy() -> None:
    code = textwrap.dedent(
        """
        import sys
        from typing import Optional
        import kernelflow._core.interface as i
        before = {m for m in ("pandas", "numpy") if m in sys.modules}
        assert i.check_value([1, "x"], list[int]) is not None
        assert i.check_value(None, Optional[dict[str, float]]) is None
        assert i.is_compatible(list[int], list[float])
        i.parse_parameter("n", "[1, 2]", list[int])
        i.describe_value({"a": 1}), i.type_name(Optional[str])
        after = {m for m in ("pandas", "numpy") if m in sys.modules}
        print(sorted(after - before))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- Schema -------------------------------------------------------------------------


def test_schema_python_types_match_dtype_kinds() -> None:
    schema = Schema(f=float, i=int, b=bool, s=str, o=object)
    frame = _frame(
        f=np.array([1.0], dtype=np.float32),
        i=pd.array([1], dtype="Int64"),
        b=[True],
        s=pd.Series(["a"], dtype="string"),
        o=[object()],
    )
    assert schema.problems(frame) == []
    wrong = _frame(f=["x"], i=[1.5], b=[1], s=[1], o=[1])
    assert schema.problems(wrong) == [
        "column 'f' has dtype str, expected float",
        "column 'i' has dtype float64, expected int",
        "column 'b' has dtype int64, expected bool",
        "column 's' has dtype int64, expected str",
    ]


def test_schema_dtype_names_are_exact_but_accept_aliases() -> None:
    assert Schema(c="category").problems(_frame(c=pd.Categorical(["a"]))) == []
    assert Schema(y="float").problems(_frame(y=[1.0])) == []
    assert Schema(y="int32").problems(_frame(y=[1])) == [
        "column 'y' has dtype int64, expected int32"
    ]


def test_schema_refuses_what_is_not_a_dtype() -> None:
    with pytest.raises(DefinitionError, match="column 'y'"):
        Schema(y=list)
    with pytest.raises(DefinitionError, match="int46"):
        Schema(y="int46")


def test_schema_on_something_that_is_no_frame() -> None:
    assert Schema(x=int).problems([1]) == ["list of 1 item has no columns"]


def test_schema_repr_equality_and_pickling() -> None:
    schema = Schema(x=float, y="int64")
    assert repr(schema) == "Schema(x=float, y='int64')"
    assert schema == Schema(x=float, y="int64") != Schema(x=float)
    restored = pickle.loads(pickle.dumps(XY))
    assert restored == XY
    assert check_value(_frame(x=[1.0]), restored) is not None


# --- names and descriptions ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("tp", "name"),
    [
        (int, "int"),
        (None, "None"),
        (Any, "Any"),
        (list[int], "list[int]"),
        (List[int], "list[int]"),
        (Dict[str, Tuple[int, ...]], "dict[str, tuple[int, ...]]"),
        (Optional[str], "Optional[str]"),
        (int | str, "int | str"),
        (Union[int, str, None], "int | str | None"),
        (Literal["a", 1], "Literal['a', 1]"),
        (pd.DataFrame, "pandas.DataFrame"),
        (XY, "DataFrame[Schema(x=float, y='int64')]"),
        (np.ndarray, "numpy.ndarray"),
        (npt.NDArray[np.float64], "numpy.ndarray[numpy.float64]"),
        (Point, "Point"),
        (Config, "Config"),
        (datetime.date, "datetime.date"),
        (T, "T"),
        (UserId, "UserId"),
        ((int, str), "(int, str)"),
        (tuple[()], "tuple[()]"),
        (Sequence[int], "Sequence[int]"),
    ],
)
def test_type_names_read_as_written(tp: Any, name: str) -> None:
    assert type_name(tp) == name


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("abc", "str 'abc'"),
        (3, "int 3"),
        (None, "None"),
        ([1, 2, 3], "list of 3 items"),
        ({"a": 1}, "dict of 1 item"),
        (_frame(a=[1], b=[2]), "pandas.DataFrame with columns ['a', 'b']"),
        (np.zeros((2, 3)), "numpy.ndarray of dtype float64 and shape (2, 3)"),
        (np.float64(1.5), "numpy.float64 1.5"),
        (Point(1, 2.0), "Point(x=1, y=2.0)"),
        (Dog, "class Dog"),
        (len, "function len"),
    ],
)
def test_describe_value_is_short_and_says_the_type(value: Any, text: str) -> None:
    assert describe_value(value) == text


def test_describe_value_truncates_long_values() -> None:
    text = describe_value("x" * 10_000)
    assert text.startswith("str 'xxx") and text.endswith("...") and len(text) < 80
    wide = describe_value(_frame(**{f"c{i}": [i] for i in range(30)}))
    assert wide.endswith("... 22 more]")


# --- is_compatible -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "target"),
    [
        (int, int),
        (Any, int),
        (str, Any),
        (Dog, Animal),
        (int, float),
        (int, Optional[int]),
        (None, Optional[int]),
        (int, Union[str, float]),
        (list[int], list[float]),
        (list, list[int]),
        (list[int], list),
        (list[int], Sequence[int]),
        (dict[str, int], Mapping[str, float]),
        (Annotated[int, "m"], int),
        (pd.DataFrame, XY),
        (XY, pd.DataFrame),
        (Point, tuple),
        (Point, tuple[int, float]),
        (tuple[int, int], tuple[float, ...]),
        (Literal["a", "b"], str),
        (str, Literal["a"]),
        (Optional[int], Optional[float]),
        (T, int),
        (UserId, int),
        (np.ndarray, npt.NDArray[np.float64]),
    ],
)
def test_compatible_declarations(source: Any, target: Any) -> None:
    assert is_compatible(source, target)


@pytest.mark.parametrize(
    ("source", "target"),
    [
        (str, int),
        (pd.DataFrame, int),
        (list[str], list[int]),
        (Animal, Dog),
        (float, int),
        (bool, float),
        (Optional[int], int),
        (int, Optional[str]),
        (None, int),
        (dict[str, int], list[int]),
        (tuple[int, int], tuple[int]),
        (Point, tuple[str, float]),
        (int, Literal["a"]),
        (Literal[1, "a"], int),
        (npt.NDArray[np.float64], npt.NDArray[np.int64]),
        (Annotated[str, "m"], int),
    ],
)
def test_incompatible_declarations(source: Any, target: Any) -> None:
    assert not is_compatible(source, target)


# --- interface_from_function ---------------------------------------------------------------


def test_single_output_is_o0_and_defaults_are_kept() -> None:
    def train(x: list[float], lr: float = 0.1) -> float:
        return 0.0

    interface = interface_from_function(train)
    assert interface.inputs == {"x": list[float], "lr": float}
    assert interface.defaults == {"lr": 0.1}
    assert interface.outputs == {"o0": float}
    assert interface.output_kind == "single"
    assert interface.unpack(1.5, owner="train") == {"o0": 1.5}
    assert interface.pack({"o0": 1.5}) == 1.5


def test_tuple_output_becomes_o0_o1() -> None:
    def split(n: int) -> tuple[int, str]:
        return n, str(n)

    interface = interface_from_function(split)
    assert list(interface.outputs.items()) == [("o0", int), ("o1", str)]
    assert interface.output_kind == "tuple"
    assert interface.unpack((1, "1"), owner="split") == {"o0": 1, "o1": "1"}
    assert interface.pack({"o1": "1", "o0": 1}) == (1, "1")


def test_variadic_tuple_is_one_output() -> None:
    def many() -> tuple[int, ...]:
        return (1, 2)

    assert interface_from_function(many).outputs == {"o0": tuple[int, ...]}


def test_namedtuple_output_uses_its_field_names() -> None:
    def locate() -> Point:
        return Point(1, 2.0)

    interface = interface_from_function(locate)
    assert interface.outputs == {"x": int, "y": float}
    assert interface.output_kind == "namedtuple"
    assert interface.namedtuple_type is Point
    assert interface.unpack(Point(1, 2.0), owner="locate") == {"x": 1, "y": 2.0}
    packed = interface.pack({"x": 1, "y": 2.0})
    assert isinstance(packed, Point) and packed == Point(1, 2.0)


def test_none_return_has_no_outputs() -> None:
    def log(msg: str) -> None:
        pass

    interface = interface_from_function(log)
    assert interface.outputs == {} and interface.output_kind == "none"
    assert interface.unpack(None, owner="log") == {}
    assert interface.pack({}) is None
    with pytest.raises(OutputTypeError, match="task 'log' should return None, but returned int 3"):
        interface.unpack(3, owner="log")


def test_wrong_tuple_length_names_the_task_expected_and_actual() -> None:
    def split(n: int) -> tuple[int, str]:
        return n, str(n)

    with pytest.raises(OutputTypeError) as caught:
        interface_from_function(split).unpack((1, "1", 2), owner="split")
    error = caught.value
    assert error.task == "split"
    assert "2 values" in error.expected and error.actual == "tuple of 3 items"
    assert "task 'split'" in str(error)


def test_missing_parameter_annotation_is_refused_with_a_fix() -> None:
    def load(path, n: int) -> str:  # type: ignore[no-untyped-def]
        return path

    with pytest.raises(SignatureError) as caught:
        interface_from_function(load, kind="workflow")
    message = str(caught.value)
    assert "workflow 'load'" in message and "'path'" in message
    assert "annotate it, e.g. `def load(path: int) -> float`" in message
    assert caught.value.variable == "path"


def test_missing_return_annotation_declares_no_outputs() -> None:
    def load(path: str):  # type: ignore[no-untyped-def]
        return path

    interface = interface_from_function(load)  # as in Flyte: no annotation, no outputs
    assert (dict(interface.outputs), interface.output_kind) == ({}, "none")


@pytest.mark.parametrize("star", ["*args: int", "**kwargs: int", "x: int, /"])
def test_var_and_positional_only_parameters_are_refused(star: str) -> None:
    namespace: dict[str, Any] = {}
    exec(f"def f({star}) -> int:\n    return 1", namespace)
    with pytest.raises(SignatureError, match="keyword arguments only"):
        interface_from_function(namespace["f"])


def test_default_of_the_wrong_type_is_refused() -> None:
    def f(n: int = "3") -> int:  # type: ignore[assignment]
        return n

    with pytest.raises(SignatureError, match="default of parameter 'n' is str '3'"):
        interface_from_function(f)


def test_unresolvable_annotation_is_a_signature_error() -> None:
    def f(n: NoSuchType) -> int:  # type: ignore[name-defined]  # noqa: F821
        return 1

    with pytest.raises(SignatureError, match="NoSuchType"):
        interface_from_function(f)


def test_interface_is_frozen_and_picklable() -> None:
    interface = Interface({"a": int}, {"o0": XY}, {}, "single")
    with pytest.raises(dataclasses.FrozenInstanceError):
        interface.output_kind = "none"  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(interface)) == interface


# --- parse_parameter --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "tp", "value"),
    [
        ("3", int, 3),
        (" -7 ", int, -7),
        ("1.5", float, 1.5),
        ("2", float, 2.0),
        ("TRUE", bool, True),
        ("yes", bool, True),
        ("0", bool, False),
        ("No", bool, False),
        ("hello world", str, "hello world"),
        ("none", Optional[int], None),
        ("NULL", Optional[str], None),
        ("4", Optional[int], 4),
        ("3", int | str, 3),
        ("abc", int | str, "abc"),
        ("[1, 2]", list[int], [1, 2]),
        ("[1, 2]", list[float], [1.0, 2.0]),
        ('{"a": 1}', dict[str, int], {"a": 1}),
        ('{"1": [1, 2]}', dict[int, tuple[int, ...]], {1: (1, 2)}),
        ('[1, "a"]', tuple[int, str], (1, "a")),
        ("[1, 2, 2]", set[int], {1, 2}),
        ("b", Literal["a", "b"], "b"),
        ("blue", Color, Color.BLUE),
        ("RED", Color, Color.RED),
        ("data/in.csv", pathlib.Path, pathlib.Path("data/in.csv")),
        ("2024-01-31", datetime.date, datetime.date(2024, 1, 31)),
        ("2024-01-31T12:30:00", datetime.datetime, datetime.datetime(2024, 1, 31, 12, 30)),
        ("just text", Any, "just text"),
        # An untyped parameter reads as papermill's -p reads it (issue 11, point 6).
        ("False", Any, False),
        ("True", Any, True),
        ("None", Any, None),
        ("5", Any, 5),
        ("0.5", Any, 0.5),
        ("1e3", Any, 1000.0),
        ("false", Any, "false"),
        ('{"k": [1]}', Any, '{"k": [1]}'),
        ("False", Optional[Any], False),
        # A declared type still wins.
        ("5", str, "5"),
        ("False", str, "False"),
        ("5", Annotated[int, "meta"], 5),
    ],
)
def test_parameters_are_parsed_by_their_declared_type(text: str, tp: Any, value: Any) -> None:
    parsed = parse_parameter("p", text, tp)
    assert parsed == value and type(parsed) is type(value)


@pytest.mark.parametrize(
    ("text", "tp", "expected", "fix"),
    [
        ("abc", int, "int", "whole number"),
        ("1.5", int, "int", "whole number"),
        ("x", float, "float", "a number"),
        ("maybe", bool, "bool", "true or false"),
        ("x", Optional[int], "Optional[int]", "or none"),
        ('[1, "a"]', list[int], "list[int]", "JSON array"),
        ("[1, 2", list[int], "list[int]", "JSON array"),
        ('{"a": "b"}', dict[str, int], "dict[str, int]", "JSON object"),
        ("c", Literal["a", "b"], "Literal['a', 'b']", "one of: a, b"),
        ("green", Color, "Color", "one of: RED, BLUE"),
        ("2024-13-01", datetime.date, "datetime.date", "ISO date"),
        ("x", pd.DataFrame, "pandas.DataFrame", "pass it from Python"),
        ("__import__('os')", int, "int", "whole number"),
    ],
)
def test_bad_parameters_raise_parameter_error(text: str, tp: Any, expected: str, fix: str) -> None:
    with pytest.raises(ParameterError) as caught:
        parse_parameter("n", text, tp)
    error = caught.value
    assert error.parameter == "n"
    assert error.expected == expected
    assert error.actual == text
    assert str(error).startswith(f"parameter 'n' expects {expected}, got {text!r}")
    assert fix in error.fix


def test_bad_container_parameter_says_which_item_is_wrong() -> None:
    with pytest.raises(ParameterError, match=r"item \[1\] is str 'a'"):
        parse_parameter("xs", '[1, "a"]', list[int])


def test_deeply_nested_json_is_a_parameter_error() -> None:
    with pytest.raises(ParameterError):
        parse_parameter("xs", "[" * 100_000, list[int])


@settings(max_examples=300, deadline=None)
@given(
    text=st.one_of(
        st.text(),
        st.from_regex(r"\[?-?[0-9 ,.e\[\]\"]*\]?", fullmatch=True),
        st.sampled_from(["true", "NO", "1", "nan", "inf", "-0", "1_000", "[]", "[1, 2]"]),
    ),
    tp=st.sampled_from([int, float, bool, list[int]]),
)
def test_parse_parameter_returns_a_conforming_value_or_a_parameter_error(
    text: str, tp: Any
) -> None:
    try:
        value = parse_parameter("p", text, tp)
    except ParameterError as error:
        assert error.parameter == "p" and error.actual == text
    else:
        assert check_value(value, tp) is None


@settings(max_examples=300, deadline=None)
@given(
    text=st.one_of(
        st.text(),
        st.from_regex(r"-?[0-9_ .e]*", fullmatch=True),
        st.sampled_from(["True", "False", "None", "true", "nan", "-inf", "1_000", " 7 ", "[1]"]),
    )
)
def test_an_untyped_parameter_is_what_papermill_makes_of_it(text: str) -> None:
    """``kernelflow run -p`` and ``papermill -p`` give an untyped parameter one value."""
    from papermill.cli import _resolve_type  # the function papermill's -p calls

    ours, papermills = parse_parameter("p", text, Any), _resolve_type(text)
    assert type(ours) is type(papermills)
    assert ours == papermills or (ours != ours and papermills != papermills)  # NaN
