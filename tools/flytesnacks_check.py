"""Run Flyte's example programs under kernelflow, imports rewritten by one rule.

Usage::

    python tools/flytesnacks_check.py PATH/TO/flytesnacks/examples [--timeout S] [--python EXE]

Each example file of the folders below (Flyte's user guide: the basics, data
types and IO, advanced composition, development lifecycle, productionizing) is
copied into a fresh temporary directory with its imports rewritten by the rule of
README "Flyte compatibility" (``flytekit`` -> ``kernelflow``, ``import flytekit``
-> ``import kernelflow as flytekit``, ``flytekitplugins.NAME`` ->
``kernelflow.plugins.NAME``), then run with ``python file.py`` there (the files
run their workflows under ``if __name__ == "__main__":``); a file that imports
from its own package (``from .workflow import ...``) runs as a module of that
package (``python -m basics.launch_plan``), as ``pyflyte run`` imports it. A file passes when it
exits with status 0 within the timeout. The script prints one row per file, with
the first line of the error for a failure, and the fraction that passed.

This tool only reads the checked-out examples; nothing of them is kept.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

FOLDERS = (
    "basics/basics",
    "data_types_and_io/data_types_and_io",
    "advanced_composition/advanced_composition",
    "development_lifecycle/development_lifecycle",
    "productionizing/productionizing",
)

_RULES = [
    # import flytekit [as x]  ->  import kernelflow as flytekit / as x
    (re.compile(r"^(\s*)import flytekit\s*$", re.M), r"\1import kernelflow as flytekit"),
    (re.compile(r"^(\s*)import flytekit as (\w+)", re.M), r"\1import kernelflow as \2"),
    (re.compile(r"^(\s*)(from|import) flytekitplugins\.", re.M), r"\1\2 kernelflow.plugins."),
    (re.compile(r"^(\s*)from flytekit(\.[\w.]+)? import", re.M), r"\1from kernelflow\2 import"),
    (re.compile(r"^(\s*)import flytekit\.", re.M), r"\1import kernelflow."),
]


def rewrite(source: str) -> str:
    """The import rule, applied to import statements only."""
    for pattern, replacement in _RULES:
        source = pattern.sub(replacement, source)
    return source


def example_files(examples: Path) -> list[Path]:
    files = []
    for folder in FOLDERS:
        files += sorted(p for p in (examples / folder).glob("*.py") if p.name != "__init__.py")
    return files


def first_error_line(stderr: str) -> str:
    """The exception line of the last traceback (or the last line of output)."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    if "Traceback (most recent call last):" in lines:
        start = len(lines) - 1 - lines[::-1].index("Traceback (most recent call last):")
        for line in lines[start + 1 :]:
            if not line.startswith(" "):
                return line.strip()
    return lines[-1].strip() if lines else "(no output)"


_RELATIVE_IMPORT = re.compile(r"^\s*from \.", re.M)


def _place(path: Path, tmp: str) -> list[str]:
    """Copy the example (rewritten) into ``tmp``; the command that runs it there.

    A file with a relative import (``from .workflow import ...``) is part of its
    package and runs as a module of it, as ``pyflyte run`` imports it: the
    package's files are all copied, rewritten, and it runs as ``python -m pkg.mod``.
    """
    source = path.read_text()
    if not _RELATIVE_IMPORT.search(source):
        Path(tmp, path.name).write_text(rewrite(source))
        return [path.name]
    package = Path(tmp, path.parent.name)
    package.mkdir()
    for member in path.parent.glob("*.py"):
        (package / member.name).write_text(rewrite(member.read_text()))
    return ["-m", f"{path.parent.name}.{path.stem}"]


def run_one(path: Path, python: str, timeout: float) -> tuple[bool, str]:
    with tempfile.TemporaryDirectory(prefix="flytesnacks-") as tmp:
        command = _place(path, tmp)
        env = dict(os.environ, KERNELFLOW_HOME=str(Path(tmp, ".kernelflow")))
        try:
            done = subprocess.run(
                [python, *command],
                cwd=tmp,
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            return False, f"timed out after {timeout:g} s"
        if done.returncode == 0:
            return True, ""
        return False, first_error_line(done.stderr or done.stdout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("examples", type=Path, help="the flytesnacks examples/ folder")
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--jobs", type=int, default=4)
    args = parser.parse_args(argv)
    files = example_files(args.examples)
    if not files:
        parser.error(f"no example files under {args.examples}")
    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(lambda p: run_one(p, args.python, args.timeout), files))
    width = max(len(str(p.relative_to(args.examples))) for p in files)
    for path, (passed, error) in zip(files, results):
        name = str(path.relative_to(args.examples))
        print(f"{name:<{width}}  {'pass' if passed else 'FAIL'}  {error[:120]}")
    passed = sum(ok for ok, _ in results)
    print(f"\n{passed}/{len(files)} passed ({passed / len(files):.0%})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
