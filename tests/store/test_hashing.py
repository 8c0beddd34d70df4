"""Content hashes: what makes a cache key change, and what must not."""

from __future__ import annotations

import collections
import dataclasses
import datetime
import json
import os
import pickle
import subprocess
import sys
import threading
import time
import tracemalloc
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xxhash

from kernelflow._core.hashing import combine, content_hash, hash_bytes
from kernelflow.errors import KernelflowError, UnhashableValueError


def distinct(values: list[Any]) -> bool:
    hashes = [content_hash(v) for v in values]
    return len(set(hashes)) == len(hashes)


# --- builtins -------------------------------------------------------------------------


def test_hash_is_32_hex_chars_and_stable() -> None:
    digest = content_hash({"a": [1, 2.5, "x"]})
    assert len(digest) == 32 and int(digest, 16) >= 0
    assert content_hash({"a": [1, 2.5, "x"]}) == digest


def test_values_that_compare_equal_but_differ_in_type_hash_differently() -> None:
    assert distinct([1, 1.0, True, "1", b"1", bytearray(b"1"), 1 + 0j, None, [1], (1,)])
    assert distinct([0, False, 0.0, "", b"", None, [], (), {}, set(), frozenset()])


def test_integers_of_any_size_and_sign() -> None:
    assert distinct([-1, 255, 256, -256, 2**64, -(2**64), 2**64 - 1, 10**30])


def test_containers_are_unambiguous() -> None:
    assert distinct([["ab", "c"], ["a", "bc"], ["abc"], [["a"], "bc"], [("a",), "bc"]])
    assert distinct([[1, [2, 3]], [[1, 2], 3], [1, 2, 3], (1, 2, 3)])


def test_dict_and_set_hash_ignores_order_but_not_content() -> None:
    assert content_hash({"a": 1, "b": 2}) == content_hash({"b": 2, "a": 1})
    assert content_hash({3, 1, 2}) == content_hash({2, 3, 1})
    assert content_hash({"a": 1, "b": 2}) != content_hash({"a": 2, "b": 1})
    assert content_hash({1, 2}) != content_hash(frozenset({1, 2}))
    assert content_hash({"a": 1}) != content_hash([("a", 1)])


def test_container_subclasses_keep_their_type() -> None:
    point = collections.namedtuple("point", "x y")
    assert content_hash(point(1, 2)) != content_hash((1, 2))
    assert content_hash(collections.OrderedDict(a=1)) != content_hash({"a": 1})


def test_self_referencing_structures_hash() -> None:
    a: list[Any] = [1]
    a.append(a)
    b: list[Any] = [1]
    b.append(b)
    c: list[Any] = [2]
    c.append(c)
    assert content_hash(a) == content_hash(b) != content_hash(c)


@dataclasses.dataclass
class Params:
    lr: float
    data: Any


def test_dataclasses_hash_by_fields_including_frames() -> None:
    frame = pd.DataFrame({"x": [1, 2]})
    assert content_hash(Params(0.1, frame)) == content_hash(Params(0.1, frame.copy()))
    assert content_hash(Params(0.1, frame)) != content_hash(Params(0.2, frame))


def test_other_objects_hash_by_pickle() -> None:
    assert content_hash(datetime.date(2020, 1, 1)) == content_hash(datetime.date(2020, 1, 1))
    assert content_hash(datetime.date(2020, 1, 1)) != content_hash(datetime.date(2020, 1, 2))


def test_unpicklable_values_raise_unhashable_naming_the_type() -> None:
    with pytest.raises(UnhashableValueError) as info:
        content_hash({"ok": 1, "lock": [threading.Lock()]})
    assert "lock" in info.value.type_name
    assert isinstance(info.value, KernelflowError) and info.value.fix
    copy = pickle.loads(pickle.dumps(info.value))
    assert copy.type_name == info.value.type_name
    with pytest.raises(UnhashableValueError):
        content_hash(lambda x: x)


def test_hashes_do_not_depend_on_the_process() -> None:
    """Cache keys are compared across sessions: str hash randomization must not leak in."""
    script = (
        "import json, pandas as pd;"
        "from kernelflow._core.hashing import content_hash;"
        "values = [{'b': 1, 'a': {'x', 'y', 'z'}}, frozenset({'p', 'q'}),"
        " pd.DataFrame({'s': ['u', 'v'], 'f': [1.5, 2.5]}, index=pd.Index(['i', 'j'], name='k'))];"
        "print(json.dumps([content_hash(v) for v in values]))"
    )
    expected = [
        content_hash({"b": 1, "a": {"x", "y", "z"}}),
        content_hash(frozenset({"p", "q"})),
        content_hash(
            pd.DataFrame({"s": ["u", "v"], "f": [1.5, 2.5]}, index=pd.Index(["i", "j"], name="k"))
        ),
    ]
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
        )
        assert json.loads(out.stdout) == expected


# --- hash_bytes and combine -----------------------------------------------------------


def test_hash_bytes_is_xxh3_128_of_buffers() -> None:
    data = b"kernelflow" * 100
    assert hash_bytes(data) == xxhash.xxh3_128_hexdigest(data)
    assert hash_bytes(memoryview(data)) == hash_bytes(data)


def test_combine_depends_on_order_and_boundaries() -> None:
    assert combine("a", "b") != combine("b", "a")
    assert combine("ab", "c") != combine("a", "bc")
    assert combine("a", "") != combine("a")
    assert combine("x", "y") == combine("x", "y")
    with pytest.raises(TypeError):
        combine("a", None)  # type: ignore[arg-type]


# --- NumPy ----------------------------------------------------------------------------


def test_arrays_hash_dtype_shape_and_values() -> None:
    a = np.arange(6, dtype=np.int64)
    assert distinct([a, a.astype(np.uint64), a.astype(np.int32), a.reshape(2, 3), a + 1])
    assert content_hash(a) == content_hash(np.arange(6, dtype=np.int64))


def test_array_layout_does_not_matter_only_content() -> None:
    a = np.arange(12.0).reshape(3, 4)
    assert content_hash(np.asfortranarray(a)) == content_hash(a)
    assert content_hash(a[:, ::2]) == content_hash(np.ascontiguousarray(a[:, ::2]))
    assert content_hash(a.T) != content_hash(a)


def test_datetime_object_and_structured_arrays_hash() -> None:
    dates = np.array(["2020-01-01", "2020-01-02"], dtype="M8[ns]")
    assert content_hash(dates) != content_hash(dates.astype("M8[us]"))
    assert content_hash(np.array([1, "a"], dtype=object)) != content_hash(
        np.array([1, "b"], dtype=object)
    )
    rec = np.zeros(2, dtype=[("a", "i4"), ("b", "f8")])
    assert content_hash(rec) != content_hash(np.zeros(2, dtype=[("a", "i4"), ("c", "f8")]))


def test_numpy_scalars_are_tagged_by_dtype() -> None:
    assert distinct([np.float64(1.0), 1.0, np.float32(1.0), np.int64(1), np.int32(1), 1])


def test_contiguous_arrays_are_hashed_without_a_copy() -> None:
    array = np.ones(10_000_000)  # 80 MB
    tracemalloc.start()
    try:
        content_hash(array)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000


# --- pandas ---------------------------------------------------------------------------


def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "i": [1, 2, 3],
            "f": [0.5, 1.5, np.nan],
            "s": ["a", "b", None],
            "t": pd.date_range("2020-01-01", periods=3),
            "c": pd.Categorical(["x", "y", "x"]),
        }
    )


def test_equal_frames_built_differently_hash_equal() -> None:
    values = np.arange(12.0).reshape(4, 3)
    from_numpy = pd.DataFrame(values, columns=["a", "b", "c"])
    from_dict = pd.DataFrame({"a": values[:, 0], "b": values[:, 1], "c": values[:, 2]})
    assert content_hash(from_numpy) == content_hash(from_dict)
    assert content_hash(frame()) == content_hash(frame().copy())


def test_every_kind_of_change_to_a_frame_changes_its_hash() -> None:
    base = frame()
    changed_value = base.copy()
    changed_value.loc[1, "f"] = 2.5
    changed_string = base.copy()
    changed_string.loc[0, "s"] = "z"
    variants = [
        base,
        changed_value,
        changed_string,
        base.rename(columns={"i": "j"}),
        base.astype({"i": "int32"}),
        base.astype({"i": "uint64"}),  # same bytes, other dtype
        base.set_axis([10, 11, 12]),
        base.rename_axis("row"),
        base.rename_axis(columns="cols"),
        base[["f", "i", "s", "t", "c"]],
        base.set_axis(pd.Index([0, 1, 2])),  # same labels, not a RangeIndex
        base.assign(c=pd.Categorical(["x", "y", "x"], categories=["y", "x"])),
    ]
    assert distinct(variants)


def test_object_columns_keep_the_types_of_their_values() -> None:
    """pandas' own hash turns objects into str, so [1, 2] and ['1', '2'] would collide."""
    ints = pd.DataFrame({"a": pd.Series([1, 2], dtype=object)})
    strs = pd.DataFrame({"a": pd.Series(["1", "2"], dtype=object)})
    mixed = pd.DataFrame({"a": pd.Series([1, "2"], dtype=object)})
    swapped = pd.DataFrame({"a": pd.Series(["1", 2], dtype=object)})
    assert distinct([ints, strs, mixed, swapped])


def test_long_string_and_extension_columns() -> None:
    strings = pd.Series([f"s{i}" for i in range(5000)])
    other = strings.copy()
    other.iloc[4321] = "changed"
    assert content_hash(strings) == content_hash(strings.copy()) != content_hash(other)
    nullable = pd.Series([1, None, 3], dtype="Int64")
    assert content_hash(nullable) != content_hash(pd.Series([1, 0, 3], dtype="Int64"))
    assert content_hash(nullable) != content_hash(pd.Series([1.0, None, 3.0]))


def test_series_and_index_hash_name_and_index() -> None:
    s = pd.Series([1.0, 2.0], name="x")
    assert distinct([s, s.rename("y"), s.set_axis(["a", "b"]), s.values, s.index])
    multi = pd.MultiIndex.from_product([["a", "b"], [1, 2]], names=["k", "n"])
    assert distinct([multi, multi.set_names(["k", "m"]), multi[::-1]])


def test_frame_columns_are_hashed_without_copying_the_frame() -> None:
    big = pd.DataFrame(np.ones((1_000_000, 10)), columns=list("abcdefghij"))  # 80 MB
    tracemalloc.start()
    try:
        content_hash(big)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2_000_000


def test_hashing_a_frame_is_much_faster_than_pickling_it() -> None:
    big = pd.DataFrame(np.random.default_rng(0).random((1_000_000, 10)))
    content_hash(big)

    def best(fn: Any) -> float:
        times = []
        for _ in range(3):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return min(times)

    assert best(lambda: content_hash(big)) * 3 < best(lambda: pickle.dumps(big, protocol=5))
