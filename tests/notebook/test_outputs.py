"""``read_outputs``: a notebook that came from elsewhere never chooses what runs (issue 16, #1).

The attacker's notebook below carries an output record whose value is a pickle
that would run ``os.system``, signed with a key the attacker ships in a store
directory of their own beside the notebook. Reading it must execute nothing.
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
from kernelflow.errors import IntegrityError, KernelflowError
from kernelflow.notebook.outputs import MIMETYPE, output_bundle, output_record
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
        with pytest.raises(KernelflowError, match="never from one a notebook names"):
            kernelflow.read_outputs(path)
        assert not marker.exists()


def test_a_pickle_not_signed_by_the_callers_store_is_not_loaded(
    tmp_path: Path, store_home: Path
) -> None:
    open_store(store_home).artifacts.put(object.__new__(_Plain))  # the user's store has a key
    path, marker = _hostile_notebook(tmp_path, str(store_home), os.urandom(32))
    with pytest.raises(IntegrityError, match="signature does not match"):
        kernelflow.read_outputs(path)
    assert not marker.exists()


def test_reading_creates_no_key_and_no_store(tmp_path: Path, store_home: Path) -> None:
    elsewhere = tmp_path / "named"
    elsewhere.mkdir()
    path, marker = _hostile_notebook(tmp_path, str(elsewhere), os.urandom(32))
    with pytest.raises(IntegrityError, match="key this store does not have"):
        kernelflow.read_outputs(path, store=elsewhere)
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
    with pytest.raises(KernelflowError, match="not in"):
        kernelflow.read_outputs(path, store=tmp_path / "other")
