"""The dependency rule: every import points down the layers, none points up.

The rule is written at the top of ``kernelflow/__init__.py``. This test reads
every module's source (so imports inside functions count too, and nothing has
to be imported to be checked), maps each imported kernelflow module to its
layer, and fails on an import of a higher layer, or of a sibling front end.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import ROOT

SOURCE_ROOTS = {
    "kernelflow": ROOT / "sdk" / "kernelflow",
    "kernelflow_jupyter": ROOT / "jupyter_ext" / "kernelflow_jupyter",
}

# Lowest first. A module belongs to the layer of its longest matching prefix.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("core", ("kernelflow._core", "kernelflow._version")),
    ("store", ("kernelflow.store",)),
    ("engine", ("kernelflow.engine",)),
    # Flyte's public paths (README "Flyte compatibility") sit with the SDK front end.
    (
        "workflows",
        (
            "kernelflow.workflows",
            "kernelflow.exceptions",
            "kernelflow.types",
            "kernelflow.core",
            "kernelflow.extend",
            "kernelflow.models",
            "kernelflow.testing",
            "kernelflow.plugins",
            "kernelflow.deck",
            "kernelflow.extras",
        ),
    ),
    ("notebook", ("kernelflow.notebook",)),
    ("api", ("kernelflow.api", "kernelflow.errors", "kernelflow")),
    (
        "front ends",
        (
            "kernelflow.cli",
            "kernelflow.__main__",
            "kernelflow.schedule",
            "kernelflow.progress",
            "kernelflow.render",
            "kernelflow.report",
            "kernelflow_jupyter",
        ),
    ),
]
# workflows and notebook are two front ends on one level: neither imports the other.
SIBLINGS = {"workflows": "notebook", "notebook": "workflows"}
RANK = {
    "core": 0,
    "store": 1,
    "engine": 2,
    "workflows": 3,
    "notebook": 3,
    "api": 4,
    "front ends": 5,
}
# Only the notebook layer's kernel adapter talks to IPython; nothing under sdk/ uses ipywidgets.
KERNEL_ADAPTER = "kernelflow.notebook.kernel"


def layer_of(module: str) -> str | None:
    best: tuple[int, str] | None = None
    for layer, prefixes in LAYERS:
        for prefix in prefixes:
            matches = module == prefix or module.startswith(prefix + ".")
            if matches and (best is None or len(prefix) > best[0]):
                best = (len(prefix), layer)
    return best[1] if best else None


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str
    line: int


def module_name(package: str, root: Path, path: Path) -> str:
    parts = [package, *path.relative_to(root).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_in(source: str, module: str, is_package: bool) -> Iterator[tuple[str, int]]:
    """Every module an import statement names, anywhere in the source (functions too)."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module if is_package else module.rpartition(".")[0]
                for _ in range(node.level - 1):
                    base = base.rpartition(".")[0]
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            yield target, node.lineno
            for alias in node.names:  # "from kernelflow import api" imports kernelflow.api
                yield f"{target}.{alias.name}", node.lineno


def all_imports(roots: dict[str, Path]) -> list[Import]:
    found = []
    for package, root in roots.items():
        for path in sorted(root.rglob("*.py")):
            module = module_name(package, root, path)
            for target, line in imports_in(path.read_text(), module, path.name == "__init__.py"):
                found.append(Import(module, target, line))
    return found


def known_module(name: str, roots: dict[str, Path]) -> bool:
    """Whether ``name`` is a module or package of ours (not a name imported from one)."""
    package, _, rest = name.partition(".")
    root = roots.get(package)
    if root is None:
        return False
    path = root.joinpath(*rest.split(".")) if rest else root
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def violations(roots: dict[str, Path]) -> list[str]:
    """One line per offending import statement: where, and which layers."""
    problems: dict[tuple[str, int], str] = {}
    for item in all_imports(roots):
        if (item.importer, item.line) in problems:
            continue
        source_layer = layer_of(item.importer)
        if item.imported.split(".")[0] in ("IPython", "ipywidgets"):
            allowed = item.importer.startswith(("kernelflow_jupyter", KERNEL_ADAPTER))
            if not allowed:
                problems[item.importer, item.line] = (
                    f"{item.importer}:{item.line} imports {item.imported.split('.')[0]}"
                )
            continue
        if not known_module(item.imported, roots):
            continue
        target_layer = layer_of(item.imported)
        if source_layer is None or target_layer is None:
            continue
        upward = RANK[target_layer] > RANK[source_layer]
        sideways = SIBLINGS.get(source_layer) == target_layer
        if upward or sideways:
            problems[item.importer, item.line] = (
                f"{item.importer}:{item.line} ({source_layer}) imports "
                f"{item.imported} ({target_layer})"
            )
    return sorted(problems.values())


def test_no_module_imports_a_higher_layer() -> None:
    assert violations(SOURCE_ROOTS) == []


def test_front_ends_call_only_the_api() -> None:
    """The CLI, the scheduler and the Jupyter extension use kernelflow through ``api``."""
    public = ("kernelflow.api", "kernelflow.errors")
    deeper = sorted(
        f"{item.importer}:{item.line} imports {item.imported}"
        for item in all_imports(SOURCE_ROOTS)
        if layer_of(item.importer) == "front ends"
        and known_module(item.imported, SOURCE_ROOTS)
        and layer_of(item.imported) not in ("front ends", None)
        and item.imported not in (*public, "kernelflow")
    )
    assert deeper == []


def test_no_module_imports_another_modules_private_names() -> None:
    """A name with a leading underscore is its module's own; shared names are public."""
    private = []
    for package, root in SOURCE_ROOTS.items():
        for path in root.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(package):
                    private += [
                        f"{path.relative_to(ROOT)}:{node.lineno} imports {alias.name}"
                        for alias in node.names
                        if alias.name.startswith("_") and not alias.name.startswith("__")
                    ]
    assert private == []


def test_every_module_belongs_to_a_layer() -> None:
    unplaced = [
        module_name(package, root, path)
        for package, root in SOURCE_ROOTS.items()
        for path in root.rglob("*.py")
        if layer_of(module_name(package, root, path)) is None
    ]
    assert unplaced == []


@pytest.mark.parametrize(
    "module,source,expected",
    [
        # an upward import inside a function is caught as well as one at the top
        ("_core/graph.py", "def f():\n    from kernelflow.engine import runner\n", "engine"),
        ("store/runs.py", "from kernelflow import api\n", "api"),
        ("engine/runner.py", "from ..workflows import workflow\n", "workflows"),
        ("notebook/load.py", "import kernelflow.workflows.task\n", "workflows"),
        ("engine/mapping.py", "def f():\n    import IPython\n", "IPython"),
    ],
)
def test_the_contract_fails_on_a_deliberate_violation(
    tmp_path: Path, module: str, source: str, expected: str
) -> None:
    """A copy of the package with one bad import added: the check must name it."""
    import shutil

    copy = tmp_path / "kernelflow"
    shutil.copytree(SOURCE_ROOTS["kernelflow"], copy, ignore=shutil.ignore_patterns("__pycache__"))
    target = copy / module
    target.write_text(target.read_text() + "\n" + source)
    found = violations({"kernelflow": copy})
    assert len(found) == 1
    assert expected in found[0] and module.removesuffix(".py").replace("/", ".") in found[0]
