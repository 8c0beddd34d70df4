"""What identifies a notebook workflow and each of its tasks: its version and fingerprints.

One definition for every way a notebook runs: ``kernelflow run`` records runs
under this version, ``kernelflow export`` names the exported file by it, and
papermill's runs of that file record it, so the three agree.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kernelflow._core.graph import NodeOutput
from kernelflow._core.hashing import combine
from kernelflow._core.interface import type_name
from kernelflow.notebook.analysis import analyze_cell

if TYPE_CHECKING:
    from kernelflow.notebook.load import NotebookWorkflow


def notebook_version(workflow: NotebookWorkflow) -> str:
    """A 12-hex-digit hash of the workflow's code (setup cells too: an export runs
    them), interfaces, edges and parameters."""
    parts = [f"param:{d.name}:{d.type_text}:{d.default!r}" for d in workflow.parameters.values()]
    parts += [
        f"setup:{analyze_cell(c.body, cell=c.label).code_hash}" for c in workflow.built.setup_cells
    ]
    for node_id in workflow.graph.order:
        parts.append(f"task:{node_id}:{task_fingerprint(workflow, node_id)}")
    return combine(*parts)[:12]


def task_fingerprint(workflow: NotebookWorkflow, node_id: str) -> str:
    """What makes one task itself: its code, options, interface and inputs' sources."""
    node = workflow.graph.nodes[node_id]
    task = node.task
    interface = task.interface
    edges = sorted(
        f"{n}<{b.node}.{b.output}" if isinstance(b, NodeOutput) else f"{n}<{b!r}"
        for n, b in node.bindings.items()
    )
    return combine(
        task.analysis.code_hash,  # type: ignore[attr-defined]
        repr(task.options),
        ",".join(f"{n}:{type_name(t)}" for n, t in interface.outputs.items()),
        ",".join(edges),
        ",".join(node.after),
        str(getattr(task, "map_over", None)),
    )[:12]
