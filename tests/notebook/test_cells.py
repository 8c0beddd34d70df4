"""``%%task`` headers and task tags become the same TaskSpec; bad ones name the cell."""

from __future__ import annotations

import pytest

from kernelflow.errors import CellParseError
from kernelflow.notebook.cells import TaskSpec, parse_header, parse_tags


@pytest.mark.parametrize("line", ["train", "  train  ", "load.v2", "step-1"])
def test_a_bare_name_is_a_task_with_default_options(line: str) -> None:
    assert parse_header(line, cell="cell 3") == TaskSpec(name=line.strip())


def test_options_in_the_header_match_the_same_options_as_tags() -> None:
    header = parse_header(
        "fit --cache-version 2 --retries 3 --timeout 1.5 --outputs a,b --after prep"
    )
    tags = parse_tags(
        ["task:fit", "cache-version:2", "retries:3", "timeout:1.5", "outputs:a,b", "after:prep"]
    )
    assert header == tags
    assert header.cache and header.cache_version == "2"  # a cache version turns the cache on
    assert (header.retries, header.timeout, header.outputs, header.after) == (
        3,
        1.5,
        ("a", "b"),
        ("prep",),
    )


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("", "needs a task name"),
        ("9lives", "not a valid task name"),
        ("fit --retries many", "bad %%task options"),
        ("fit --no-such-option", "bad %%task options"),
        ("fit 'unclosed", "bad %%task line"),
    ],
)
def test_a_bad_header_is_an_error_naming_the_cell(line: str, message: str) -> None:
    with pytest.raises(CellParseError, match=message) as raised:
        parse_header(line, cell="cell 7")
    assert "cell 7" in str(raised.value)
