"""Fingerprints of code: what a task's body is, and what it references.

A cache key must change when the task's code changes and when any helper it
calls changes (ploomber#111, ipycache#27: stale hits after editing a helper), but
not when only comments or formatting change (MyST-NB#350). So code is identified
by its AST (``ast.dump`` without positions), and references are followed:

- user functions and classes: their normalized source, then what *they*
  reference, transitively;
- modules and objects from installed packages: package name and version;
- other values (constants, config dicts): their content hash.

The result also lists the package versions seen, which the run store records so
that a run can be reproduced.
"""

from __future__ import annotations

import ast
import builtins
import functools
import importlib.metadata
import inspect
import sys
import textwrap
import types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kernelflow._core.hashing import combine, content_hash, hash_bytes

_BUILTIN_NAMES = frozenset(dir(builtins))


@dataclass(frozen=True)
class Fingerprint:
    """A code hash and the package versions that went into it."""

    hash: str
    modules: Mapping[str, str] = field(default_factory=dict)


def function_fingerprint(fn: Any) -> Fingerprint:
    """Fingerprint of a function: its body (decorators stripped) and its references."""
    walker = _ReferenceWalker()
    # The task's own body is hashed by source even when it lives in an installed
    # package: its version alone would miss edits made in an editable checkout.
    digest = walker._user_code(fn)
    return Fingerprint(digest, dict(sorted(walker.modules.items())))


def references_fingerprint(names: Iterable[str], namespace: Mapping[str, Any]) -> Fingerprint:
    """Fingerprint of the objects ``names`` denote in ``namespace`` (a notebook's setup code)."""
    walker = _ReferenceWalker()
    parts = []
    for name in sorted(set(names)):
        if name in namespace:
            parts.append(f"{name}={walker.object_hash(namespace[name])}")
    return Fingerprint(combine(*parts), dict(sorted(walker.modules.items())))


@functools.lru_cache(maxsize=1024)
def package_version(module_name: str) -> str:
    """Version of the installed distribution that provides top-level ``module_name``."""
    top = module_name.partition(".")[0]
    module = sys.modules.get(top)
    version = getattr(module, "__version__", None)
    if isinstance(version, str):
        return version
    distributions = importlib.metadata.packages_distributions().get(top, [])
    for dist in distributions:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    if top in sys.stdlib_module_names:
        return f"python-{sys.version_info.major}.{sys.version_info.minor}"
    return "unknown"


def is_library_code(obj: Any) -> bool:
    """True for objects of the standard library, installed packages and kernelflow itself.

    Those are identified by package version; everything else (``__main__``, a
    notebook, the user's own modules, editable installs) by its source.
    """
    module_name = getattr(obj, "__module__", None)
    if not isinstance(module_name, str) or module_name == "__main__":
        return False
    top = module_name.partition(".")[0]
    if top in sys.stdlib_module_names or top in ("builtins", "kernelflow"):
        return True
    path = getattr(sys.modules.get(module_name), "__file__", None) or ""
    return "site-packages" in path or "dist-packages" in path


class _ReferenceWalker:
    """Hashes objects and, for user code, what that code references, once each."""

    def __init__(self) -> None:
        self.modules: dict[str, str] = {}
        self._seen: dict[int, str] = {}

    def object_hash(self, obj: Any) -> str:
        key = id(obj)
        if key in self._seen:
            return self._seen[key]
        self._seen[key] = "recursive"  # guards against mutual recursion
        digest = self._hash_new(obj)
        self._seen[key] = digest
        return digest

    def _hash_new(self, obj: Any) -> str:
        inner = getattr(obj, "fn", None)
        if inner is not None and type(obj).__name__ == "FunctionTask":
            obj = inner  # a task referenced from another task: follow its function
        if isinstance(obj, types.ModuleType):
            return self._library(obj.__name__)
        if isinstance(obj, (types.FunctionType, type)) and not is_library_code(obj):
            return self._user_code(obj)
        if callable(obj) and is_library_code(obj):
            return self._library(obj.__module__, obj)
        try:
            return content_hash(obj)
        except Exception:
            return f"unhashable:{type(obj).__qualname__}"

    def _library(self, module_name: str, obj: Any = None) -> str:
        top = module_name.partition(".")[0]
        version = package_version(top)
        if top not in sys.stdlib_module_names and top != "builtins":
            self.modules[top] = version
        name = getattr(obj, "__qualname__", "") if obj is not None else ""
        return combine("lib", module_name, name, version)

    def _user_code(self, obj: types.FunctionType | type) -> str:
        source_hash, tree = _source_and_tree(obj)
        parts = [source_hash]
        if isinstance(obj, types.FunctionType):
            parts.extend(self._function_environment(obj))
        else:  # a class: its methods' globals resolve in its module
            namespace = getattr(sys.modules.get(obj.__module__), "__dict__", {})
            for name in sorted(_free_names(tree) - {obj.__name__}):
                if name in namespace:
                    parts.append(f"{name}={self.object_hash(namespace[name])}")
        for module_name in sorted(_imported_modules(tree)):
            parts.append(self._library(module_name))
        return combine(*parts)

    def _function_environment(self, fn: types.FunctionType) -> list[str]:
        parts = []
        for name in sorted(_global_names(fn.__code__)):
            if name in fn.__globals__:
                parts.append(f"{name}={self.object_hash(fn.__globals__[name])}")
        for name, cell in zip(fn.__code__.co_freevars, fn.__closure__ or ()):
            try:
                parts.append(f"{name}={self.object_hash(cell.cell_contents)}")
            except ValueError:  # an empty cell: the closure variable is unbound yet
                parts.append(f"{name}=<unbound>")
        if fn.__defaults__:
            parts.append(f"defaults={self.object_hash(fn.__defaults__)}")
        if fn.__kwdefaults__:
            parts.append(f"kwdefaults={self.object_hash(fn.__kwdefaults__)}")
        return parts


def _source_and_tree(obj: Any) -> tuple[str, ast.AST | None]:
    """Normalized-source hash of a function or class; bytecode when there is no source."""
    try:
        source = textwrap.dedent(inspect.getsource(obj))
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError):
        code = getattr(obj, "__code__", None)
        if code is None:
            return hash_bytes(repr(obj).encode()), None
        return hash_bytes(code.co_code + repr(code.co_consts).encode()), None
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            node.decorator_list = []  # @task(...) options are keyed separately
            break
    return hash_bytes(ast.dump(tree, include_attributes=False).encode()), tree


def _global_names(code: types.CodeType) -> set[str]:
    """Names a code object (and the code nested in it) looks up as globals."""
    names = {n for n in code.co_names if n not in _BUILTIN_NAMES}
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _global_names(const)
    return names


def _free_names(tree: ast.AST | None) -> set[str]:
    """Names loaded anywhere in a class body; the module namespace resolves them."""
    if tree is None:
        return set()
    return {
        node.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Name)
        and isinstance(node.ctx, ast.Load)
        and node.id not in _BUILTIN_NAMES
    }


def _imported_modules(tree: ast.AST | None) -> set[str]:
    """Modules imported inside the body (``from sklearn.linear_model import ...``)."""
    modules: set[str] = set()
    for node in ast.walk(tree) if tree is not None else ():
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            modules.add(node.module)
    return modules
