"""Shell tasks as Flyte writes them (``flytekit.extras.tasks.shell`` -> ``kernelflow.extras...``).

A Flyte-style program written here: a task makes a file, a shell task appends
to it, another archives it with a directory; outputs are files in the store.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

import kernelflow
from kernelflow import kwtypes, task, workflow
from kernelflow.errors import DefinitionError, TaskError
from kernelflow.extras.tasks.shell import OutputLocation, ShellTask
from kernelflow.types.directory import FlyteDirectory
from kernelflow.types.file import FlyteFile

append = ShellTask(
    name="append",
    script="""
    set -e
    echo "appended by ${SHELL_NAME:-sh}" >> {inputs.x}
    echo "done {inputs.word}"
    """,
    inputs=kwtypes(x=FlyteFile, word=str),
    output_locs=[OutputLocation(var="i", var_type=FlyteFile, location="{inputs.x}")],
    cache=True,
)

archive = ShellTask(
    name="archive",
    script="""
    set -e
    cp {inputs.x} {inputs.y}
    tar -czf {outputs.j} -C {inputs.y} .
    """,
    inputs=kwtypes(x=FlyteFile, y=FlyteDirectory),
    output_locs=[OutputLocation(var="j", var_type=FlyteFile, location="{inputs.y}.tar.gz")],
)


@task
def make(text: str) -> tuple[FlyteFile, FlyteDirectory]:
    folder = Path(kernelflow.current_context().working_directory)
    note = folder / "note.txt"
    note.write_text(text + "\n")
    data = folder / "data"
    data.mkdir(exist_ok=True)
    return FlyteFile(str(note)), FlyteDirectory(str(data))


@workflow
def shell_wf(text: str) -> FlyteFile:
    note, data = make(text=text)
    appended = append(x=note, word="now")
    return archive(x=appended, y=data)


def test_a_workflow_of_shell_tasks_passes_files_between_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    result = shell_wf(text="hello")
    with tarfile.open(result.path) as tar:
        names = {Path(n).name for n in tar.getnames()}
        member = next(m for m in tar.getmembers() if m.name.endswith("note.txt"))
        text = tar.extractfile(member).read().decode()  # type: ignore[union-attr]
    assert "note.txt" in names
    assert text == "hello\nappended by sh\n"
    assert "done now" in capfd.readouterr().out  # the script's output shows


def test_a_cached_shell_task_is_a_hit_for_the_same_file_content(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for _ in range(2):
        Path("a.txt").write_text("same\n")
        append(x=FlyteFile("a.txt"), word="w")
    statuses = [row.status for row in kernelflow.runs().itertuples()]
    assert statuses.count("succeeded") == 2
    runs = kernelflow.api.open_store().runs
    newest = runs.list_runs(limit=1)[0]["run_id"]
    assert [r["status"] for r in runs.node_executions(newest)] == ["cached"]


def test_a_failing_script_names_the_task_its_status_and_stderr(tmp_path: Path) -> None:
    broken = ShellTask(
        name="broken",
        script="echo 'no such input' >&2; exit 3",
        output_locs=[OutputLocation(var="o", var_type=FlyteFile, location=str(tmp_path / "o"))],
    )
    with pytest.raises(TaskError) as caught:
        broken()
    message = str(caught.value)
    assert "broken" in message and "status 3" in message and "no such input" in message


def test_a_placeholder_naming_no_input_is_refused_at_definition() -> None:
    with pytest.raises(DefinitionError, match=r"\{inputs\.y\}.*no input named 'y'"):
        ShellTask(name="typo", script="cat {inputs.y}", inputs=kwtypes(x=str))


def test_an_output_that_is_not_a_file_is_refused_at_definition() -> None:
    with pytest.raises(DefinitionError, match="files or directories"):
        ShellTask(
            name="bad",
            script="true",
            output_locs=[OutputLocation(var="n", var_type=int, location="n.txt")],
        )


def test_a_script_changing_its_input_in_place_leaves_the_original_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("keep.txt").write_text("original\n")
    out = append(x=FlyteFile("keep.txt"), word="w")
    assert Path("keep.txt").read_text() == "original\n"
    assert Path(out.path).read_text() == "original\nappended by sh\n"


def test_a_missing_script_file_is_refused_at_definition_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nope.sh"
    with pytest.raises(DefinitionError, match=r"'from_file'.*nope\.sh.*cannot be read"):
        ShellTask(name="from_file", script_file=missing)
