"""Notebook structure errors are refused before any task runs, naming cells and names."""

from __future__ import annotations

from pathlib import Path

import pytest
from notebook_runner import make_notebook, write

import kernelflow
from kernelflow._core.graph import NodeId, NodeOutput
from kernelflow.errors import (
    CellParseError,
    CycleError,
    DefinitionError,
    DuplicateProducerError,
    NotebookErrors,
    UndefinedNameError,
)
from kernelflow.notebook.load import load_notebook, workflow_from_cells


def build(*cells: str | tuple[str, list[str]]) -> object:
    sources = [(c, []) if isinstance(c, str) else c for c in cells]
    return workflow_from_cells(sources, name="test")


def test_inputs_outputs_parameters_and_edges() -> None:
    workflow = build(
        ("n: int = 3\nlabel = 'x'  # type: str", ["parameters"]),
        "import math\n\ndef helper(v):\n    return math.sqrt(v)",
        "%%task first\nxs = list(range(n))\n_tmp = 1",
        ("ys = [helper(x) for x in xs]\ntotal: float = sum(ys)", ["task:second", "cache"]),
        "%%task third --after first\nreport: str = f'{label}: {total}'",
    )
    graph = workflow.graph
    assert {n: (s.type, s.default) for n, s in graph.params.items()} == {
        "n": (int, 3),
        "label": (str, "x"),
    }
    first, second, third = (graph.nodes[n] for n in ("first", "second", "third"))
    assert list(first.task.interface.outputs) == ["xs"]  # _tmp is private
    assert str(second.bindings["xs"]) == "NodeOutput(node='first', output='xs')"
    assert second.task.options.cache and second.task.setup_refs == ("helper",)
    assert second.task.interface.outputs == {"total": float}  # ys: read by no other cell
    assert third.after == ("first",)
    assert list(graph.outputs) == ["report"]  # total is consumed by third


def test_a_name_rebound_step_by_step_has_versions_read_in_notebook_order() -> None:
    workflow = build(
        "%%task load\ndf = [3, 1, 2]",
        "%%task clean\ndf = sorted(df)",
        "%%task count\nn = len(df)\nfirst = df[0]",
    )
    nodes = workflow.graph.nodes
    assert nodes["clean"].bindings["df"] == NodeOutput(NodeId("load"), "df")
    assert nodes["count"].bindings["df"] == NodeOutput(NodeId("clean"), "df")
    assert workflow.built.versions == {("load", "df"): "df@load", ("clean", "df"): "df@clean"}
    assert kernelflow.run(workflow).outputs == {"n": 3, "first": 1}


def test_a_read_before_several_later_versions_is_refused_naming_the_cells() -> None:
    with pytest.raises(DuplicateProducerError, match="order cannot decide") as info:
        build("%%task c\ny = x + 1", "%%task a\nx = 1", "%%task b\nx = 2")
    assert info.value.cells == ["cell 1 (task 'c')", "cell 2 (task 'a')", "cell 3 (task 'b')"]


def test_every_structure_error_is_reported_at_once() -> None:
    with pytest.raises(NotebookErrors) as info:
        build("%%task a\nx = totl", "%%task b\ny = (1 +\n", "%%task c\nz = nope + x")
    found = info.value.errors
    assert [type(e) for e in found] == [CellParseError, UndefinedNameError, UndefinedNameError]
    assert "1. " in str(info.value) and "3. " in str(info.value)
    assert "'totl'" in str(info.value) and "'nope'" in str(info.value)


def test_a_cycle_is_refused_naming_the_tasks() -> None:
    with pytest.raises(CycleError, match=r"cycle: .*a.*b") as info:
        build("%%task a\nx = y + 1", "%%task b\ny = x + 1")
    assert set(info.value.cycle) == {"a", "b"}


def test_reading_a_name_nothing_defines_is_refused() -> None:
    with pytest.raises(UndefinedNameError) as info:
        build("%%task a\nx = totl + 1")
    assert "'totl'" in str(info.value) and "task 'a'" in str(info.value)
    assert "cell 1" in str(info.value)


def test_a_cell_that_does_not_parse_is_refused_with_its_line() -> None:
    with pytest.raises(CellParseError) as info:
        build("import os", "%%task a\nx = 1\ny = (2 +\n")
    assert "cell 2" in str(info.value)


def test_unknown_options_and_bad_values_are_refused() -> None:
    with pytest.raises(CellParseError, match="unrecognized arguments: --cahce"):
        build("%%task a --cahce\nx = 1")
    with pytest.raises(CellParseError, match="retries"):
        build(("x = 1", ["task:a", "retries:two"]))
    with pytest.raises(DefinitionError, match="--after 'nope'"):
        build("%%task a --after nope\nx = 1")


def test_rebinding_an_input_makes_a_new_version() -> None:
    workflow = build("%%task a\nx = 1", "%%task b\nx += 1\ny = x")
    assert kernelflow.run(workflow).outputs == {"x": 2, "y": 2}


def test_a_task_changing_an_input_in_place_gets_a_copy_and_makes_a_version() -> None:
    workflow = build(
        "%%task a\nxs = [3, 1, 2]",
        "%%task b\nxs.sort()\nfirst = xs[0]",
        "%%task c\nlast = xs[-1]",
    )
    assert workflow.graph.nodes["c"].bindings["xs"] == NodeOutput(NodeId("b"), "xs")
    result = kernelflow.run(workflow)
    assert result.values["a"]["xs"] == [3, 1, 2]  # a's value (the cached one) is untouched
    assert result.outputs == {"last": 3}  # b is not a leaf: its unread `first` is no result


def test_changes_through_an_alias_make_versions_of_each_name() -> None:
    workflow = build(
        "%%task split\ntrain = {'a': 1}\ntest = {'a': 2}",
        "%%task mark\nfor d in [train, test]:\n    d['b'] = d['a'] * 10",
        "%%task total\nt = train['b'] + test['b']",
    )
    assert workflow.graph.nodes["total"].bindings["train"] == NodeOutput(NodeId("mark"), "train")
    assert kernelflow.run(workflow).outputs == {"t": 30}


def test_imports_and_functions_of_a_task_cell_serve_later_cells() -> None:
    workflow = build(
        "%%task load\nimport math\ndef half(v):\n    return v / 2\nx = math.sqrt(16)",
        "%%task total\ny = math.floor(half(x))",
    )
    load, total = workflow.graph.nodes["load"], workflow.graph.nodes["total"]
    assert list(load.task.interface.outputs) == ["x"]  # code is not data
    assert total.task.setup_refs == ("half", "math")
    assert kernelflow.run(workflow).outputs == {"y": 2}


def test_every_value_a_leaf_task_binds_is_a_result() -> None:
    workflow = build("%%task a\nx = 1", "%%task b\ntotal = x + 1\nlabel = f'{total}'\n_t = 0")
    assert list(workflow.graph.outputs) == ["total", "label"]


def test_a_notebook_without_tasks_says_how_to_make_one() -> None:
    with pytest.raises(DefinitionError, match="%%task NAME"):
        build("x = 1")


def test_load_notebook_names_the_workflow_from_metadata(tmp_path: Path) -> None:
    path = write(make_notebook(["%%task a\nx = 1"], name="my_flow"), tmp_path / "nb.ipynb")
    assert load_notebook(path).name == "my_flow"


def test_papermill_reads_the_same_parameters_and_types_as_we_do(tmp_path: Path) -> None:
    import papermill

    path = write(
        make_notebook(
            [
                (
                    "n: int = 3\nrate: float = 0.5\nlabel = 'x'  # type: str\nflag = True",
                    ["parameters"],
                ),
                "%%task a\nout: float = n * rate",
            ]
        ),
        tmp_path / "params.ipynb",
    )
    ours = load_notebook(path).parameters
    theirs = papermill.inspect_notebook(str(path))
    assert set(ours) == set(theirs) == {"n", "rate", "label", "flag"}
    for name, declared in ours.items():
        assert repr(declared.default) == theirs[name]["default"]
        if theirs[name]["inferred_type_name"] != "None":  # papermill: declared types only
            assert declared.type_text == theirs[name]["inferred_type_name"]
    assert theirs["flag"]["inferred_type_name"] == "None" and ours["flag"].type is bool


def test_a_file_written_by_one_task_and_read_by_a_later_one_is_an_edge(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    workflow = build(
        ("n: int = 3", ["parameters"]),
        "%%task write --cache\nwith open('numbers.txt', 'w') as f:\n"
        "    f.write(','.join(map(str, range(n))))",
        "%%task read --cache\ntotal = sum(int(v) for v in open('numbers.txt').read().split(','))",
    )
    read = workflow.graph.nodes["read"]
    assert read.bindings["file:numbers.txt"] == NodeOutput(NodeId("write"), "file:numbers.txt")
    assert list(workflow.graph.outputs) == ["total"]  # the file is an edge, not a result
    assert kernelflow.run(workflow, parallel=2, backend="threading").outputs == {"total": 3}
    again = kernelflow.run(workflow)
    assert {t.status for t in again.tasks.values()} == {"cached"}
    # a new parameter rewrites the file: the reader, cached on the old file, runs again
    changed = kernelflow.run(workflow, {"n": 5})
    assert changed.outputs == {"total": 10} and changed.tasks["read"].status == "succeeded"


def test_a_file_that_exists_before_the_run_is_an_input_by_its_content(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "raw.txt").write_text("1,2")
    cells = ("%%task read --cache\ntotal = sum(map(int, open('raw.txt').read().split(',')))",)
    assert kernelflow.run(build(*cells)).outputs == {"total": 3}
    assert kernelflow.run(build(*cells)).tasks["read"].status == "cached"
    (tmp_path / "raw.txt").write_text("1,2,3")
    changed = kernelflow.run(build(*cells))
    assert changed.outputs == {"total": 6} and changed.tasks["read"].status == "succeeded"
