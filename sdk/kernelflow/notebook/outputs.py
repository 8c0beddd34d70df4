"""Task outputs recorded in a notebook, and read back: ``kernelflow.read_outputs(path)``.

Like scrapbook's ``glue``, each task cell of an executed notebook carries a
display output with the kernelflow mimetype. Small JSON-able values are stored
inline, so the notebook alone is enough to read them; everything else is a
reference to the artifact in the store that ran it (checksummed and, for
pickles, signed), so a DataFrame is not copied into the notebook. The record
names that store by where its artifacts are: the home, or the shared store's
URL (``$KERNELFLOW_STORE``), so a teammate configured for the same shared store
reads them on another machine.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kernelflow._core.errors import (
    IntegrityError,
    KernelflowError,
    KernelflowWarning,
    StoreError,
)

MIMETYPE = "application/vnd.kernelflow.outputs+json"
_INLINE_LIMIT = 10_000  # characters of JSON


def output_record(
    task: str, store: str, values: Mapping[str, Any], refs: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """The JSON a task cell displays: each output inline or by artifact reference.

    ``store`` names where the artifacts are (:func:`store_location`).
    """
    outputs: dict[str, Any] = {}
    for name, value in values.items():
        entry: dict[str, Any] = {"type": type(value).__name__}
        inline = _as_json(value)
        if inline is not None:
            entry["value"] = inline
        meta = refs.get(name)
        if meta:
            entry["hash"] = meta.get("hash")
            entry["artifact"] = meta.get("artifact")
        outputs[name] = entry
    return {"task": task, "store": store, "outputs": outputs}


def store_location(artifacts: Any) -> str:
    """Where an :class:`~kernelflow.store.artifacts.ArtifactStore` keeps its artifacts, as an
    outputs record names it: a directory (the home, or a ``file://`` store's), or the
    URL of an object store (any password in it masked)."""
    return str(artifacts.blobs.location)


def output_bundle(record: Mapping[str, Any]) -> dict[str, Any]:
    """A display bundle: the record, and a text line naming the outputs."""
    names = ", ".join(record["outputs"]) or "no outputs"
    return {
        MIMETYPE: dict(record),
        "text/plain": f"kernelflow outputs of {record['task']}: {names}",
    }


def _as_json(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, (int, float, str)):
        return value
    if isinstance(value, (list, dict)):
        try:
            text = json.dumps(value)
        except (TypeError, ValueError):
            return None
        return value if len(text) <= _INLINE_LIMIT else None
    return None


def read_outputs(
    path: str | os.PathLike[str],
    *,
    store: str | os.PathLike[str] | None = None,
    strict: bool = False,
) -> dict[str, Any]:
    """Every task output recorded in an executed notebook that can be read, by name.

    A notebook may come from anyone, so nothing in it decides what is trusted
    (see "Trust model" in the README). JSON values kept inline are read from
    the notebook itself. Every other value is read from ``store``, the store
    the caller names (default: ``$KERNELFLOW_HOME`` or ``./.kernelflow``, with
    its artifacts at ``$KERNELFLOW_STORE`` when that is set; a URL such as
    ``s3://bucket/prefix`` names a shared store), and verified with the caller's
    own key; the notebook's record only says which artifact. A record is read
    when it names that home or that shared store (a teammate's notebook, run
    against the same bucket); a record that says it ran against another store is
    not read from, and reading creates no store and no key.

    An executed notebook usually travels without the store that ran it, and its
    inline values are still worth having; so an output that cannot be read (a
    record naming another store, a store that does not hold the value, a pickle
    this store did not sign, a damaged artifact) is left out of the result, and
    one :class:`~kernelflow.errors.KernelflowWarning` names each such output, why,
    and the fix. The warning's ``outputs`` attribute maps those names to why.

    Parameters
    ----------
    strict:
        Raise the first output's error instead of warning, for callers that need
        every value.

    Raises
    ------
    KernelflowError
        Only with ``strict=True``: a record names another store, or the store
        does not hold the value.
    IntegrityError
        Only with ``strict=True``: the value is not intact, or is a pickle this
        store did not sign.
    """
    import nbformat

    from kernelflow.store.home import default_home

    url = None
    if store is not None and _is_url(os.fspath(store)):
        home, url = default_home(), os.fspath(store)
    else:
        home = Path(store).absolute() if store is not None else default_home()
    notebook = nbformat.read(Path(path), as_version=4)
    values: dict[str, Any] = {}
    unreadable: list[KernelflowError] = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            record = output.get("data", {}).get(MIMETYPE)
            if isinstance(record, Mapping):
                _read_record(record, _Reading(path, home, url, values, unreadable))
    if unreadable and strict:
        raise unreadable[0]
    if unreadable:
        warnings.warn(_unreadable_warning(path, unreadable, len(values)), stacklevel=2)
    return values


@dataclass(frozen=True)
class _Reading:
    """One call of :func:`read_outputs`: where from, and what it has found so far."""

    path: str | os.PathLike[str]
    home: Path
    url: str | None  # the store URL the caller named; None: $KERNELFLOW_STORE, if set
    values: dict[str, Any]
    unreadable: list[KernelflowError]


def _read_record(record: Mapping[str, Any], reading: _Reading) -> None:
    outputs = record.get("outputs")
    for name, entry in (outputs if isinstance(outputs, Mapping) else {}).items():
        if not isinstance(entry, Mapping):
            continue
        if "value" in entry:
            reading.values[name] = entry["value"]
        elif entry.get("artifact"):
            try:
                reading.values[name] = _load_artifact(record, name, entry, reading)
            except KernelflowError as error:  # made by _cannot_read
                reading.unreadable.append(error)


_ELSEWHERE_FIX = (
    "read the notebook on the machine whose store ran it, or pass store=... naming a copy "
    "of that store (or set KERNELFLOW_HOME to it; for a shared store, KERNELFLOW_STORE to "
    "its URL)"
)


def _load_artifact(
    record: Mapping[str, Any], name: str, entry: Mapping[str, Any], reading: _Reading
) -> Any:
    from kernelflow.store.artifacts import ArtifactRef
    from kernelflow.store.home import open_artifacts

    home = reading.home
    artifacts = open_artifacts(home, reading.url)  # in the home, or at the store URL
    here = store_location(artifacts)
    recorded = record.get("store")
    # The record names the caller's home (as records did before shared stores) or where
    # the caller's artifacts are: its shared store, the same bucket on any machine.
    if not isinstance(recorded, str) or not (
        _same_directory(recorded, home) or _same_location(recorded, here, artifacts)
    ):
        mine = str(home) if here == str(home) else here
        why = (
            f"kept in the store {recorded!r}, not in {mine!r}; values are read only "
            "from the store you name, never from one a notebook names"
        )
        raise _cannot_read(reading, record, name, why)
    artifact = entry["artifact"]
    inline = isinstance(artifact, Mapping) and artifact.get("inline")
    if not inline and artifacts.blobs.is_local and not (Path(here) / "artifacts").is_dir():
        why = f"kept in the store {here!r}, which does not hold it"
        raise _cannot_read(reading, record, name, why)
    try:
        return artifacts.get(ArtifactRef.from_dict(artifact))
    except IntegrityError as error:
        # The engine's fix ("kernelflow recomputes the value") is not true here.
        why = f"not readable from {str(home)!r}: its artifact is {error.reason}"
        fix = f"{_ELSEWHERE_FIX}; if this is that store, run the notebook again"
        raise _cannot_read(
            reading, record, name, why, fix, IntegrityError, path=error.path, reason=error.reason
        ) from error
    except StoreError as error:  # the store itself cannot be read (its key, say)
        raise _cannot_read(reading, record, name, error.message, error.fix, StoreError) from error


def _cannot_read(
    reading: _Reading,
    record: Mapping[str, Any],
    name: str,
    why: str,
    fix: str | None = _ELSEWHERE_FIX,
    kind: type[KernelflowError] = KernelflowError,
    **fields: Any,
) -> KernelflowError:
    """The error for one output; ``why`` is kept apart for the warning's list."""
    task = record.get("task")
    where = f"output {name!r} of task {task!r} in {os.fspath(reading.path)!r}"
    return kind(f"{where}: {why}", fix=fix, variable=name, task=task, why=why, **fields)


def _unreadable_warning(
    path: str | os.PathLike[str], unreadable: list[KernelflowError], read: int
) -> KernelflowWarning:
    """One warning for them all: a list of outputs and why, then each fix once."""
    count = len(unreadable)
    lines = [
        f"read_outputs({os.fspath(path)!r}) could not read {count} output{'s' * (count != 1)}"
        f" (the {read} it could read are returned):"
    ]
    lines += [f"  - {e.variable!r} of task {e.task!r}: {e.why}" for e in unreadable]
    fixes = list(dict.fromkeys(e.fix for e in unreadable if e.fix))
    # A fix that another one extends (the integrity fix adds "run it again") goes.
    lines += [f"  Fix: {f}" for f in fixes if not any(o != f and o.startswith(f) for o in fixes)]
    warning = KernelflowWarning("\n".join(lines))
    warning.outputs = {e.variable: e.why for e in unreadable}  # type: ignore[attr-defined]
    return warning


def _same_directory(recorded: str, home: Path) -> bool:
    try:
        return Path(recorded).resolve() == home.resolve()
    except (OSError, ValueError):
        return False


def _same_location(recorded: str, here: str, artifacts: Any) -> bool:
    """Whether a record's store is where ``artifacts`` are: the same directory, or the
    same object store URL (a trailing ``/`` aside)."""
    if artifacts.blobs.is_local:
        return _same_directory(recorded, Path(here))
    return recorded.rstrip("/") == here.rstrip("/")


def _is_url(store: str) -> bool:
    """A store URL (``s3://bucket/prefix``, ``file:///mount``), not a home directory."""
    return "://" in store or "::" in store


def write_executed_copy(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    run_id: str,
    params: Mapping[str, Any],
    store_home: str,
) -> Path:
    """``kernelflow run nb.ipynb --output out.ipynb``: the notebook with what the run made.

    The copy gets papermill's ``injected-parameters`` cell for the parameters
    given, and each task cell the record of its outputs, so that
    :func:`read_outputs` works on it as on a notebook papermill executed.
    """
    import nbformat
    from nbformat.v4 import new_code_cell, new_output

    from kernelflow.notebook.cells import classify
    from kernelflow.store.home import open_store

    notebook = nbformat.read(Path(source), as_version=4)
    store = open_store(store_home)
    location = store_location(store.artifacts)
    run = store.runs.get_run(run_id) or {}
    finished = store.runs.finished_nodes(run_id)
    index = 0
    for cell in notebook.cells:
        if cell.cell_type != "code" or not cell.source.strip():
            continue
        index += 1
        classified = classify(index, cell.source, cell.metadata.get("tags", []))
        if classified.spec is None or classified.spec.name not in finished:
            continue
        refs = finished[classified.spec.name].get("outputs", {})
        values = {name: _load_value(store, meta) for name, meta in refs.items()}
        record = output_record(classified.spec.name, location, values, refs)
        bundle = output_bundle(record)
        cell.outputs = [new_output("display_data", data=bundle)]
    if params:
        lines = [f"{name} = {value!r}" for name, value in params.items()]
        injected = new_code_cell(
            "# Parameters\n" + "\n".join(lines), metadata={"tags": ["injected-parameters"]}
        )
        position = next(
            (
                i + 1
                for i, c in enumerate(notebook.cells)
                if "parameters" in c.metadata.get("tags", [])
            ),
            0,
        )
        notebook.cells.insert(position, injected)
    notebook.metadata.setdefault("kernelflow", {})["run"] = {
        "run_id": run_id,
        "status": run.get("status"),
        "store": location,
    }
    nbformat.validate(notebook)
    target = Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, target)
    return target


def _load_value(store: Any, meta: Mapping[str, Any]) -> Any:
    from kernelflow.store.artifacts import ArtifactRef

    return store.artifacts.get(ArtifactRef.from_dict(meta["artifact"]))
