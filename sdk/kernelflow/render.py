"""Pictures and one-line summaries of workflows: the DAG as SVG, a task's status."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

from kernelflow.api import Graph

STATE_COLOURS = {
    "pending": "#eeeeee",
    "running": "#ffd966",
    "waiting": "#b4a7d6",  # a node waiting for a signal or a duration
    "succeeded": "#93c47d",
    "cached": "#9fc5e8",
    "failed": "#e06666",
    "skipped": "#d9d9d9",
    # A task's state in a kernel, across runs (%workflow show).
    "ran": "#93c47d",
    "stale": "#f6b26b",
    "never run": "#ffffff",
}
_LEGEND = ("ran", "cached", "stale", "failed", "never run")
_BOX_W, _BOX_H, _GAP_X, _GAP_Y, _MARGIN = 150, 30, 50, 14, 10
_MAX_DRAWN = 300


def dag_svg(graph: Graph, states: Mapping[str, str] | None = None, *, legend: bool = False) -> str:
    """The graph left to right in layers (a node sits right of everything it needs).

    ``legend`` adds a row naming the colours of a kernel's task states.
    """
    parents = {node_id: list(graph.nodes[node_id].upstream()) for node_id in graph.order}
    return parents_svg(parents, states, legend=legend)


def parents_svg(
    parents: Mapping[str, Sequence[str]],
    states: Mapping[str, str] | None = None,
    *,
    legend: bool = False,
) -> str:
    """:func:`dag_svg` of node id -> the ids it needs, in an order where parents come first
    (a run report draws the graph its store recorded)."""
    states = states or {}
    if len(parents) > _MAX_DRAWN:
        return (
            f"<svg xmlns='http://www.w3.org/2000/svg' width='420' height='30'><text x='5' "
            f"y='20'>{len(parents)} tasks: too many to draw</text></svg>"
        )
    position = _layout(parents)
    width = max((x for x, _ in position.values()), default=0) + _BOX_W + 2 * _MARGIN
    height = max((y for _, y in position.values()), default=0) + _BOX_H + 2 * _MARGIN
    if legend:
        width = max(width, 2 * _MARGIN + 95 * len(_LEGEND))
        height += 26
    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
        "font-family='sans-serif' font-size='12' class='kf-dag'>",
        "<defs><marker id='kf-arrow' viewBox='0 0 10 10' refX='10' refY='5' markerWidth='6' "
        "markerHeight='6' orient='auto'><path d='M0,0 L10,5 L0,10 z' fill='#666'/></marker></defs>",
    ]
    for node_id, needed in parents.items():
        for parent in needed:
            if parent in position:
                parts.append(_edge(position[parent], position[node_id]))
    for node_id, (x, y) in position.items():
        parts.append(_box(node_id, x, y, states.get(node_id, "pending")))
    if legend:
        parts.append(_legend(height - 20))
    parts.append("</svg>")
    return "".join(parts)


def _legend(y: int) -> str:
    items = []
    for i, state in enumerate(_LEGEND):
        x = _MARGIN + i * 95
        items.append(
            f"<rect x='{x}' y='{y}' width='14' height='14' rx='3' fill='{STATE_COLOURS[state]}' "
            f"stroke='#444'/><text x='{x + 19}' y='{y + 11}'>{state}</text>"
        )
    return "<g class='kf-legend'>" + "".join(items) + "</g>"


def _layout(parents: Mapping[str, Sequence[str]]) -> dict[str, tuple[int, int]]:
    layer: dict[str, int] = {}
    for node_id, needed in parents.items():
        layer[node_id] = 1 + max((layer[p] for p in needed if p in layer), default=-1)
    rows: dict[int, int] = {}
    position = {}
    for node_id in parents:
        column = layer[node_id]
        row = rows.get(column, 0)
        rows[column] = row + 1
        position[node_id] = (
            _MARGIN + column * (_BOX_W + _GAP_X),
            _MARGIN + row * (_BOX_H + _GAP_Y),
        )
    return position


def _edge(start: tuple[int, int], end: tuple[int, int]) -> str:
    x1, y1 = start[0] + _BOX_W, start[1] + _BOX_H // 2
    x2, y2 = end[0], end[1] + _BOX_H // 2
    middle = (x1 + x2) // 2
    return (
        f"<path d='M{x1},{y1} C{middle},{y1} {middle},{y2} {x2},{y2}' fill='none' "
        "stroke='#666' marker-end='url(#kf-arrow)'/>"
    )


def _box(node_id: str, x: int, y: int, state: str) -> str:
    label = node_id if len(node_id) <= 22 else node_id[:21] + "…"
    colour = STATE_COLOURS.get(state, STATE_COLOURS["pending"])
    return (
        f"<g><title>{html.escape(node_id)}: {state}</title>"
        f"<rect x='{x}' y='{y}' width='{_BOX_W}' height='{_BOX_H}' rx='6' fill='{colour}' "
        f"stroke='#444'/><text x='{x + _BOX_W // 2}' y='{y + 19}' text-anchor='middle'>"
        f"{html.escape(label)}</text></g>"
    )


def seconds(value: float | None, unknown: str = "") -> str:
    """A duration for people: 12 ms, 3.4 s, 2.5 min."""
    if value is None:
        return unknown
    if value < 1:
        return f"{value * 1000:.0f} ms"
    return f"{value:.1f} s" if value < 120 else f"{value / 60:.1f} min"


def status_text(task: str, status: str, duration: float, saved: float) -> str:
    """The one-line status a ``%%task`` cell shows when it ends."""
    if status == "cached":
        return f"{task}: cached, saved {seconds(saved)}"
    if status == "succeeded":
        return f"{task}: ran in {seconds(duration)}"
    return f"{task}: {status}"


def status_html(text: str, status: str) -> str:
    colour = STATE_COLOURS.get(status, "#eeeeee")
    return (
        f"<div style='font-family:sans-serif;font-size:12px'><span style='display:inline-block;"
        f"width:10px;height:10px;border-radius:5px;background:{colour};"
        f"border:1px solid #444;margin-right:6px'></span>{html.escape(text)}</div>"
    )
