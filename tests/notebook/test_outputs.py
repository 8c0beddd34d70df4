"""``read_outputs``: a notebook that came from elsewhere never chooses what runs (issue 16, #1).

The attacker's notebook below carries an output record whose value is a pickle
that would run ``os.system``, signed with a key the attacker ships in a store
directory of their own beside the notebook. Reading it must execute nothing.

What cannot be read is left out and named in one warning, with the fix; the
rest is returned (issue 11, point 7). ``strict=True`` raises instead.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import pickle
from pathlib import Path

import nbformat
import pytest
import xxhash
from nbformat.v4 import new_code_cell, new_notebook, new_output

import kernelflow
from kernelflow.errors import IntegrityError, KernelflowError, KernelflowWarning
from kernelflow.notebook.outputs import MIMETYPE, output_bundle, output_record, store_location
from kernelflow.store.home import open_store


class _RunsCode:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


def _signed_pickle_ref(payload: bytes, key: bytes) -> dict[str, object]:
    checksum = xxhash.xxh3_128_hexdigest(payload)
    return {
        "path": f"inline:{checksum}",
        "format": "pickle",
        "size": len(payload),
        "checksum": checksum,
        "signature": hmac.new(key, payload, hashlib.sha256).hexdigest(),
        "inline": base64.b64encode(payload).decode("ascii"),
    }


def _hostile_notebook(folder: Path, store: str, key: bytes) -> tuple[Path, Path]:
    """A notebook whose record names ``store`` and holds a pickle signed with ``key``."""
    marker = folder / "pwned"
    ref = _signed_pickle_ref(pickle.dumps(_RunsCode(marker)), key)
    record = {
        "task": "train",
        "store": store,
        "outputs": {"model": {"type": "object", "artifact": ref}},
    }
    cell = new_code_cell("%%task train\nmodel = object()")
    cell.outputs = [new_output("display_data", data={MIMETYPE: record})]
    path = folder / "shared.ipynb"
    nbformat.write(new_notebook(cells=[cell]), path)
    return path, marker


def _read_warns(path: Path, match: str, **options: object) -> tuple[dict, KernelflowWarning]:
    """``read_outputs`` that must warn exactly once, matching ``match``: values, warning."""
    with pytest.warns(KernelflowWarning, match=match) as caught:
        values = kernelflow.read_outputs(path, **options)  # type: ignore[arg-type]
    assert len(caught) == 1
    warning = caught[0].message
    assert isinstance(warning, KernelflowWarning)
    return values, warning


def test_a_notebook_naming_its_own_store_and_key_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    evil_store = tmp_path / "results_store"
    evil_store.mkdir()
    evil_key = os.urandom(32)
    (evil_store / "secret.key").write_bytes(evil_key)
    monkeypatch.chdir(tmp_path)
    for named in ("results_store", str(evil_store)):  # relative and absolute
        path, marker = _hostile_notebook(tmp_path, named, evil_key)
        values, warning = _read_warns(path, "never from one a notebook names")
        assert values == {} and list(warning.outputs) == ["model"]  # type: ignore[attr-defined]
        with pytest.raises(KernelflowError, match="never from one a notebook names"):
            kernelflow.read_outputs(path, strict=True)
        assert not marker.exists()


def test_a_pickle_not_signed_by_the_callers_store_is_not_loaded(
    tmp_path: Path, store_home: Path
) -> None:
    open_store(store_home).artifacts.put(object.__new__(_Plain))  # the user's store has a key
    path, marker = _hostile_notebook(tmp_path, str(store_home), os.urandom(32))
    values, warning = _read_warns(path, "signature does not match")
    assert values == {} and "nothing to do" not in str(warning)
    with pytest.raises(IntegrityError, match="signature does not match") as raised:
        kernelflow.read_outputs(path, strict=True)
    assert raised.value.fix is not None and "nothing to do" not in raised.value.fix
    assert "machine whose store ran it" in raised.value.fix
    assert not marker.exists()


def test_reading_creates_no_key_and_no_store(tmp_path: Path, store_home: Path) -> None:
    elsewhere = tmp_path / "named"
    elsewhere.mkdir()
    path, marker = _hostile_notebook(tmp_path, str(elsewhere), os.urandom(32))
    _read_warns(path, "key this store does not have", store=elsewhere)
    with pytest.raises(IntegrityError, match="key this store does not have"):
        kernelflow.read_outputs(path, store=elsewhere, strict=True)
    assert list(elsewhere.iterdir()) == [] and not store_home.exists()
    assert not marker.exists()


class _Plain:
    pass


def test_values_of_the_callers_own_store_are_read(tmp_path: Path, store_home: Path) -> None:
    store = open_store(store_home)
    values = {"size": 3, "model": {1, 2, 3}}  # a set is not JSON: kept by reference
    refs = {
        name: {"artifact": store.artifacts.put(value).to_dict()} for name, value in values.items()
    }
    cell = new_code_cell("%%task fit\nsize = 3\nmodel = {1, 2, 3}")
    bundle = output_bundle(output_record("fit", str(store.home), values, refs))
    cell.outputs = [new_output("display_data", data=bundle)]
    path = tmp_path / "executed.ipynb"
    nbformat.write(new_notebook(cells=[cell]), path)
    assert kernelflow.read_outputs(path) == values
    # Named explicitly, the same store answers; another store is refused.
    assert kernelflow.read_outputs(path, store=store_home) == values
    # Another store does not hold the set; the inline value is still read.
    assert _read_warns(path, "not in", store=tmp_path / "other")[0] == {"size": 3}
    with pytest.raises(KernelflowError, match="not in"):
        kernelflow.read_outputs(path, store=tmp_path / "other", strict=True)


def _record_cell(task: str, store: str, outputs: dict[str, dict]) -> object:
    cell = new_code_cell(f"%%task {task}\n...")
    record = {"task": task, "store": store, "outputs": outputs}
    cell.outputs = [new_output("display_data", data={MIMETYPE: record})]
    return cell


def test_what_can_be_read_is_returned_and_the_rest_named_in_one_warning(
    tmp_path: Path, store_home: Path
) -> None:
    store = open_store(store_home)
    kept = store.artifacts.put({1, 2, 3}).to_dict()
    lost = store.artifacts.put(set(range(5000)))  # large: a file, which goes missing
    (store_home / lost.path).unlink()
    foreign = _signed_pickle_ref(pickle.dumps({4}), os.urandom(32))
    home = str(store_home)
    cells = [
        _record_cell(
            "fit",
            home,
            {
                "size": {"type": "int", "value": 3},
                "model": {"type": "set", "artifact": kept},
                "big": {"type": "set", "artifact": lost.to_dict()},
                "planted": {"type": "set", "artifact": foreign},
            },
        ),
        _record_cell("other", str(tmp_path / "theirs"), {"df": {"type": "x", "artifact": kept}}),
    ]
    path = tmp_path / "executed.ipynb"
    nbformat.write(new_notebook(cells=cells), path)

    values, warning = _read_warns(path, "could not read 3 outputs")
    assert values == {"size": 3, "model": {1, 2, 3}}
    assert warning.outputs == {  # type: ignore[attr-defined]
        "big": f"not readable from {home!r}: its artifact is missing",
        "planted": f"not readable from {home!r}: its artifact is a pickle whose signature "
        "does not match this store",
        "df": f"kept in the store {str(tmp_path / 'theirs')!r}, not in {home!r}; values are "
        "read only from the store you name, never from one a notebook names",
    }
    text = str(warning)
    assert "'big' of task 'fit'" in text and "'df' of task 'other'" in text
    assert text.count("Fix: read the notebook on the machine whose store ran it") == 1
    assert text.endswith("if this is that store, run the notebook again")
    assert "nothing to do" not in text
    with pytest.raises(IntegrityError, match=r"'big' of task 'fit'.*missing"):
        kernelflow.read_outputs(path, strict=True)


def test_a_store_without_artifacts_is_named_as_not_holding_them(
    tmp_path: Path, store_home: Path
) -> None:
    file_ref = {"path": "artifacts/ab/" + "ab" * 16 + ".pkl", "format": "pickle", "size": 9}
    file_ref.update(checksum="ab" * 16, signature="00")
    cell = _record_cell("fit", str(store_home), {"model": {"type": "set", "artifact": file_ref}})
    path = tmp_path / "executed.ipynb"
    nbformat.write(new_notebook(cells=[cell]), path)
    values, warning = _read_warns(path, "which does not hold it")
    assert values == {} and "pass store=... naming a copy of that store" in str(warning)
    assert not store_home.exists()  # reading made no store


# --- a shared store ($KERNELFLOW_STORE): any machine configured for it reads the record ---


@pytest.fixture
def shared(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, str]:
    """A notebook that another machine (home) executed against a shared store, with the
    team's key (which this process has too): its path, and the store's URL."""
    monkeypatch.setenv("KERNELFLOW_STORE_KEY", os.urandom(32).hex())
    url = f"memory://kf-{os.urandom(4).hex()}/team"
    monkeypatch.setenv("KERNELFLOW_STORE", url)
    store = open_store(tmp_path / "their-home")
    values = {"size": 3, "model": set(range(2000))}  # a pickle over 4 KB: an object at url
    refs = {
        name: {"artifact": store.artifacts.put(value).to_dict()} for name, value in values.items()
    }
    assert not refs["model"]["artifact"].get("inline")
    record = output_record("fit", store_location(store.artifacts), values, refs)
    assert record["store"] == url  # named by the shared store, not by their home
    cell = new_code_cell("%%task fit\n...")
    cell.outputs = [new_output("display_data", data=output_bundle(record))]
    path = tmp_path / "executed.ipynb"
    nbformat.write(new_notebook(cells=[cell]), path)
    return path, url


def test_a_record_naming_the_shared_store_is_read_from_another_home(
    shared: tuple[Path, str], store_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, url = shared
    expected = {"size": 3, "model": set(range(2000))}
    assert kernelflow.read_outputs(path, strict=True) == expected  # this home, same store
    monkeypatch.delenv("KERNELFLOW_STORE")
    assert kernelflow.read_outputs(path, store=url + "/", strict=True) == expected  # named
    assert not store_home.exists()  # reading made no home


@pytest.mark.parametrize("how", ["KERNELFLOW_STORE", "store="])
def test_a_record_naming_another_shared_store_is_not_read(
    how: str, shared: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, theirs = shared
    ours = f"memory://kf-{os.urandom(4).hex()}/team"
    monkeypatch.setenv("KERNELFLOW_STORE", ours)
    options = {}
    if how == "store=":
        monkeypatch.delenv("KERNELFLOW_STORE")
        options = {"store": ours}
    values, warning = _read_warns(path, "could not read 1 output", **options)
    assert values == {"size": 3}  # the inline value only
    assert warning.outputs == {  # type: ignore[attr-defined]
        "model": f"kept in the store {theirs!r}, not in {ours!r}; values are read only "
        "from the store you name, never from one a notebook names"
    }
    assert "KERNELFLOW_STORE to its URL" in str(warning)


def test_the_shared_store_is_read_with_the_readers_own_key(
    shared: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KERNELFLOW_STORE_KEY", os.urandom(32).hex())  # not the team's key
    with pytest.raises(IntegrityError, match="signature does not match"):
        kernelflow.read_outputs(shared[0], strict=True)
