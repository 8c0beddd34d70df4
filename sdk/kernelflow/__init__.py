"""kernelflow: notebook cells and Python functions as a typed, cached, resumable DAG.

The public API is what ``__all__`` lists; everything else is internal. Heavy
modules (pandas, the engine, the store) load when first used, so that
``import kernelflow`` stays fast.

The dependency rule. The package is in layers, and a module imports only from
its own layer or the layers below it, never from above, not even inside a
function (``tests/test_layers.py`` checks every import statement)::

    front ends  cli, schedule/, render, progress, and kernelflow_jupyter (magics, widgets)
       |        call kernelflow.api and nothing deeper
    api         api.py: run, runs, lineage, export, the cache, the kernel session;
       |        this package's __init__ and errors.py (the public names)
    workflows/  @task, @workflow, map_task   |  notebook/  cells, analysis, loader, export,
       |        (neither imports the other)  |             kernel/ (the only IPython code)
    engine/     the scheduling loop, node computation, map nodes, backends, resume, events
       |
    store/      artifacts, run records (SQLite), the recorder that owns the write policy
       |
    _core/      graph, task model, interfaces and types, hashing, cache keys, versions, errors

A task called outside a workflow runs through ``engine.launch.run_target``: the
front end (``workflows``) calls down into the engine; the task model never
calls up. ``%load_ext kernelflow`` finds the Jupyter front end through the
``kernelflow.ipython`` entry point, so nothing here imports it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from kernelflow._core.interface import Schema
from kernelflow._version import __version__

# Imported eagerly (they are light): the names shadow the submodules of the same
# name, so ``kernelflow._core.task`` is always the decorator.
from kernelflow.engine.context import flyte_current_context as current_context
from kernelflow.exceptions.unsupported import install_finder, refuse
from kernelflow.workflows.conditional import conditional
from kernelflow.workflows.dynamic import dynamic
from kernelflow.workflows.eager import eager
from kernelflow.workflows.failure import WorkflowFailurePolicy
from kernelflow.workflows.imperative import ImperativeWorkflow
from kernelflow.workflows.imperative import ImperativeWorkflow as Workflow
from kernelflow.workflows.map_task import map_task
from kernelflow.workflows.task import task
from kernelflow.workflows.workflow import workflow

if TYPE_CHECKING:
    from kernelflow._core.hash_method import HashMethod
    from kernelflow._core.resources import ImageSpec, Resources, Secret
    from kernelflow.api import lineage, load_target, run, runs
    from kernelflow.engine.decks import Deck
    from kernelflow.engine.runner import RunResult
    from kernelflow.notebook.export import export
    from kernelflow.notebook.load import load_notebook
    from kernelflow.notebook.outputs import read_outputs
    from kernelflow.types import FlyteDirectory, FlyteFile, StructuredDataset, kwtypes
    from kernelflow.workflows.human import approve, sleep, wait_for_input
    from kernelflow.workflows.launch_plan import CronSchedule, FixedRate, LaunchPlan

__all__ = [
    # defining workflows
    "task",
    "workflow",
    "map_task",
    "current_context",
    # composition (issue 14)
    "dynamic",
    "conditional",
    "eager",
    "Workflow",
    "ImperativeWorkflow",
    "Schema",
    "WorkflowFailurePolicy",
    # Flyte types and resources (issue 15)
    "FlyteFile",
    "FlyteDirectory",
    "StructuredDataset",
    "kwtypes",
    "Resources",
    "Secret",
    "ImageSpec",
    "Deck",
    "HashMethod",
    # running and inspecting them
    "run",
    "RunResult",
    "runs",
    "lineage",
    "load_target",
    "load_notebook",
    "read_outputs",
    "export",
    # launch plans, human in the loop (issue 14)
    "LaunchPlan",
    "CronSchedule",
    "FixedRate",
    "sleep",
    "wait_for_input",
    "approve",
    "Email",
    "Slack",
    "PagerDuty",
    "WorkflowExecutionPhase",
    "reference_task",
    "reference_workflow",
    "reference_launch_plan",
    # the extension
    "load_ipython_extension",
    "__version__",
]

_LAZY = {
    "run": "kernelflow.api",
    "RunResult": "kernelflow.engine.runner",
    "runs": "kernelflow.api",
    "lineage": "kernelflow.api",
    "load_target": "kernelflow.api",
    "load_notebook": "kernelflow.notebook.load",
    "read_outputs": "kernelflow.notebook.outputs",
    "export": "kernelflow.notebook.export",
    "FlyteFile": "kernelflow.types.file",
    "FlyteDirectory": "kernelflow.types.directory",
    "StructuredDataset": "kernelflow.types.structured",
    "kwtypes": "kernelflow.types.structured",
    "Resources": "kernelflow._core.resources",
    "Secret": "kernelflow._core.resources",
    "ImageSpec": "kernelflow._core.resources",
    "Deck": "kernelflow.engine.decks",
    "HashMethod": "kernelflow._core.hash_method",
    "LaunchPlan": "kernelflow.workflows.launch_plan",
    "CronSchedule": "kernelflow.workflows.launch_plan",
    "FixedRate": "kernelflow.workflows.launch_plan",
    "sleep": "kernelflow.workflows.human",
    "wait_for_input": "kernelflow.workflows.human",
    "approve": "kernelflow.workflows.human",
    "Email": "kernelflow.workflows.notifications",
    "Slack": "kernelflow.workflows.notifications",
    "PagerDuty": "kernelflow.workflows.notifications",
    "WorkflowExecutionPhase": "kernelflow.workflows.notifications",
    "reference_task": "kernelflow.workflows.reference",
    "reference_workflow": "kernelflow.workflows.reference",
    "reference_launch_plan": "kernelflow.workflows.reference",
    # Flyte's context and literal models, for TypeTransformers (kernelflow.core.type_engine)
    "FlyteContext": "kernelflow.core.context_manager",
    "FlyteContextManager": "kernelflow.core.context_manager",
    "Literal": "kernelflow.models.literals",
    "Scalar": "kernelflow.models.literals",
    "Blob": "kernelflow.models.literals",
    "BlobMetadata": "kernelflow.models.literals",
    "LiteralType": "kernelflow.models.types",
    "StructuredDatasetType": "kernelflow.models.types",
    "BlobType": "kernelflow.models.core.types",
}


# Public names of ``flytekit`` (README "Flyte compatibility"). A Flyte program
# whose imports are rewritten (``flytekit`` -> ``kernelflow``) and that uses one
# kernelflow does not provide stops with one message naming it, not a bare
# "cannot import name". A name kernelflow gains is found before this list is read.
_FLYTE_NAMES = frozenset(
    [
        "Annotations",
        "Artifact",
        "BatchSize",
        "Cache",
        "CachePolicy",
        "Config",
        "ContainerTask",
        "CronSchedule",
        "Deck",
        "Description",
        "Documentation",
        "Email",
        "Environment",
        "FixedRate",
        "FlyteContext",
        "FlyteContextManager",
        "FlyteDirectory",
        "FlyteFile",
        "ImageSpec",
        "Labels",
        "LaunchPlan",
        "LaunchPlanReference",
        "Literal",
        "LiteralType",
        "Options",
        "PagerDuty",
        "PodTemplate",
        "PythonFunctionTask",
        "PythonInstanceTask",
        "Resources",
        "SQLTask",
        "Scalar",
        "Secret",
        "SecurityContext",
        "Slack",
        "SourceCode",
        "StructuredDataset",
        "StructuredDatasetFormat",
        "StructuredDatasetTransformerEngine",
        "StructuredDatasetType",
        "TaskMetadata",
        "TaskReference",
        "Workflow",
        "WorkflowExecutionPhase",
        "WorkflowReference",
        "approve",
        "conditional",
        "create_node",
        "dynamic",
        "eager",
        "kwtypes",
        "reference_launch_plan",
        "reference_task",
        "reference_workflow",
        "sleep",
        "wait_for_input",
    ]
)


install_finder()  # ``import kernelflow.extras.x`` (Flyte's path, not ours): one clear message


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        if name in _FLYTE_NAMES:
            refuse("kernelflow", name)
        raise AttributeError(f"module 'kernelflow' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext kernelflow``: loads the Jupyter extension (found only now)."""
    from kernelflow.notebook.kernel.extension import load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    from kernelflow.notebook.kernel.extension import unload

    unload(ipython)
