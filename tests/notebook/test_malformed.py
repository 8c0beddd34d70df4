"""Malformed notebook files: `kernelflow show/run/export` answer in one paragraph, no traceback.

The files are what a broken tool, a hand edit or an attacker leaves: not JSON,
the wrong JSON, cells and fields of the wrong types, formats we do not read.
The CLI runs in this process, so an uncaught exception fails the test.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kernelflow.cli import main

PARAMETERS = {
    "cell_type": "code",
    "metadata": {"tags": ["parameters"]},
    "source": "n: int = 3",
    "outputs": [],
    "execution_count": None,
}
TASK = {
    "cell_type": "code",
    "metadata": {},
    "source": "%%task double\ny = n * 2",
    "outputs": [],
    "execution_count": None,
}
BASE = {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [PARAMETERS, TASK]}


def _with_cell(**fields: object) -> str:
    cell = {"cell_type": "code", "metadata": {}, "source": "x = 1", "outputs": [], **fields}
    return json.dumps({**BASE, "cells": [cell]})


MALFORMED = {
    "empty": "",
    "binary": "\x00\x01not json",
    "a JSON list": "[1, 2, 3]",
    "no cells": json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}}),
    "cells not a list": json.dumps({**BASE, "cells": {"a": 1}}),
    "cells not objects": json.dumps({**BASE, "cells": [1, "x"]}),
    "source a number": _with_cell(source=5),
    "tags a string": _with_cell(metadata={"tags": "task:a"}),
    "tags not strings": _with_cell(metadata={"tags": [1, None]}),
    "cell metadata a list": _with_cell(metadata=[]),
    "notebook metadata a list": json.dumps({**BASE, "metadata": []}),
    "kernelflow metadata a string": json.dumps({**BASE, "metadata": {"kernelflow": "x"}}),
    "unknown cell type": json.dumps({**BASE, "cells": [{"cell_type": "weird", "source": "x"}]}),
    "nbformat 99": json.dumps({**BASE, "nbformat": 99}),
    "nbformat a string": json.dumps({**BASE, "nbformat": "4"}),
    "nested 100,000 deep": "[" * 100_000 + "]" * 100_000,
    "an empty task tag": _with_cell(metadata={"tags": ["task:"]}),
    "bad option tags": _with_cell(metadata={"tags": ["task:a/b", "retries:x", "timeout:-1"]}),
    "a %%task without a name": _with_cell(source="%%task\nx = 1"),
}


@pytest.mark.parametrize("command", ["show", "run", "export"])
@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_notebook_is_one_paragraph_not_a_traceback(
    tmp_path: Path, case: str, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "broken.ipynb"
    path.write_text(MALFORMED[case])
    extra = ["--out", str(tmp_path / "exports")] if command == "export" else []
    code = main([command, str(path), *extra])
    err = capsys.readouterr().err
    assert code in (0, 2), err  # 0: what could be read is a valid (empty) workflow
    if code == 2:
        assert err.startswith("error: ") and "Traceback" not in err
        assert "broken.ipynb" in err or "cell" in err or "task" in err
