"""One rule for names that become paths (issue 16, findings 6 and 9).

A workflow name becomes ``<out>/<workflow>/`` and a plan name ``<runs>/<plan>/``; both
can come from a notebook kernelflow did not write. A name that breaks the rule is
refused with a message naming what, where, the value, the rule and the fix, and
before anything is written; malformed ``kernelflow`` metadata is an error, not a
traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from notebook_runner import make_notebook, write
from test_cli import kernelflow_cli

from kernelflow._core.names import NAME_RULE, name_from_stem, validate_name
from kernelflow.errors import ParameterError


@pytest.mark.parametrize("name", ["flow", "a.b-c_1", "9lives", "x" * 100])
def test_a_name_that_follows_the_rule_is_returned(name: str) -> None:
    assert validate_name("workflow name", name, where="a test") == name


@pytest.mark.parametrize(
    "name,problem",
    [
        ("", "it is empty"),
        ("x" * 101, "it is 101 characters long"),
        ("../x", "it starts with '.'"),
        ("-rf", "it starts with '-'"),
        ("a/b", "it contains '/'"),
        ("a\\b", "it contains '\\\\'"),
        ("a..b", "it contains '..'"),
        ("a\x00b", "it contains '\\x00'"),
        ("my flow", "it contains ' '"),
        ("caf\u00e9", "it contains '\u00e9'"),
        (5, "it is int, not a string"),
        (["flow"], "it is list, not a string"),
    ],
)
def test_a_name_that_breaks_the_rule_is_refused_saying_what_where_and_why(
    name: object, problem: str
) -> None:
    with pytest.raises(ParameterError) as caught:
        validate_name("plan name", name, where="kernelflow schedule add --name")
    text = str(caught.value)
    assert text.startswith("bad plan name ") and "in kernelflow schedule add --name" in text
    assert problem in text and NAME_RULE in text and "\n  Fix: " in text


def test_a_long_name_is_cut_short_in_the_message() -> None:
    with pytest.raises(ParameterError) as caught:
        validate_name("plan name", "a" * 300, where="the stored plans")
    assert "a" * 100 not in str(caught.value) and "300 characters" in str(caught.value)


@pytest.mark.parametrize(
    "stem,name",
    [
        ("my flow", "my_flow"),
        ("a..b", "a__b"),
        ("-x", "x"),
        ("x" * 300, "x" * 100),
        ("-", "notebook"),
    ],
)
def test_a_name_made_from_a_file_name_follows_the_rule(stem: str, name: str) -> None:
    assert name_from_stem(stem) == name
    assert validate_name("workflow name", name, where="a test") == name


# --- where names become paths, through the command line -------------------------------


def _notebook(folder: Path, metadata: Any) -> Path:
    notebook = make_notebook([("n: int = 1", ["parameters"]), "%%task double\ntwice: int = 2 * n"])
    notebook.metadata["kernelflow"] = metadata
    folder.mkdir(parents=True, exist_ok=True)
    return write(notebook, folder / "flow.ipynb")


def _files(root: Path) -> set[Path]:
    return {path for path in root.rglob("*") if "kernelflow-home" not in path.parts}


@pytest.mark.parametrize(
    "name", ["../../escaped", "ABSOLUTE", "sub/dir", "x" * 300, ".hidden", "my flow"]
)
def test_export_refuses_a_workflow_name_that_is_not_a_file_name(tmp_path: Path, name: str) -> None:
    if name == "ABSOLUTE":
        name = str(tmp_path / "elsewhere")
    work = tmp_path / "work"
    source = _notebook(work, {"workflow": name})
    before = _files(tmp_path)

    done = kernelflow_cli("export", str(source), "--out", str(work / "exports"), cwd=work)

    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert "bad workflow name" in done.stderr and "notebook metadata of flow.ipynb" in done.stderr
    assert _files(tmp_path) == before  # nothing written, not even the --out directory


@pytest.mark.parametrize("command", ["show", "run", "export"])
@pytest.mark.parametrize("metadata", [["flow"], {"workflow": 5}])
def test_malformed_kernelflow_metadata_is_an_error_not_a_traceback(
    tmp_path: Path, command: str, metadata: Any
) -> None:
    source = _notebook(tmp_path, metadata)

    done = kernelflow_cli(command, str(source), cwd=tmp_path)

    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert "metadata" in done.stderr and "flow.ipynb" in done.stderr
    assert "Fix: set metadata.kernelflow" in done.stderr
    assert not (tmp_path / "exports").exists()


def test_without_a_name_in_the_metadata_the_file_name_is_used(tmp_path: Path) -> None:
    source = _notebook(tmp_path, {})
    named = source.rename(tmp_path / "my flow.v2.ipynb")
    done = kernelflow_cli("export", str(named), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("my_flow_v2 ")
    assert (tmp_path / "exports" / "my_flow_v2" / "versions.json").is_file()


def test_versions_refuses_a_workflow_name_that_is_not_a_file_name(tmp_path: Path) -> None:
    done = kernelflow_cli("versions", "../../etc", cwd=tmp_path)
    assert done.returncode == 2
    assert "bad workflow name '../../etc'" in done.stderr and "Traceback" not in done.stderr


def test_schedule_add_refuses_a_plan_name_too_long_for_a_file(
    tmp_path: Path, store_home: Path
) -> None:
    source = _notebook(tmp_path, {"workflow": "flow", "inputs": {"n": "int"}})

    done = kernelflow_cli(
        "schedule", "add", str(source), "--cron", "0 6 * * *", "--name", "a" * 300
    )

    assert done.returncode == 2, done.stdout
    assert "Traceback" not in done.stderr
    assert "bad plan name" in done.stderr and "300 characters" in done.stderr
    assert not (store_home / "schedules.sqlite").exists()  # refused before anything is stored


@pytest.mark.parametrize("workflow", ["x" * 300, 5])
def test_schedule_add_refuses_a_bad_workflow_name_as_the_default_plan_name(
    tmp_path: Path, store_home: Path, workflow: object
) -> None:
    source = _notebook(tmp_path, {"workflow": workflow})

    done = kernelflow_cli("schedule", "add", str(source), "--cron", "0 6 * * *")

    assert done.returncode == 2, done.stdout
    assert "Traceback" not in done.stderr
    assert "bad workflow name" in done.stderr and "--name" in done.stderr
    assert not (store_home / "schedules.sqlite").exists()
