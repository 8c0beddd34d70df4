"""Sending tasks to worker processes: by reference when a worker can import them, else by value.

Lives in the core layer because both the task front ends (``__reduce__``) and
the engine's backends (checking what can travel) need it.
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
import threading
from typing import Any

from kernelflow._core.errors import DefinitionError
from kernelflow._core.task import Task

_BY_VALUE_LOCK = threading.RLock()


def importable_by_reference(obj: object, module_name: str, qualname: str) -> bool:
    """Whether a worker process can get ``obj`` back as ``module_name.qualname``."""
    import cloudpickle

    if module_name == "__main__" or "<locals>" in qualname:
        return False
    module = sys.modules.get(module_name)
    if module is None or _registered_by_value(module_name, cloudpickle):
        return False
    if resolve_qualname(module, qualname) is not obj:
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


def resolve_qualname(module: Any, qualname: str) -> object:
    obj: object = module
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
    return obj


def task_by_reference(module_name: str, qualname: str) -> Task:
    found = resolve_qualname(importlib.import_module(module_name), qualname)
    if not isinstance(found, Task):
        raise DefinitionError(
            f"{module_name}.{qualname} is not a task in this process",
            fix="use the same version of the code in the workers as in the run",
        )
    return found


def task_by_value(cls: type[Task], payload: bytes) -> Task:
    import pickle

    task = cls.__new__(cls)
    task.__dict__.update(pickle.loads(payload))
    return task
