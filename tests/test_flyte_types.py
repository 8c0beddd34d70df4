"""Flyte's types, resources and secrets (issue 15): real files, real Parquet, a real store."""

from __future__ import annotations

import json
import os
import typing
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from flyte_types import columns, files, models, resources, tables

import kernelflow
from kernelflow.errors import IntegrityError, OutputTypeError, ResourceError, SecretError
from kernelflow.store.home import open_store
from kernelflow.types.directory import FlyteDirectory
from kernelflow.types.file import FlyteFile
from kernelflow.types.structured import StructuredDataset, kwtypes


def store_bytes(home: Path) -> bytes:
    """Every byte of every file in the store, to look for what must not be there."""
    return b"".join(path.read_bytes() for path in sorted(home.rglob("*")) if path.is_file())


# --- files ---------------------------------------------------------------------------


def test_an_edited_file_is_a_cache_miss_and_a_renamed_identical_one_a_hit(
    tmp_path: Path,
) -> None:
    files.CALLS.clear()
    data = tmp_path / "a.csv"
    data.write_text("x\n1\n2\n")
    assert files.count_rows(data=FlyteFile(data)) == 3
    assert files.count_rows(data=str(data)) == 3  # a path is converted, hashed by content
    assert files.CALLS == ["count_rows"]
    renamed = tmp_path / "renamed.csv"
    data.rename(renamed)
    assert files.count_rows(data=str(renamed)) == 3
    assert files.CALLS == ["count_rows"]  # same bytes under another name: a hit
    renamed.write_text("x\n1\n2\n3\n")
    assert files.count_rows(data=str(renamed)) == 4
    assert files.CALLS == ["count_rows", "count_rows"]  # edited: a miss


def test_a_returned_path_is_copied_into_the_store_and_checksummed(
    tmp_path: Path, store_home: Path
) -> None:
    data = tmp_path / "in.csv"
    data.write_text("a\nb\n")
    report = files.report_wf(data=str(data))
    assert isinstance(report, FlyteFile)
    assert Path(report.path).read_text() == "rows: 2\n"
    stored = list((store_home / "artifacts" / "files").rglob("report.txt"))
    assert len(stored) == 1 and stored[0].read_text() == "rows: 2\n"

    # A cache hit is the store's copy, verified before use.
    loaded = kernelflow.run(files.report_wf, {"data": str(data)}).outputs["o0"]
    assert Path(loaded.path) == stored[0]
    with pytest.raises(IntegrityError, match="damaged"):
        stored[0].write_text("rows: 9\n")  # same size, other bytes
        FlyteFile.__kernelflow_verify__(loaded)
    with pytest.warns(UserWarning, match="damaged"):  # detected, reported, recomputed
        again = kernelflow.run(files.report_wf, {"data": str(data)}).outputs["o0"]
    assert Path(again.path).read_text() == "rows: 2\n"
    assert stored[0].read_text() == "rows: 2\n"  # the copy is repaired


def test_typed_files_open_streaming_and_remote_sources(tmp_path: Path) -> None:
    fsspec = pytest.importorskip("fsspec")
    csv = typing.TypeVar("csv")
    assert FlyteFile[csv] is FlyteFile[csv] and FlyteFile[csv].extension == "csv"
    with fsspec.open("memory://bucket/data.csv", "wb") as remote:
        remote.write(b"x\n1\n2\n3\n4\n")
    lazy = FlyteFile[csv]("memory://bucket/data.csv")
    assert lazy.remote_source == "memory://bucket/data.csv"
    assert not lazy.downloaded  # nothing read yet
    with lazy.open("rb") as stream:
        assert stream.read(2) == b"x\n"
    assert not lazy.downloaded
    assert files.count_rows(data=lazy) == 5
    local = lazy.download()
    assert Path(local).read_bytes() == b"x\n1\n2\n3\n4\n" and lazy.path == local


def test_a_directory_is_stored_and_cached_by_content(tmp_path: Path, store_home: Path) -> None:
    files.CALLS.clear()
    folder = files.make_folder(n=3)
    assert isinstance(folder, FlyteDirectory)
    assert files.total_size(folder=folder) == 6
    assert list((store_home / "artifacts" / "dirs").rglob("part-2.txt"))
    copy = tmp_path / "elsewhere"
    copy.mkdir()
    for base, name in folder.crawl():
        (copy / name).write_bytes(Path(base, name).read_bytes())
    assert files.total_size(folder=str(copy)) == 6
    assert files.CALLS == ["total_size"]
    (copy / "part-0.txt").write_text("yy")
    assert files.total_size(folder=str(copy)) == 7
    assert files.CALLS == ["total_size", "total_size"]


# --- structured datasets and dataclasses -----------------------------------------------


def test_structured_datasets_from_parquet_with_column_subsets(tmp_path: Path) -> None:
    path = tmp_path / "prices.parquet"
    pq.write_table(pa.table({"item": ["a", "b", "c"], "price": [1.0, 2.5, 4.0]}), path)
    dataset = StructuredDataset(uri=str(path))
    assert tables.prices_only(table=dataset) == ["price"]
    assert tables.in_batches(table=dataset) == 3
    arrow = tables.to_arrow(table=dataset)
    assert isinstance(arrow, pa.Table) and arrow.column_names == ["item", "price"]
    assert tables.prices_only(table=tables.load(n=4)) == ["price"]
    frame = pd.DataFrame({"price": [1.0], "extra": [0]})
    assert tables.prices_only(table=frame) == ["price"]  # a DataFrame where a dataset is declared
    assert kwtypes(a=int, b=str) == {"a": int, "b": str}


def test_a_dataset_reaches_a_dataframe_input_and_dataclasses_are_checked() -> None:
    summary = tables.tables_wf(n=4)
    assert summary == tables.Summary(rows=4, total=9.0)

    @kernelflow.task
    def wrong() -> tables.Summary:
        return {"rows": 1, "total": 2.0}  # type: ignore[return-value]

    with pytest.raises(OutputTypeError, match="expected Summary, got dict"):
        wrong()


# --- resources, images, secrets -----------------------------------------------------------


def test_a_request_larger_than_the_machine_is_refused_before_the_run_starts() -> None:
    with pytest.raises(ResourceError, match="greedy") as caught:
        resources.greedy_wf()
    assert "cpu" in str(caught.value) and caught.value.task == "greedy"
    with pytest.raises(ResourceError, match=r"hungry.*mem"):
        resources.hungry(x=1)
    assert kernelflow.runs().empty  # nothing started, nothing recorded


def test_a_missing_secret_names_its_group_and_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("KERNELFLOW_SECRETS_DIR", str(tmp_path / "none"))
    for name in ("_FSEC_WEATHER-API_TOKEN", "WEATHER-API_TOKEN", "WEATHER_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(Exception) as caught:
        resources.weather_wf()
    text = str(caught.value)
    assert "SecretError" in text or isinstance(caught.value, SecretError)
    assert "weather-api" in text and "token" in text and "_FSEC_WEATHER-API_TOKEN" in text


def test_secrets_are_read_from_env_or_a_directory_and_never_stored(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, store_home: Path
) -> None:
    value = "s3cr3t-" + os.urandom(8).hex()
    monkeypatch.setenv("_FSEC_WEATHER-API_TOKEN", value)
    assert resources.weather_wf(city="Lyon") == len(value) + 4
    monkeypatch.delenv("_FSEC_WEATHER-API_TOKEN")
    secrets_dir = tmp_path / "secrets"
    (secrets_dir / "weather-api").mkdir(parents=True)
    other = "f1le-" + os.urandom(8).hex()
    (secrets_dir / "weather-api" / "token").write_text(other + "\n")
    monkeypatch.setenv("KERNELFLOW_SECRETS_DIR", str(secrets_dir))
    assert resources.weather_wf(city="Nice") == len(other) + 4
    everything = store_bytes(store_home)
    assert (store_home / "runs.sqlite").exists()
    assert value.encode() not in everything and other.encode() not in everything


def test_the_image_and_resources_are_recorded_with_the_run(store_home: Path) -> None:
    os.environ["_FSEC_WEATHER-API_TOKEN"] = "t"
    try:
        result = kernelflow.run(resources.weather_wf, {"city": "Paris"})
    finally:
        del os.environ["_FSEC_WEATHER-API_TOKEN"]
    record = open_store(str(store_home)).runs.get_run(result.run_id)
    assert record is not None
    environment = json.dumps(record["environment"])
    assert '"weather"' in environment and "localhost:30000" in environment
    assert '"200Mi"' in environment and "weather-api/token" in environment


def test_with_overrides_changes_the_request_of_one_node(store_home: Path) -> None:
    result = kernelflow.run(resources.lowered_wf, {"x": 3})
    assert result.outputs["o0"] == 3
    record = open_store(str(store_home)).runs.get_run(result.run_id)
    assert record is not None and "lean:1" in json.dumps(record["environment"])
    with pytest.raises(ResourceError, match="token_length"):
        resources.raised_wf()
    with pytest.raises(kernelflow.errors.DefinitionError, match="colour"):

        @kernelflow.workflow
        def bad() -> int:
            return resources.greedy(x=1).with_overrides(colour="blue")


def test_map_task_items_that_are_paths_are_keyed_by_content(tmp_path: Path) -> None:
    files.CALLS.clear()
    paths = []
    for i in range(3):
        path = tmp_path / f"part-{i}.csv"
        path.write_text("r\n" * (i + 1))
        paths.append(str(path))
    counted = kernelflow.map_task(files.count_rows)
    assert counted(data=paths) == [1, 2, 3]
    Path(paths[1]).write_text("r\n" * 5)
    assert counted(data=paths) == [1, 5, 3]
    assert files.CALLS == ["count_rows"] * 4  # only the edited file ran again


def test_a_frame_type_of_ones_own_is_stored_and_opened_through_its_encoder_and_decoder() -> None:
    """Flyte's StructuredDatasetEncoder/Decoder, registered for a dict-of-lists type."""
    total, frame = columns.columns_wf(n=4)
    assert total == 0 + 1 + 4 + 9
    assert frame.to_dict("list") == {"x": [0, 1, 2, 3], "y": [0, 1, 4, 9]}
    again = kernelflow.run(columns.columns_wf, {"n": 3}, parallel=2)  # through worker processes
    assert again.outputs["o0"] == 5
    opened = columns.measurements(n=2).open(columns.Columns).all()
    assert isinstance(opened, columns.Columns) and opened == {"x": [0, 1], "y": [0, 1]}


def test_a_pydantic_model_with_a_file_and_a_dataset_is_checked_stored_and_hashed(
    tmp_path: Path,
) -> None:
    models.CALLS.clear()
    assert models.bundle_wf(text="a b c") == 6
    made = models.bundle(text="a b c")  # a cache hit: the model comes back from the store
    assert models.CALLS == ["bundle", "words"]
    assert isinstance(made.notes, FlyteFile) and "artifacts/files/" in made.notes.path
    assert Path(made.notes.download()).read_text() == "a b c"
    with pytest.raises(ValueError, match="expected a FlyteFile"):
        models.Bundle(notes=3, table=made.table, label="x")  # a field that is no file
    edited = tmp_path / "notes.txt"
    edited.write_text("a b c d")
    assert models.words(b=made.model_copy(update={"notes": FlyteFile(str(edited))})) == 7
    assert models.CALLS == ["bundle", "words", "words"]  # the file's content changed: a miss
    renamed = tmp_path / "same.txt"
    renamed.write_text("a b c d")
    assert models.words(b=made.model_copy(update={"notes": FlyteFile(str(renamed))})) == 7
    assert models.CALLS == ["bundle", "words", "words"]  # same bytes, another name: a hit


# --- decks ------------------------------------------------------------------------------


def test_decks_are_kept_per_node_and_run_without_secrets(
    monkeypatch: pytest.MonkeyPatch, store_home: Path, tmp_path: Path
) -> None:
    value = "deck-" + os.urandom(8).hex()
    monkeypatch.setenv("_FSEC_WEATHER-API_TOKEN", value)
    result = kernelflow.run(resources.deck_wf, {"rows": 4})
    assert result.outputs["o0"] == 8
    page = kernelflow.api.deck(result.run_id, "profile")
    assert "<p>4 rows</p>" in page and "Details" in page and "[secret]" in page
    assert value not in page and value.encode() not in store_bytes(store_home)
    with pytest.raises(kernelflow.errors.KernelflowError, match="no deck for task 'quiet'"):
        kernelflow.api.deck(result.run_id, "quiet")

    out = tmp_path / "deck.html"
    from kernelflow.cli import main

    assert main(["deck", result.run_id, "profile", "--out", str(out)]) == 0
    assert out.read_text() == page
    assert main(["deck", result.run_id, "quiet"]) != 0

    kernelflow.api.gc(keep_runs=0)  # a removed run's decks go with it
    with pytest.raises(kernelflow.errors.KernelflowError, match="no deck"):
        kernelflow.api.deck(result.run_id, "profile")


def test_an_output_annotated_with_a_renderer_is_rendered_into_the_deck(store_home: Path) -> None:
    """``Annotated[pd.DataFrame, TopFrameRenderer(2)]``: the deck's Outputs page shows
    the output's first two rows, and the value itself is the whole frame."""
    result = kernelflow.run(resources.top_wf, {"n": 5})
    assert len(result.outputs["o0"]) == 5
    page = kernelflow.api.deck(result.run_id, "top_cities")
    assert "<h2>Outputs</h2>" in page and "<h3>o0</h3>" in page
    assert "city-0" in page and "city-1" in page
    assert "city-2" not in page and "city-4" not in page


def test_files_in_lists_and_dataclasses_are_kept_in_the_store() -> None:
    chunks, parts = files.split(n=3)
    assert parts.first == chunks[0]
    for chunk in chunks:
        os.remove(chunk.path)  # the originals are gone
    cached, cached_parts = files.split(n=3)  # a cache hit: the store's copies
    assert [Path(c.path).read_text() for c in cached] == [f"chunk {i}\n" for i in range(3)]
    assert Path(cached_parts.first.path).read_text() == "chunk 0\n"
    assert cached_parts.count == 3


def test_secrets_manager_names_where_a_test_puts_a_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """flytekit.testing.SecretsManager, rewritten: set the variable it names, the task reads it."""
    from kernelflow import Secret, current_context, task, workflow
    from kernelflow.testing import SecretsManager

    manager = SecretsManager()
    monkeypatch.setenv(manager.get_secrets_env_var("user-info", "token"), "s3cr3t-value")
    assert Secret.MountType.ENV_VAR.name == "ENV_VAR"

    @task(secret_requests=[Secret(group="user-info", key="token")])
    def length() -> int:
        return len(current_context().secrets.get("user-info", "token"))

    @workflow
    def wf() -> int:
        return length()

    assert wf() == len("s3cr3t-value")
    assert manager.get_secrets_file("user-info", "token").endswith("user-info/token")
