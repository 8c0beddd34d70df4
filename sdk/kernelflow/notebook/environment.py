"""Where cell tasks run: the namespace their setup code builds, and how a body executes.

In a kernel the namespace is the user's (``get_ipython().user_ns``) and a task's
body runs as a normal cell would, with its prints, displays and plots. Outside a
kernel (``kernelflow run``, workers) the setup cells are executed once per
process into a fresh namespace, with harmless line magics dropped and a clear
error for magics that need a kernel.
"""

from __future__ import annotations

import builtins
import functools
import hashlib
import inspect
import linecache
import secrets
import threading
import types
import typing
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from kernelflow._core.errors import CellParseError, KernelflowError
from kernelflow._core.task import Task
from kernelflow.notebook.analysis import PLAIN_MAGICS, transform_ipython


class Environment(Protocol):
    """The namespace of a notebook's setup code, and a way to run code in it.

    ``portable``: whether the environment can be rebuilt in another process (so
    its tasks may run in loky or dask workers); the kernel's namespace cannot,
    and keeps its tasks in this process.
    """

    portable: bool

    def namespace(self) -> dict[str, Any]:
        """The setup namespace (executing the setup code first if needed)."""
        ...

    def execute(self, code: str, filename: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
        """Run a task body with ``inputs`` bound; return the namespace it ran in."""
        ...


def is_code(value: Any) -> bool:
    """Modules, functions and classes are code: hashed by source or version, never data."""
    if isinstance(value, (types.ModuleType, type, functools.partial, Task)):
        return True
    return inspect.isroutine(value) or type(value).__name__ == "ufunc"


def register_source(filename: str, source: str) -> None:
    """Let ``inspect.getsource`` and tracebacks find code that has no file."""
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)


def annotation_namespace(setup_sources: Sequence[str]) -> dict[str, Any]:
    """``typing`` names plus the setup code's imports: enough to evaluate annotations.

    Only the import statements run, so reading a notebook's types never executes
    its data-loading code.
    """
    import ast

    namespace: dict[str, Any] = {n: getattr(typing, n) for n in typing.__all__}
    namespace["__builtins__"] = builtins
    for source in setup_sources:
        try:
            tree = ast.parse(transform_ipython(source))
        except SyntaxError:
            continue
        imports = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
        if imports:
            module = ast.Module(body=imports, type_ignores=[])
            exec(compile(module, "<kernelflow-imports>", "exec"), namespace)
    return namespace


class _NoKernel:
    """``get_ipython()`` outside a kernel: harmless magics do nothing, others explain."""

    def __init__(self, cell: str) -> None:
        self.cell = cell

    def run_line_magic(self, name: str, line: str, *_: Any) -> None:
        if name not in PLAIN_MAGICS:
            self._refuse(f"%{name}")

    def run_cell_magic(self, name: str, line: str, cell: str) -> None:
        self._refuse(f"%%{name}")

    def system(self, command: str) -> None:
        self._refuse(f"!{command}")

    def getoutput(self, command: str, *_: Any) -> Any:
        self._refuse(f"!{command}")

    def _refuse(self, what: str) -> None:
        raise KernelflowError(
            f"{self.cell} uses {what}, which needs a Jupyter kernel; this run has none",
            cell=self.cell,
            fix="run the notebook with papermill (or in Jupyter), or replace the magic "
            "with Python code",
        )


_WORKER_NAMESPACES: OrderedDict[str, dict[str, Any]] = OrderedDict()
"""Setup namespaces rebuilt in this process from pickled environments, by setup key.

Every task sent to a worker carries its own copy of the environment; this cache
makes the setup code run once per worker process (per loaded workflow), not
once per task. Only the last few are kept, for long-lived workers.
"""
_WORKER_NAMESPACES_MAX = 8
_WORKER_LOCK = threading.Lock()


class ScriptEnvironment:
    """Setup cells executed once, lazily, in a fresh namespace in this process.

    Pickled (to reach a worker), it carries its setup sources and a token of the
    workflow load it belongs to; copies in a worker share one namespace per
    token and sources, so a reused worker reruns setup for a newly loaded
    workflow (whose data files may have changed) but not for each task.
    """

    portable = True

    def __init__(self, setup: Sequence[tuple[str, str]], name: str = "__main__") -> None:
        self.setup = list(setup)  # (label, source) in notebook order
        self.module_name = name
        self._namespace: dict[str, Any] | None = None
        self._lock = threading.Lock()
        self._token = secrets.token_hex(8)
        self._shared = False  # True for a copy unpickled in another process

    def namespace(self) -> dict[str, Any]:
        with self._lock:
            if self._namespace is None:
                self._namespace = self._shared_setup() if self._shared else self._run_setup()
            return self._namespace

    def setup_key(self) -> str:
        """Identifies this load's setup code: its token, module name and sources."""
        digest = hashlib.sha256(f"{self._token}\0{self.module_name}".encode())
        for label, source in self.setup:
            digest.update(f"\0{label}\0{source}".encode())
        return digest.hexdigest()

    def _shared_setup(self) -> dict[str, Any]:
        key = self.setup_key()
        with _WORKER_LOCK:
            namespace = _WORKER_NAMESPACES.get(key)
            if namespace is None:
                namespace = _WORKER_NAMESPACES[key] = self._run_setup()
                while len(_WORKER_NAMESPACES) > _WORKER_NAMESPACES_MAX:
                    _WORKER_NAMESPACES.popitem(last=False)
            _WORKER_NAMESPACES.move_to_end(key)
            return namespace

    def _run_setup(self) -> dict[str, Any]:
        namespace: dict[str, Any] = {"__name__": self.module_name, "__builtins__": builtins}
        for label, source in self.setup:
            namespace["get_ipython"] = functools.partial(_NoKernel, label)
            filename = f"<kernelflow {label}>"
            code = transform_ipython(source)
            register_source(filename, code)
            try:
                exec(compile(code, filename, "exec"), namespace)
            except SyntaxError as error:
                raise CellParseError(f"{label} does not parse: {error.msg}", cell=label) from error
            except KernelflowError:
                raise
            except Exception as error:
                raise KernelflowError(
                    f"setup code in {label} failed: {type(error).__name__}: {error}",
                    cell=label,
                    fix="fix the setup cell; every task needs it",
                ) from error
        return namespace

    def execute(self, code: str, filename: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
        scope = dict(self.namespace())
        scope.update(inputs)
        scope["get_ipython"] = functools.partial(_NoKernel, filename)
        register_source(filename, code)
        exec(compile(code, filename, "exec"), scope)
        return scope

    def __getstate__(self) -> dict[str, Any]:
        # A worker rebuilds the namespace from the setup sources (once per process).
        return {"setup": self.setup, "module_name": self.module_name, "token": self._token}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["setup"], state["module_name"])  # type: ignore[misc]
        self._token = state.get("token", self._token)
        self._shared = True
