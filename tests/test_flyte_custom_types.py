"""Custom types (issue 15, point 7): Flyte's ``TypeTransformer`` / ``TypeEngine.register``.

The program is ``examples/flyte_types/matrices.py``, a Flyte program with its
imports rewritten by the rule and nothing else: a ``Matrix`` class that pickle
cannot store (it holds a lock), with a transformer that writes its numbers to a
file. What a user notices: the workflow runs, equal matrices are cache hits and
changed ones misses, a cache hit is read back by the transformer, lineage names
the type, and a transformer that raises fails the task, saying which.
"""

from __future__ import annotations

import base64
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import EXAMPLES, ROOT
from flyte_types import matrices
from flyte_types.matrices import Matrix
from notebook_runner import make_notebook, write

import kernelflow
from kernelflow._core.hashing import content_hash
from kernelflow.errors import KernelflowWarning, TaskFailedError, UnsupportedFeatureError
from kernelflow.extend import TypeEngine, TypeTransformer
from kernelflow.store.artifacts import ArtifactRef
from kernelflow.store.home import open_store

PROGRAM = EXAMPLES / "flyte_types" / "matrices.py"


@pytest.fixture(autouse=True)
def _calls() -> None:
    matrices.CALLS.clear()
    matrices.READS.clear()


def _rewrite(source: str) -> str:
    """The import rule of README "Flyte compatibility", as tools/flytesnacks_check.py has it."""
    spec = importlib.util.spec_from_file_location(
        "flytesnacks_check", ROOT / "tools" / "flytesnacks_check.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return str(module.rewrite(source))


def test_the_flyte_program_runs_with_its_imports_rewritten_by_the_rule_alone(
    tmp_path: Path, store_home: Path
) -> None:
    ours = PROGRAM.read_text()
    flyte = ours.replace("from kernelflow import (", "from flytekit import (").replace(
        "from kernelflow.extend import", "from flytekit.extend import"
    )
    assert not re.search(r"^\s*(from|import) kernelflow", flyte, re.M)  # Flyte's own program
    assert _rewrite(flyte) == ours
    script = tmp_path / "matrices.py"
    script.write_text(_rewrite(flyte))
    done = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "trace: 12.0"


def test_an_output_of_the_type_is_stored_and_read_back_by_its_transformer() -> None:
    first = kernelflow.run(matrices.trace_wf, {"n": 3, "by": 2.0})
    assert first.outputs["o0"] == 6.0 and matrices.READS == []
    again = kernelflow.run(matrices.trace_wf, {"n": 3, "by": 2.0})
    assert again.outputs["o0"] == 6.0
    assert again.tasks["identity"].status == "cached"
    assert len(matrices.READS) == 1  # the cached identity matrix, read by to_python_value

    lineage = kernelflow.lineage(again.run_id, "identity")
    output = lineage["outputs"]["o0"]
    assert output["type"] == "Matrix (TypeTransformer 'matrix-as-text')"
    ref = ArtifactRef.from_dict(output["artifact"])
    stored = (
        base64.b64decode(ref.inline) if ref.inline else (open_store().home / ref.path).read_bytes()
    )
    assert b"1.0 0.0 0.0\n0.0 1.0 0.0\n0.0 0.0 1.0\n" in stored  # what the transformer wrote
    assert b"scratch" not in stored and b"_lock" not in stored  # not the object's own state
    assert open_store().artifacts.get(ref) == Matrix([[1, 0, 0], [0, 1, 0], [0, 0, 1]])


def test_an_equal_value_is_a_cache_hit_and_a_changed_one_a_miss() -> None:
    """Equal matrices differ in their lock and scratch id: only the transformer's bytes count."""
    assert matrices.trace(m=Matrix([[1, 2], [3, 4]])) == 5.0
    assert matrices.trace(m=Matrix([[1, 2], [3, 4]])) == 5.0
    assert matrices.CALLS == ["trace"]
    assert matrices.trace(m=Matrix([[1, 2], [3, 5]])) == 6.0
    assert matrices.CALLS == ["trace", "trace"]
    assert content_hash(Matrix([[1.0]])) == content_hash(Matrix([[1]]))
    assert content_hash(Matrix([[1.0]])) != content_hash(Matrix([[2.0]]))
    assert content_hash([Matrix([[1.0]])]) == content_hash([Matrix([[1]])])  # inside a list too


def test_a_notebook_cell_output_of_the_type_is_cached_through_its_transformer(
    tmp_path: Path,
) -> None:
    cells = [
        "from flyte_types.matrices import Matrix",
        "%%task make --cache\nm: Matrix = Matrix([[1, 2], [3, 4]])",
        "%%task trace_cell\nt = m.rows[0][0] + m.rows[1][1]",
    ]
    path = write(make_notebook(cells), tmp_path / "matrix.ipynb")
    assert kernelflow.run(kernelflow.load_notebook(path)).outputs == {"t": 5.0}
    again = kernelflow.run(kernelflow.load_notebook(path))
    assert again.outputs == {"t": 5.0} and again.tasks["make"].status == "cached"
    assert len(matrices.READS) == 1
    lineage = kernelflow.lineage(again.run_id, "make")
    assert lineage["outputs"]["m"]["type"] == "Matrix (TypeTransformer 'matrix-as-text')"


def test_a_worker_process_receives_and_returns_the_type_through_its_transformer() -> None:
    result = kernelflow.run(matrices.trace_wf, {"n": 4, "by": 0.5}, parallel=2)
    assert result.status == "succeeded" and result.outputs["o0"] == 2.0


def test_a_transformer_that_raises_fails_the_task_naming_the_task_the_variable_and_the_type() -> (
    None
):
    result = kernelflow.run(matrices.fragile_wf, {"size": 3})
    assert result.status == "failed"
    error = result.error
    assert isinstance(error, TaskFailedError)
    assert (error.task, error.variable) == ("make_fragile", "o0")
    assert error.type_name == "flyte_types.matrices.Fragile" and error.transformer == "fragile"
    assert "task 'make_fragile' produced 'o0' of type flyte_types.matrices.Fragile" in str(error)
    assert "to_literal raised ValueError: cannot write a Fragile of size 3" in str(error)
    assert matrices.CALLS == ["make_fragile"]  # nothing downstream ran
    with pytest.raises(TaskFailedError, match="transformer 'fragile' could not serialize"):
        matrices.make_fragile(size=1)


def test_a_cached_value_its_transformer_cannot_read_back_is_recomputed_with_a_warning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kernelflow.run(matrices.trace_wf, {"n": 2})

    def broken(self: object, ctx: object, lv: object, expected_python_type: object) -> None:
        raise OSError("the disk went away")

    monkeypatch.setattr(matrices.MatrixTransformer, "to_python_value", broken)
    with pytest.warns(KernelflowWarning) as caught:
        again = kernelflow.run(matrices.trace_wf, {"n": 2})
    assert again.outputs["o0"] == 4.0
    assert again.tasks["identity"].status == "succeeded"  # recomputed, not loaded
    text = " ".join(str(w.message) for w in caught)
    assert "cached output 'o0' of task 'identity' could not be read back" in text
    assert "'matrix-as-text' for flyte_types.matrices.Matrix" in text
    assert "to_python_value raised OSError: the disk went away" in text


def test_a_transformer_for_a_type_kernelflow_stores_itself_is_refused() -> None:
    class IntTransformer(TypeTransformer[int]):
        def __init__(self) -> None:
            super().__init__(name="ints", t=int)

    with pytest.raises(UnsupportedFeatureError, match=r"flytekit\.TypeEngine\.register"):
        TypeEngine.register(IntTransformer())
    assert TypeEngine.get_transformer(Matrix).name == "matrix-as-text"


def test_a_literal_is_packed_with_the_content_of_what_it_names_not_the_path(
    tmp_path: Path,
) -> None:
    """Two transformers' random paths with the same files give the same bytes; a directory
    comes back whole, in a fresh place, with primitives and binaries beside it."""
    from kernelflow import Blob, BlobMetadata, BlobType, Literal, Scalar
    from kernelflow.core.literal_bytes import pack, unpack
    from kernelflow.models.literals import Binary, LiteralMap, Primitive

    def literal(folder: Path) -> Literal:
        (folder / "sub").mkdir(parents=True)
        (folder / "a.txt").write_text("alpha")
        (folder / "sub" / "b.bin").write_bytes(b"\x00beta")
        kind = BlobType(format="dir", dimensionality=BlobType.BlobDimensionality.MULTIPART)
        blob = Literal(scalar=Scalar(blob=Blob(metadata=BlobMetadata(type=kind), uri=str(folder))))
        return Literal(
            map=LiteralMap(
                literals={
                    "data": blob,
                    "n": Literal(scalar=Scalar(primitive=Primitive(integer=3))),
                    "raw": Literal(scalar=Scalar(binary=Binary(value=b"\xff", tag="x"))),
                }
            )
        )

    first, second = pack(literal(tmp_path / "one")), pack(literal(tmp_path / "two"))
    assert first == second
    places = iter([tmp_path / "back"])
    back = unpack(first, lambda: str(next(places)))
    folder = Path(back.map.literals["data"].scalar.blob.uri)
    assert folder == tmp_path / "back"
    assert (folder / "a.txt").read_text() == "alpha"
    assert (folder / "sub" / "b.bin").read_bytes() == b"\x00beta"
    assert back.map.literals["n"].scalar.primitive.integer == 3
    assert back.map.literals["raw"].scalar.binary.value == b"\xff"
    assert back.map.literals["data"].scalar.blob.metadata.type.dimensionality == 1
