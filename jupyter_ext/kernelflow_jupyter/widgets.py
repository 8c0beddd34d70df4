"""The live progress view of a run: an engine listener drawn with ipywidgets.

An overall bar, one collapsible row per task (its state and time in the title,
what it printed and displayed inside, in an ``Output`` widget) and the DAG,
updated as events arrive; a node waiting for a signal gets a line of controls
that send it (``signals.py``). The same output also carries a ``text/plain`` form,
refreshed as the run goes on, so that where widgets cannot render (papermill,
nbconvert, a terminal) a text progress line shows instead.

When the run ends, :meth:`ProgressView.finish` replaces the widgets in the
notebook with a static HTML snapshot (``snapshot.py``): widget models die with
the kernel, HTML does not.
"""

from __future__ import annotations

import html
import threading
import time
from typing import Any

from kernelflow.api import Event, Graph
from kernelflow.render import dag_svg, seconds
from kernelflow_jupyter.captured import CapturedOutputs, Output
from kernelflow_jupyter.rows import Row
from kernelflow_jupyter.signals import SignalPanel
from kernelflow_jupyter.snapshot import snapshot_html

_TEXT_REFRESH_SECONDS = 1.0
_TEXT_LINES = 40  # of each task's printed text, in the text form of the snapshot
_SYNC_SECONDS = 0.2  # a task's output reaches its widget in batches, this far apart at most


class ProgressView:
    """Listener + widget + output sink.

    Create it, ``show()`` it, pass it to the engine as a listener and
    :meth:`capture` as the run's output sink, and call :meth:`finish` when the
    run is over, however it ended.
    """

    def __init__(self, graph: Graph, title: str) -> None:
        import ipywidgets as widgets

        self.graph = graph
        self.title = title
        self.rows = {node_id: Row() for node_id in graph.order}
        # Nodes a running node built (a dynamic workflow's tasks, a conditional's branch,
        # an eager workflow's calls: ``dyn.child``), under the row of that node.
        self.children: dict[str, dict[str, Row]] = {}
        self.captured = {node_id: CapturedOutputs() for node_id in graph.order}
        self.output_widgets = {node_id: widgets.Output() for node_id in graph.order}
        self.bar = widgets.IntProgress(
            value=0, min=0, max=max(1, len(self.rows)), description="0/" + str(len(self.rows))
        )
        self.header = widgets.HTML(f"<b>{html.escape(title)}</b>: starting")
        self.tasks = widgets.Accordion()
        self.dag = widgets.HTML(dag_svg(graph))
        self.signals = SignalPanel()  # Send, Approve, Reject for the nodes that wait
        self.box = widgets.VBox([self.header, self.bar, self.signals.box, self.tasks, self.dag])
        self.box.add_class("kernelflow-progress")
        self._lay_out_tasks()
        self._handle: Any = None
        self._last_text = 0.0
        self._lock = threading.RLock()  # outputs arrive from the tasks' threads
        self._finished = False
        self._timer: threading.Timer | None = None

    def show(self) -> None:
        from IPython.display import display

        self._handle = display(self._bundle(), raw=True, display_id=True)

    def __call__(self, event: Event) -> None:
        with self._lock:
            if event.kind == "run_started" and event.nodes is not None:
                self._restrict(event.nodes)
                self.header.value = f"<b>{html.escape(self.title)}</b>: run {event.run_id}"
            elif event.node in self.rows:
                self.rows[event.node].apply(event)
                self._sync_outputs(event.node)
                self._open_if_failed(event.node)
            elif event.node is not None and self._parent_of(event.node) is not None:
                parent = self._parent_of(event.node)
                self.children.setdefault(parent, {}).setdefault(event.node, Row()).apply(event)
            elif event.kind == "run_finished":
                self.header.value = (
                    f"<b>{html.escape(self.title)}</b>: run {event.run_id} "
                    f"{event.status} in {seconds(event.duration)}"
                )
            self._refresh(final=event.kind == "run_finished")
            self.signals(event)  # after the row: a line never shows before its row says why

    def capture(self, node: str, output: Output) -> None:
        """The run's output sink: ``output`` was printed or displayed by task ``node``."""
        captured = self.captured.get(node)
        if captured is None:
            return
        captured.add(output)
        with self._lock:
            if self._timer is None and not self._finished:  # one batch for what comes next
                self._timer = threading.Timer(_SYNC_SECONDS, self._sync_changed)
                self._timer.daemon = True
                self._timer.start()

    def _sync_changed(self) -> None:
        with self._lock:
            self._timer = None
            if self._finished:
                return
            for node, captured in self.captured.items():
                if captured.changed and node in self.rows:
                    self._sync_outputs(node)

    def finish(self) -> None:
        """Replace the live view by its static snapshot, and free the widgets' models."""
        with self._lock:
            if self._finished:
                return
            self._finished = True
            if self._timer is not None:
                self._timer.cancel()
            for node in self.rows:
                self._sync_outputs(node)
            if self._handle is not None:
                snapshot = {"text/html": self.snapshot(), "text/plain": self.text(outputs=True)}
                self._handle.update(snapshot, raw=True)
            for widget in (*self.output_widgets.values(), self.tasks, self.dag, self.bar):
                widget.close()
            self.signals.close()
            self.header.close()
            self.box.close()

    def snapshot(self) -> str:
        """The static HTML of the view as it is now."""
        outputs = {node: self.captured[node].outputs() for node in self.rows}
        states = {node: row.state for node, row in self.rows.items()}
        dag = dag_svg(self.graph, states)
        return snapshot_html(self.header.value, self.rows, outputs, dag, self.children)

    def _restrict(self, nodes: tuple[str, ...]) -> None:
        self.rows = {node_id: self.rows.get(node_id, Row()) for node_id in nodes}
        self.bar.max = max(1, len(self.rows))
        self._lay_out_tasks()

    def _lay_out_tasks(self) -> None:
        self.tasks.children = [self.output_widgets[node] for node in self.rows]
        self.tasks.titles = self._titles()

    def _parent_of(self, node: str) -> str | None:
        """The row a child node (``dyn.child``) belongs under: its longest prefix that is a row."""
        parts = node.split(".")
        for end in range(len(parts) - 1, 0, -1):
            prefix = ".".join(parts[:end])
            if prefix in self.rows:
                return prefix
        return None

    def _titles(self) -> tuple[str, ...]:
        return tuple(
            f"{node}: {row.summary()}{self._inner(node)}" for node, row in self.rows.items()
        )

    def _inner(self, node: str) -> str:
        children = self.children.get(node)
        if not children:
            return ""
        done = sum(row.finished for row in children.values())
        return f" ({done}/{len(children)} inner tasks done)"

    def _sync_outputs(self, node: str) -> None:
        captured = self.captured[node]
        if len(captured) or self.output_widgets[node].outputs:
            self.output_widgets[node].outputs = captured.outputs()

    def _open_if_failed(self, node: str) -> None:
        if self.rows[node].state == "failed" and self.tasks.selected_index is None:
            self.tasks.selected_index = list(self.rows).index(node)

    def _refresh(self, *, final: bool) -> None:
        done = sum(row.finished for row in self.rows.values())
        self.bar.value = done
        self.bar.description = f"{done}/{len(self.rows)}"
        if any(row.state == "failed" for row in self.rows.values()):
            self.bar.bar_style = "danger"
        elif final:
            self.bar.bar_style = "success"
        titles = self._titles()
        if titles != tuple(self.tasks.titles):
            self.tasks.titles = titles
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

    def text(self, *, outputs: bool = False) -> str:
        """The text form: an overall line, then one line per task (with its printed text)."""
        done = sum(row.state not in ("pending", "running", "waiting") for row in self.rows.values())
        lines = [f"{self.title}: {done}/{len(self.rows)} tasks done"]
        for node_id, row in self.rows.items():
            lines.append(f"  {node_id}: {row.summary()}")
            for child, child_row in self.children.get(node_id, {}).items():
                lines.append(f"    {child}: {child_row.summary()}")
            if outputs:
                lines += [f"    | {line}" for line in _printed(self.captured[node_id].outputs())]
        return "\n".join(lines)


def _printed(outputs: tuple[Output, ...]) -> list[str]:
    """The last lines a task printed (streams), for the text form of the snapshot."""
    text = "".join(o["text"] for o in outputs if o.get("output_type") == "stream")
    lines = text.splitlines()
    if len(lines) <= _TEXT_LINES:
        return lines
    return [f"[{len(lines) - _TEXT_LINES} earlier lines]", *lines[-_TEXT_LINES:]]


class ShownWhileRunning:
    """A view shown when its run is started and made its static snapshot when the run
    ends: for a run started in a cell that goes on meanwhile (``kernelflow.start``,
    ``FlyteRemote.execute``), whose Approve and Send buttons the free kernel answers."""

    def __init__(self, view: ProgressView) -> None:
        self.view = view
        view.show()

    def __call__(self, event: Event) -> None:
        self.view(event)
        if event.kind == "run_finished":
            self.view.finish()


def view_for_started_run(target: Any) -> ShownWhileRunning | None:
    """The kernel's offer for a run started in the background: its progress view."""
    graph = getattr(target, "graph", None)
    if graph is None:
        return None
    return ShownWhileRunning(ProgressView(graph, f"workflow {target.name}"))
