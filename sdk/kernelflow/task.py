"""Tasks: a typed interface, a body, and the options that tell the engine how to run it.

A :class:`Task` does not run itself in a workflow; it only knows how to turn input
values into output values (:meth:`Task.run`). Calling a task is what a user does:
inside a ``@workflow`` body the call adds a node to the graph being traced and
returns promises; anywhere else the call runs the task through the engine, so it
is cached and type-checked just as it would be in a workflow.
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kernelflow.errors import DefinitionError, SignatureError
from kernelflow.interface import Interface, interface_from_function


@dataclass(frozen=True)
class TaskOptions:
    """How the engine treats a task (Flyte's ``@task`` options).

    cache:
        Reuse outputs computed earlier for the same code and inputs.
    cache_version:
        Bump it to invalidate old entries when something the cache key cannot
        see has changed (a data file, a remote service).
    retries:
        Extra attempts after a failure, with exponential backoff.
    timeout:
        Seconds an attempt may run before it is stopped and counted as failed.
    """

    cache: bool = False
    cache_version: str = ""
    retries: int = 0
    timeout: float | None = None

    def __post_init__(self) -> None:
        if self.retries < 0:
            raise DefinitionError(f"retries must be >= 0, got {self.retries}")
        if self.timeout is not None and self.timeout <= 0:
            raise DefinitionError(
                f"timeout must be a positive number of seconds, got {self.timeout}"
            )


class Task:
    """Base of every task kind (function tasks, cell tasks, map tasks)."""

    name: str
    interface: Interface
    options: TaskOptions

    def run(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        """Compute the outputs (by name) from the inputs (by name)."""
        raise NotImplementedError

    @property
    def code_hash(self) -> str:
        """Identity of the body and of the code it references, for cache keys."""
        raise NotImplementedError

    @property
    def modules(self) -> Mapping[str, str]:
        """Versions of the packages the body uses: part of the key and of the run record."""
        return {}

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if args:
            raise SignatureError(
                f"task {self.name!r} was called with {len(args)} positional argument(s); "
                "tasks take keyword arguments only",
                task=self.name,
                fix=f"call it as {self.name}({_keywords(self.interface)})",
            )
        from kernelflow.workflow import add_call, current_builder, run_task_directly

        builder = current_builder()
        if builder is not None:
            return add_call(builder, self, kwargs)
        return run_task_directly(self, kwargs)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


class FunctionTask(Task):
    """A task whose body is a Python function (``@task``)."""

    def __init__(self, fn: Callable[..., Any], options: TaskOptions, name: str | None = None):
        self.fn = fn
        self.name = name or fn.__name__
        self.options = options
        self.interface = interface_from_function(fn, kind="task")
        functools.update_wrapper(self, fn)

    def run(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        result = self.fn(**inputs)
        return self.interface.unpack(result, owner=self.name)

    @functools.cached_property
    def _fingerprint(self) -> Any:
        from kernelflow.store.code_hash import function_fingerprint

        return function_fingerprint(self.fn)

    @property
    def code_hash(self) -> str:
        return self._fingerprint.hash

    @property
    def modules(self) -> Mapping[str, str]:
        return self._fingerprint.modules

    def __getstate__(self) -> dict[str, Any]:
        # The fingerprint is recomputed where needed; functools' wrapper
        # attributes travel with the function itself.
        state = dict(self.__dict__)
        state.pop("_fingerprint", None)
        return state

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle by reference when a worker can import the task, else by value.

        The module attribute named by ``__qualname__`` is this task, not its
        function, so plain pickle cannot find the function and cloudpickle would
        copy it. By reference (module + qualname), a worker imports the module and
        uses the very same task, its globals included. Tasks a fresh worker cannot
        import (defined in ``__main__``, a notebook, a test function, a script
        loaded from a path) travel by value, together with the helpers of their
        module (see :func:`pickle_by_value`).
        """
        module, qualname = self.__dict__.get("__module__"), self.__dict__.get("__qualname__")
        named = isinstance(module, str) and isinstance(qualname, str)
        if named and importable_by_reference(self, module, qualname):  # type: ignore[arg-type]
            return (_task_by_reference, (module, qualname))
        payload = pickle_by_value(self.__getstate__(), module if isinstance(module, str) else None)
        return (_task_by_value, (type(self), payload))


# --- pickling tasks for worker processes -----------------------------------------

_BY_VALUE_LOCK = threading.RLock()


def importable_by_reference(obj: object, module_name: str, qualname: str) -> bool:
    """Whether a worker process can get ``obj`` back as ``module_name.qualname``."""
    import cloudpickle

    if module_name == "__main__" or "<locals>" in qualname:
        return False
    module = sys.modules.get(module_name)
    if module is None or _registered_by_value(module_name, cloudpickle):
        return False
    if _resolve(module, qualname) is not obj:
        return False
    return module_importable(module)


def module_importable(module: Any) -> bool:
    """Whether a worker imports this very file under this module's name.

    Only modules of packages (and modules installed in site-packages or the
    standard library) qualify. A top-level single-file module is a script (one
    loaded by ``kernelflow run script.py:wf`` is registered under its file stem),
    a notebook's helper file or a test module: whether a worker finds it depends
    on its folder being on that worker's ``sys.path``, so its tasks travel by
    value, which works everywhere.
    """
    name, file = module.__name__, getattr(module, "__file__", None)
    is_package = hasattr(module, "__path__")
    return _importable(name, file, is_package)


@functools.lru_cache(maxsize=512)
def _importable(name: str, file: str | None, is_package: bool) -> bool:
    if file is None or name == "__main__":
        return False
    here = os.path.realpath(file)
    if "." not in name and not is_package and not _installed(here):
        return False
    root = name.partition(".")[0]
    spec = _find_root(root)
    if spec is None:
        return False
    if root == name:
        return spec.origin is not None and os.path.realpath(spec.origin) == here
    return any(
        here.startswith(os.path.realpath(location) + os.sep)
        for location in spec.submodule_search_locations or ()
    )


def _installed(path: str) -> bool:
    import sysconfig

    paths = sysconfig.get_paths()
    roots = {os.path.realpath(paths[key]) for key in ("purelib", "platlib", "stdlib")}
    return any(path.startswith(root + os.sep) for root in roots)


def _find_root(root: str) -> Any:
    """The spec the import system finds for ``root`` now, ignoring ``sys.modules``."""
    for finder in sys.meta_path:
        find_spec = getattr(finder, "find_spec", None)
        if find_spec is None:
            continue
        try:
            spec = find_spec(root, None)
        except Exception:
            continue
        if spec is not None:
            return spec
    return None


def pickle_by_value(obj: object, module_name: str | None) -> bytes:
    """``obj`` pickled by cloudpickle, with the code of an unimportable module by value.

    A task's function usually calls helpers of its own module; cloudpickle would
    pickle those by reference, which a worker that cannot import the module fails
    to load. Registering the module by value (only while pickling) copies them too.
    """
    import cloudpickle

    module = sys.modules.get(module_name) if module_name else None
    register = (
        module is not None
        and module_name != "__main__"
        and not _registered_by_value(module.__name__, cloudpickle)
        and not module_importable(module)
    )
    with _BY_VALUE_LOCK:
        if register:
            cloudpickle.register_pickle_by_value(module)
        try:
            return cloudpickle.dumps(obj, protocol=5)
        finally:
            if register:
                cloudpickle.unregister_pickle_by_value(module)


def _registered_by_value(module_name: str, cloudpickle: Any) -> bool:
    registered = cloudpickle.list_registry_pickle_by_value()
    return any(module_name == name or module_name.startswith(name + ".") for name in registered)


def _resolve(module: Any, qualname: str) -> object:
    obj: object = module
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
    return obj


def _task_by_reference(module_name: str, qualname: str) -> Task:
    found = _resolve(importlib.import_module(module_name), qualname)
    if not isinstance(found, Task):
        raise DefinitionError(
            f"{module_name}.{qualname} is not a task in this process",
            fix="use the same version of the code in the workers as in the run",
        )
    return found


def _task_by_value(cls: type[Task], payload: bytes) -> Task:
    import pickle

    task = cls.__new__(cls)
    task.__dict__.update(pickle.loads(payload))
    return task


def _keywords(interface: Interface) -> str:
    return ", ".join(f"{name}=..." for name in interface.inputs)


def task(
    fn: Callable[..., Any] | None = None,
    *,
    cache: bool = False,
    cache_version: str = "",
    retries: int = 0,
    timeout: float | None = None,
    name: str | None = None,
) -> Any:
    """Turn a typed function into a task (``@task`` or ``@task(cache=True, ...)``).

    Every parameter and the return value must be annotated: the annotations are the
    task's interface, checked when a workflow is defined and when values are produced.
    """
    options = TaskOptions(
        cache=cache, cache_version=str(cache_version), retries=retries, timeout=timeout
    )

    def decorate(function: Callable[..., Any]) -> FunctionTask:
        return FunctionTask(function, options, name=name)

    return decorate(fn) if fn is not None else decorate
