"""The live progress view of a run: an engine listener drawn with ipywidgets.

An overall bar, one row per task (state, duration, cached, error) and the DAG,
updated as events arrive. The same output also carries a ``text/plain`` form,
refreshed as the run goes on, so that where widgets cannot render (papermill,
nbconvert, a terminal) a text progress line shows instead.
"""

from __future__ import annotations

import html
import time
from dataclasses import dataclass
from typing import Any

from kernelflow.api import Event, Graph
from kernelflow.render import STATE_COLOURS, dag_svg, seconds

_TEXT_REFRESH_SECONDS = 1.0


@dataclass
class _Row:
    state: str = "pending"
    duration: float | None = None
    cached: bool = False
    error: str = ""
    items: str = ""  # "300/10000" while a map node runs


class ProgressView:
    """Listener + widget. Create it, ``show()`` it, pass it to the engine as a listener."""

    def __init__(self, graph: Graph, title: str) -> None:
        import ipywidgets as widgets

        self.graph = graph
        self.title = title
        self.rows = {node_id: _Row() for node_id in graph.order}
        self.bar = widgets.IntProgress(
            value=0, min=0, max=max(1, len(self.rows)), description="0/" + str(len(self.rows))
        )
        self.header = widgets.HTML(f"<b>{html.escape(title)}</b>: starting")
        self.table = widgets.HTML(self._table_html())
        self.dag = widgets.HTML(dag_svg(graph))
        self.box = widgets.VBox([self.header, self.bar, self.table, self.dag])
        self._handle: Any = None
        self._last_text = 0.0

    def show(self) -> None:
        from IPython.display import display

        self._handle = display(self._bundle(), raw=True, display_id=True)

    def __call__(self, event: Event) -> None:
        if event.kind == "run_started" and event.nodes is not None:
            self._restrict(event.nodes)
            self.header.value = f"<b>{html.escape(self.title)}</b>: run {event.run_id}"
        elif event.node in self.rows:
            self._update_row(event)
        elif event.kind == "run_finished":
            self.header.value = (
                f"<b>{html.escape(self.title)}</b>: run {event.run_id} "
                f"{event.status} in {seconds(event.duration)}"
            )
        self._refresh(final=event.kind == "run_finished")

    def _restrict(self, nodes: tuple[str, ...]) -> None:
        self.rows = {node_id: self.rows.get(node_id, _Row()) for node_id in nodes}
        self.bar.max = max(1, len(self.rows))

    def _update_row(self, event: Event) -> None:
        row = self.rows[event.node]  # type: ignore[index]
        states = {
            "task_started": "running",
            "task_finished": "succeeded",
            "task_cached": "cached",
            "task_failed": "failed",
            "task_skipped": "skipped",
            "task_retrying": "running",
        }
        if event.kind == "task_progress":
            row.items = f"{event.done}/{event.total} items"
            return
        row.state = states.get(event.kind, row.state)
        if event.kind == "task_cached":
            row.cached, row.duration = True, event.saved
        elif event.kind in ("task_finished", "task_failed"):
            row.duration = event.duration
        if event.error:
            row.error = event.error.splitlines()[0]

    def _refresh(self, *, final: bool) -> None:
        done = sum(
            row.state in ("succeeded", "cached", "failed", "skipped") for row in self.rows.values()
        )
        self.bar.value = done
        self.bar.description = f"{done}/{len(self.rows)}"
        if any(row.state == "failed" for row in self.rows.values()):
            self.bar.bar_style = "danger"
        elif final:
            self.bar.bar_style = "success"
        self.table.value = self._table_html()
        self.dag.value = dag_svg(self.graph, {n: r.state for n, r in self.rows.items()})
        now = time.monotonic()
        if self._handle is not None and (final or now - self._last_text > _TEXT_REFRESH_SECONDS):
            self._last_text = now
            self._handle.update(self._bundle(), raw=True)

    def _bundle(self) -> dict[str, Any]:
        return {
            "application/vnd.jupyter.widget-view+json": {
                "model_id": self.box.model_id,
                "version_major": 2,
                "version_minor": 0,
            },
            "text/plain": self.text(),
        }

    def text(self) -> str:
        """The text form: an overall line, then one line per task."""
        done = sum(row.state not in ("pending", "running") for row in self.rows.values())
        lines = [f"{self.title}: {done}/{len(self.rows)} tasks done"]
        for node_id, row in self.rows.items():
            detail = (
                ""
                if row.duration is None
                else (
                    f" (saved {seconds(row.duration)})"
                    if row.cached
                    else f" in {seconds(row.duration)}"
                )
            )
            error = f": {row.error}" if row.error else ""
            items = f" [{row.items}]" if row.items else ""
            lines.append(f"  {node_id}: {row.state}{items}{detail}{error}")
        return "\n".join(lines)

    def _table_html(self) -> str:
        cells = []
        for node_id, row in self.rows.items():
            colour = STATE_COLOURS.get(row.state, "#eee")
            cells.append(
                f"<tr><td>{html.escape(node_id)}</td><td style='background:{colour}'>{row.state}"
                f" {row.items}</td><td>{seconds(row.duration)}</td>"
                f"<td>{'yes' if row.cached else ''}</td><td>{html.escape(row.error)}</td></tr>"
            )
        return (
            "<table style='font-size:12px'><tr><th>task</th><th>state</th><th>time</th>"
            f"<th>cached</th><th>error</th></tr>{''.join(cells)}</table>"
        )
