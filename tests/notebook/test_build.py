"""Notebook structure errors are refused before any task runs, naming cells and names."""

from __future__ import annotations

from pathlib import Path

import pytest
from notebook_runner import make_notebook, write

from kernelflow.errors import (
    CellParseError,
    CycleError,
    DefinitionError,
    DuplicateProducerError,
    KernelflowWarning,
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


def test_two_producers_of_one_name_are_refused() -> None:
    with pytest.raises(DuplicateProducerError) as info:
        build("%%task a\nx = 1", "%%task b\nx = 2", "%%task c\ny = x + 1")
    message = str(info.value)
    assert "'x'" in message and "task 'a'" in message and "task 'b'" in message


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


def test_rebinding_an_input_says_assign_to_a_new_name() -> None:
    with pytest.raises(DefinitionError, match="assign to a new name"):
        build("%%task a\nx = 1", "%%task b\nx += 1\ny = x")


def test_mutating_an_input_in_place_warns_with_the_line() -> None:
    with pytest.warns(KernelflowWarning, match=r"changes its input 'xs' in place \(line 2"):
        build("%%task a\nxs = [3, 1, 2]", "%%task b\nxs.sort()\nfirst = xs[0]")


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
