"""The artifact store: faithful round trips, atomic writes, and nothing damaged ever loaded."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import os
import pickle
import stat
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xxhash

from kernelflow._core.hashing import hash_bytes
from kernelflow.errors import IntegrityError, StoreError
from kernelflow.store.artifacts import ArtifactRef, ArtifactStore


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    """A store that writes every value to a file (small pickles are tested inline below)."""
    return ArtifactStore(tmp_path / "home", inline_limit=0)


def corrupt(store: ArtifactStore, ref: ArtifactRef, edit: Any) -> None:
    path = store.root / ref.path
    path.write_bytes(edit(path.read_bytes()))


def flip(data: bytes, at: int | None = None) -> bytes:
    at = len(data) // 2 if at is None else at
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


# --- round trips ----------------------------------------------------------------------

PARQUET_FRAMES = {
    "ints": pd.DataFrame({"a": [1, 2, 3], "b": np.array([4, 5, 6], dtype="int32")}),
    "floats": pd.DataFrame({"x": [0.5, np.nan, 2.5], "y": np.ones(3, dtype="float32")}),
    "strings": pd.DataFrame({"s": ["a", None, "c"]}),
    "datetimes": pd.DataFrame(
        {
            "t": pd.date_range("2020-01-01", periods=3),
            "tz": pd.date_range("2020-01-01", periods=3, tz="Europe/Paris"),
            "d": pd.to_timedelta([1, 2, 3], unit="s"),
        }
    ),
    "categoricals": pd.DataFrame(
        {"c": pd.Categorical(["lo", "hi", None], categories=["lo", "hi"], ordered=True)}
    ),
    "nullable": pd.DataFrame(
        {"n": pd.array([1, None, 3], dtype="Int64"), "b": pd.array([True, None, False])}
    ),
    "named_index": pd.DataFrame({"v": [1, 2, 3]}, index=pd.Index(["x", "y", "z"], name="key")),
    "range_index": pd.DataFrame({"v": [1, 2, 3]}, index=pd.RangeIndex(10, 16, 2, name="r")),
    "multi_index": pd.DataFrame(
        {"v": [1, 2, 3, 4]},
        index=pd.MultiIndex.from_product([["a", "b"], [1, 2]], names=["k", "n"]),
    ),
    "time_series": pd.DataFrame({"v": [1.0, 2.0, 3.0]}, index=pd.date_range("2020", periods=3)),
    "empty_rows": pd.DataFrame({"a": pd.Series([], dtype="float64")}),
}

PICKLED_FRAMES = {
    "object_column": pd.DataFrame({"o": pd.Series([1, "two", Decimal("3")], dtype=object)}),
    "int_column_names": pd.DataFrame(np.eye(2)),
    "seconds_datetimes": pd.DataFrame(
        {"t": pd.date_range("2020", periods=2).astype("datetime64[s]")}
    ),
    "python_strings": pd.DataFrame({"s": pd.array(["a", None], dtype="string[python]")}),
    "int_categories": pd.DataFrame({"c": pd.Categorical([1, 2, 1])}),
    "tuple_attrs": pd.DataFrame({"a": [1]}).pipe(lambda f: f.attrs.update(k=(1, 2)) or f),
    "duplicate_columns": pd.DataFrame([[1, 2]], columns=["a", "a"]),
}


@pytest.mark.parametrize("name", PARQUET_FRAMES)
def test_typical_frames_round_trip_through_parquet(store: ArtifactStore, name: str) -> None:
    frame = PARQUET_FRAMES[name]
    ref = store.put(frame)
    assert ref.format == "parquet" and ref.path.endswith(".parquet")
    assert ref.signature is None
    pd.testing.assert_frame_equal(
        store.get(ref), frame, check_exact=True, check_index_type=True, check_column_type=True
    )


@pytest.mark.parametrize("name", PICKLED_FRAMES)
def test_frames_parquet_would_alter_are_pickled(store: ArtifactStore, name: str) -> None:
    frame = PICKLED_FRAMES[name]
    ref = store.put(frame)
    assert ref.format == "pickle"
    out = store.get(ref)
    pd.testing.assert_frame_equal(out, frame, check_exact=True, check_column_type=True)
    assert out.attrs == frame.attrs


ARRAYS = {
    "float": np.arange(12.0).reshape(3, 4),
    "fortran": np.asfortranarray(np.arange(12).reshape(3, 4)),
    "strided": np.arange(20)[::3],
    "scalar": np.array(7),
    "empty": np.zeros((0, 3)),
    "datetime": np.array(["2020-01-01", "NaT"], dtype="M8[ns]"),
    "unicode": np.array(["x", "yz"]),
    "structured": np.array([(1, 2.5)], dtype=[("a", "i4"), ("b", "f8")]),
}


@pytest.mark.parametrize("name", ARRAYS)
def test_arrays_round_trip_as_npy(store: ArtifactStore, name: str) -> None:
    array = ARRAYS[name]
    ref = store.put(array)
    assert ref.format == "npy"
    out = store.get(ref)
    assert out.dtype == array.dtype and out.shape == array.shape
    np.testing.assert_array_equal(out, array)
    out[...] = out  # the loaded array is an ordinary, writable array


def test_npy_files_are_standard(store: ArtifactStore) -> None:
    array = np.asfortranarray(np.arange(6.0).reshape(2, 3))
    ref = store.put(array)
    np.testing.assert_array_equal(np.load(store.root / ref.path, allow_pickle=False), array)


@pytest.mark.parametrize(
    "value", [42, "text", None, {"a": [1, 2.5]}, np.array([1, "x"], dtype=object), Decimal("1.5")]
)
def test_other_values_are_pickled_and_signed(store: ArtifactStore, value: Any) -> None:
    ref = store.put(value)
    assert ref.format == "pickle" and ref.path.endswith(".pkl") and ref.signature
    out = store.get(ref)
    if isinstance(value, np.ndarray):
        np.testing.assert_array_equal(out, value)
    else:
        assert out == value and type(out) is type(value)


def test_unpicklable_value_raises_store_error_and_leaves_no_file(store: ArtifactStore) -> None:
    with pytest.raises(StoreError) as info:
        store.put(lambda: 1)
    assert info.value.fix
    assert not list(store.root.rglob("*.tmp")) and not list(store.root.rglob("*.pkl"))


# --- layout and references ------------------------------------------------------------


def test_files_are_content_addressed(store: ArtifactStore) -> None:
    frame = PARQUET_FRAMES["strings"]
    ref = store.put(frame)
    path = store.root / ref.path
    data = path.read_bytes()
    assert ref.path == f"artifacts/{ref.checksum[:2]}/{ref.checksum}.parquet"
    assert ref.checksum == hash_bytes(data) and ref.size == len(data)
    assert store.put(frame.copy()) == ref
    assert len(list((store.root / "artifacts").rglob("*.parquet"))) == 1


def test_refs_survive_json(store: ArtifactStore) -> None:
    ref = store.put({"k": "v"})
    again = ArtifactRef.from_dict(json.loads(json.dumps(ref.to_dict())))
    assert again == ref and store.get(again) == {"k": "v"}


def test_a_malformed_record_is_an_integrity_error() -> None:
    with pytest.raises(IntegrityError):
        ArtifactRef.from_dict({"path": "artifacts/ab/x.pkl", "format": "pickle"})


def test_exists_and_delete(store: ArtifactStore) -> None:
    ref = store.put([1, 2, 3])
    assert store.exists(ref)
    store.delete(ref)
    assert not store.exists(ref)
    store.delete(ref)  # deleting twice is fine
    with pytest.raises(IntegrityError) as info:
        store.get(ref)
    assert info.value.reason == "missing"


def test_store_directory_and_key_are_private(store: ArtifactStore) -> None:
    store.put("secret")
    assert stat.S_IMODE(store.root.stat().st_mode) == 0o700
    key = store.root / "secret.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and len(key.read_bytes()) == 32


def test_the_key_is_kept_across_store_instances(store: ArtifactStore) -> None:
    ref = store.put({"a": 1})
    key = (store.root / "secret.key").read_bytes()
    other = ArtifactStore(store.root, inline_limit=0)
    assert other.get(ref) == {"a": 1}
    other.put({"b": 2})
    assert (store.root / "secret.key").read_bytes() == key


def test_writes_leave_no_temporary_files(store: ArtifactStore) -> None:
    for value in (1, PARQUET_FRAMES["ints"], np.arange(5)):
        store.put(value)
    assert not [p for p in store.root.rglob("*") if p.name.startswith(".")]


def test_a_failed_write_leaves_nothing_behind(
    store: ArtifactStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(*args: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(StoreError, match="No space left"):
        store.put(np.arange(1000))
    assert not [p for p in (store.root / "artifacts").rglob("*") if p.is_file()]


# --- integrity --------------------------------------------------------------------------

DAMAGE = {
    "truncated": lambda data: data[:-7],
    "extended": lambda data: data + b"\0",
    "flipped_byte": flip,
    "flipped_first_byte": lambda data: flip(data, 0),
    "emptied": lambda data: b"",
}
VALUES = {"parquet": PARQUET_FRAMES["ints"], "npy": np.arange(100.0), "pickle": {"a": 1}}


@pytest.mark.parametrize("damage", DAMAGE)
@pytest.mark.parametrize("fmt", VALUES)
def test_damaged_files_are_detected_never_loaded(
    store: ArtifactStore, fmt: str, damage: str
) -> None:
    ref = store.put(VALUES[fmt])
    assert ref.format == fmt
    corrupt(store, ref, DAMAGE[damage])
    with pytest.raises(IntegrityError) as info:
        store.get(ref)
    error = info.value
    assert error.path == ref.path and error.reason
    assert "recomputed" in str(error)
    assert pickle.loads(pickle.dumps(error)).reason == error.reason


def test_a_damaged_file_is_replaced_by_the_next_put(store: ArtifactStore) -> None:
    value = VALUES["npy"]
    ref = store.put(value)
    corrupt(store, ref, flip)
    with pytest.raises(IntegrityError):
        store.get(ref)
    assert store.put(value) == ref
    np.testing.assert_array_equal(store.get(ref), value)


class Exploit:
    """Unpickling this creates a marker file: proof that bytes were unpickled."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path(self.marker).touch, ())


def test_a_pickle_signed_with_another_key_is_never_unpickled(
    store: ArtifactStore, tmp_path: Path
) -> None:
    store.put({"innocent": True})
    marker = tmp_path / "pwned"
    evil = pickle.dumps(Exploit(str(marker)), protocol=5)
    checksum = hash_bytes(evil)  # a consistent file: only the signature can tell
    path = f"artifacts/{checksum[:2]}/{checksum}.pkl"
    (store.root / path).parent.mkdir(parents=True, exist_ok=True)
    (store.root / path).write_bytes(evil)
    other_key = hmac.new(b"k" * 32, evil, hashlib.sha256).hexdigest()
    for signature in (other_key, None, "0" * 64):
        with pytest.raises(IntegrityError, match="pickle"):
            store.get(ArtifactRef(path, "pickle", len(evil), checksum, signature))
    assert not marker.exists()


def test_a_matching_checksum_with_a_foreign_signature_is_refused(store: ArtifactStore) -> None:
    ref = store.put([1, 2, 3])
    data = (store.root / ref.path).read_bytes()
    resigned = hmac.new(os.urandom(32), data, hashlib.sha256).hexdigest()
    with pytest.raises(IntegrityError, match="signature"):
        store.get(ArtifactRef(ref.path, ref.format, ref.size, ref.checksum, resigned))


def test_refs_cannot_point_outside_the_store(store: ArtifactStore) -> None:
    store.put(1)
    secret = store.root / "secret.key"
    for path in ("secret.key", "../outside.pkl", str(secret), "artifacts/ab/abc.pkl"):
        ref = ArtifactRef(path, "pickle", 32, "ab" * 16, None)
        with pytest.raises(IntegrityError):
            store.get(ref)
        assert not store.exists(ref)


def test_a_format_that_does_not_match_the_file_is_refused(store: ArtifactStore) -> None:
    ref = store.put(np.arange(3))
    with pytest.raises(IntegrityError):
        store.get(ArtifactRef(ref.path, "pickle", ref.size, ref.checksum, None))


# --- several processes at once ----------------------------------------------------------

WRITER = """
import json, sys, time
import numpy as np, pandas as pd
from kernelflow.store.artifacts import ArtifactStore
root, start, kind = sys.argv[1], float(sys.argv[2]), sys.argv[3]
rng = np.random.default_rng(0)
if kind == "frame":
    value = pd.DataFrame(rng.random((500_000, 8)), columns=list("abcdefgh"))
else:
    value = {"small": 1}
store = ArtifactStore(root)
time.sleep(max(0.0, start - time.time()))
ref = store.put(value)
print(json.dumps({"ref": ref.to_dict(), "key": store._signing_key().hex()}))
"""


def run_writers(root: Path, kind: str, count: int = 4) -> list[dict[str, Any]]:
    start = time.time() + 3.0  # all of them put at the same moment, after importing
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(root), str(start), kind],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(count)
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        results.append(json.loads(out))
    return results


def test_concurrent_puts_of_the_same_frame(tmp_path: Path) -> None:
    frame = pd.DataFrame(np.random.default_rng(0).random((500_000, 8)), columns=list("abcdefgh"))
    expected = ArtifactStore(tmp_path / "reference").put(frame)
    root = tmp_path / "shared"
    final = root / expected.path
    start = time.time()
    results = run_writers(root, "frame")
    assert time.time() - start < 120
    refs = {json.dumps(r["ref"], sort_keys=True) for r in results}
    assert refs == {json.dumps(expected.to_dict(), sort_keys=True)}
    assert final.stat().st_size == expected.size
    pd.testing.assert_frame_equal(ArtifactStore(root).get(expected), frame)
    assert not [p for p in root.rglob("*") if p.name.endswith(".tmp")]


def test_a_reader_never_sees_half_a_file(tmp_path: Path) -> None:
    frame = pd.DataFrame(np.random.default_rng(0).random((500_000, 8)), columns=list("abcdefgh"))
    expected = ArtifactStore(tmp_path / "reference").put(frame)
    root = tmp_path / "shared"
    reader = ArtifactStore(root)
    start = time.time() + 3.0
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(root), str(start), "frame"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(3)
    ]
    seen = 0
    while any(p.poll() is None for p in procs):
        if (root / expected.path).exists():
            pd.testing.assert_frame_equal(reader.get(expected), frame)  # never IntegrityError
            seen += 1
        else:
            time.sleep(0.001)
    for proc in procs:
        proc.communicate()
        assert proc.returncode == 0
    assert seen > 0
    assert reader.get(expected).shape == frame.shape


def test_racing_processes_agree_on_one_key(tmp_path: Path) -> None:
    root = tmp_path / "fresh"
    results = run_writers(root, "small")
    keys = {r["key"] for r in results}
    assert keys == {(root / "secret.key").read_bytes().hex()}
    store = ArtifactStore(root)
    for result in results:
        assert store.get(ArtifactRef.from_dict(result["ref"])) == {"small": 1}


def test_small_pickles_are_inline_checked_and_signed(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "home")
    ref = store.put({"answer": 42})
    assert ref.inline is not None and not (tmp_path / "home" / "artifacts").exists()
    assert store.get(ArtifactRef.from_dict(ref.to_dict())) == {"answer": 42}
    assert store.put(list(range(5000))).inline is None  # too big: a file

    data = bytearray(base64.b64decode(ref.inline))
    data[-2] ^= 0xFF
    flipped = dataclasses.replace(ref, inline=base64.b64encode(bytes(data)).decode())
    with pytest.raises(IntegrityError, match="corrupted"):
        store.get(flipped)
    forged = pickle.dumps({"answer": -1})
    tampered = dataclasses.replace(
        ref,
        inline=base64.b64encode(forged).decode(),
        size=len(forged),
        checksum=xxhash.xxh3_128_hexdigest(forged),
    )
    with pytest.raises(IntegrityError, match="signature"):
        store.get(tampered)
